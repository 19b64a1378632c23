"""
C{twistd bwscd}: options and assembly (L{assembly}), worker processes
(L{workers}, started by the main process; L{workerprocess}, what runs in
one), the balancing of connections between them (L{balance}), and the
expiry sweep of the main process (L{expiry}).

May import every layer below; never L{bwscd.tools} or L{bwscd.commands}.
"""
