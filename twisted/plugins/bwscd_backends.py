"""The storage backends that ship with bwscd, as Twisted plugins."""

from bwscd.plugins import BackendPlugin

filesystem = BackendPlugin(
    "filesystem",
    "files in the vendor example's layout; options: root=DIR (default DATA/storage), "
    "reserve=SIZE free space kept (default 256M)",
    "bwscd.backends.filesystem.backend",
)

sqlite = BackendPlugin(
    "sqlite",
    "one SQLite database holding metadata and content; options: path=FILE "
    "(default DATA/storage.sqlite), reserve=SIZE free space kept (default 256M)",
    "bwscd.backends.sqlite.backend",
)
