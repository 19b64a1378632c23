"""
bwscd: a content destination for the Axis body worn camera system.

The system controller (AXIS W800) pushes recordings over a subset of the
OpenStack Swift API; bwscd answers 201 only once it durably holds verified
bytes.
"""

__version__ = "0.1.0"
