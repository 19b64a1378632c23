"""
Offline tools that are not the server: content decryption (L{encryption})
and the controller simulator for load tests (L{loadtest}, which runs the
simulated cameras of L{loadcamera} over the HTTP client of L{loadclient}).

May import every layer but L{bwscd.commands}.
"""
