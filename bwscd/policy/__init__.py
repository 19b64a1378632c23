"""
The rules about evidence and what the destination publishes, independent of
HTTP: the rules of evidence (L{evidence}: write once, Complete, what may be
deleted, anomalies, GNSS tracks), the registry of users, devices and
systems (L{registry}), the capability and category documents
(L{capabilities}, L{categories}), the events every change is audited with
(L{events}), the refusals that stop offload, told once per episode
(L{refusals}), what the account holds (L{usage}), and retention periods
and legal holds as pure rules (L{retention}).

May import the top-level modules of L{bwscd}, L{bwscd.security} and the
storage contract (L{bwscd.interfaces}); never L{bwscd.backends} (a
backend is reached through that contract), L{bwscd.config} or above.
"""
