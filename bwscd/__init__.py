"""
bwscd: a content destination for the Axis body worn camera system.

The system controller (AXIS W800) pushes recordings over a subset of the
OpenStack Swift API; bwscd answers 201 only once it durably holds verified
bytes.

The top-level modules are what every layer may use: the contracts
(L{interfaces}), the API's errors (L{errors}), the protocol's limits and
rules (L{constraints}), durable files (L{files}), the bridge between the
reactor and threads (L{threads}) and backend plugins (L{plugins}); they
import only each other.  The layers above them are packages, lowest first:
L{security} and L{backends}, L{policy}, L{config}, L{transfer},
L{protocol}, L{service}, L{tools}, L{commands} (docs/architecture.md).
"""

__version__ = "0.1.0"
