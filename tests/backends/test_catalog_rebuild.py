"""
The evidence catalog made by live upkeep, as recordings arrive, and the one
C{bwscd catalog rebuild} makes of the same storage and event log answer
the same, for every installed backend.
"""

import subprocess

from tests.support.catalog import CatalogClient, sendRecordings
from tests.support.server import BWSCD


def test_rebuild_equals_live_upkeep(launch, dataDirectory, backendSpec):
    server = launch(dataDirectory, "--backend", backendSpec)
    sendRecordings(server.connection())
    reader = CatalogClient.of(server, server.addAccount("clerk", "reader"))
    reader.waitFor()
    live = reader.snapshot()
    server.stop()

    rebuilt = subprocess.run([BWSCD, "catalog", "rebuild", "--data", dataDirectory,
                              "--backend", backendSpec], capture_output=True, text=True,
                             timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("catalog rebuilt: 4 recordings, ")

    again = launch(dataDirectory, "--backend", backendSpec, port=server.port)
    assert CatalogClient(again, reader.token).snapshot() == live
