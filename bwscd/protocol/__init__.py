"""
The Swift API subset the system controller speaks, as twisted.web: the HTTP
channel that streams bodies with backpressure (L{channel}), the access log
(L{accesslog}), and the resources: the top of the tree (L{routing}), login
(L{auth}), everything under C{/v1/} (L{storageapi}), which hands each request
to the thin handler of its Swift level (L{account}, L{container},
L{object}); listings (L{listing}) and byte ranges (L{ranges}) as Swift has
them, and the one path that sends answers and refusals (L{response}).
Handlers parse through L{bwscd.constraints}, ask the policy objects and the
backend, and say the answer.

May import every layer below (the top-level modules, security, policy,
config, transfer); never L{bwscd.service}, L{bwscd.tools} or
L{bwscd.commands}.
"""
