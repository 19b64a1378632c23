"""
Storage backends shipped with bwscd, installed as C{bwscd.backends}.  Each is
registered as a Twisted plugin in C{twisted/plugins/bwscd_backends.py}.
"""
