"""
Bytes in and out: one upload from the socket to a backend's writer, verified
on the way (L{upload}), one download (L{download}), the minimum body rate
(L{bodyrate}), the quota (L{quota}), and the admission of uploads: slots and
quota together (L{admission}).

May import the top-level modules of L{bwscd}, L{bwscd.policy} and
L{bwscd.config}; never L{bwscd.protocol}, L{bwscd.service} or above.
"""
