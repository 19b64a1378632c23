"""
C{twistd bwscd}: options and assembly (L{assembly}), worker processes
(L{workers}, started by the main process; L{workerprocess}, what runs in
one) and the balancing of connections between them (L{balance}).

May import every layer below; never L{bwscd.tools} or L{bwscd.commands}.
"""
