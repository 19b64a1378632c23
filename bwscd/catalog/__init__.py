"""
The evidence catalog: recordings indexed by person, device, category,
place and time, kept in one SQLite file beside the data, rebuilt from
storage (through the storage contract) and the event log.

Owns the catalog's schema (L{schema}), the pure reading of what the
controller stores into rows (L{records}), the write side (L{index},
L{upkeep}, L{rebuild}), the read side (L{query}), what retention needs of
each recording (L{retention}) and trails as GeoJSON and
GPX (L{geo}).  May import the top-level modules, security, backends,
policy and config; never transfer, protocol or service.
"""
