"""
Offline tools that are not the server: content decryption (L{encryption})
and the controller simulator for load tests (L{loadtest}).

May import every layer but L{bwscd.commands}.
"""
