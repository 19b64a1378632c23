"""
Storage backends shipped with bwscd, imported as C{bwscd.backends} (the
checkout's C{bwscd/backends} links here).  Each is registered as a Twisted
plugin in C{twisted/plugins/bwscd_backends.py} and provides
L{bwscd.interfaces.IStorageBackend}: C{filesystem}, C{sqlite}, C{sftp}
(a package); what they share is in L{common}, and the vendor's file layout
that the filesystem and SFTP backends both keep in L{layout}.

May import only bwscd's top-level modules (the contracts, errors,
constraints, files, threads, plugins): a backend knows nothing of the
layers that use it.
"""
