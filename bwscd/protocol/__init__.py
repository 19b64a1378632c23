"""
The Swift API subset the system controller speaks, as twisted.web: the HTTP
channel that streams bodies with backpressure (L{channel}), the access log
(L{accesslog}), and the resources (L{swift}).

May import every layer below (the top-level modules, security, policy,
config, transfer); never L{bwscd.service}, L{bwscd.tools} or
L{bwscd.commands}.
"""
