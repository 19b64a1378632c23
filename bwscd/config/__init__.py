"""
The data directory: every file name in it (L{paths}), the settings it
holds (L{settings}, the one owner of settings.json), what the service
makes of them at a start (L{datadir}), the connection file for Body Worn
Manager (L{connectionfile}), locks between processes (L{processlock}),
backups of the configuration (L{backup}), and the legal holds (L{holds}).

May import the top-level modules of L{bwscd}, L{bwscd.security} and
L{bwscd.policy}; never L{bwscd.transfer}, L{bwscd.protocol} or above.
"""
