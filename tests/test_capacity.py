"""
Capacity (docs/retention.md, Capacity) through a real C{twistd bwscd}:
C{bwscd capacity} and C{bwscd retention show} beside the running server
(with the policy's longest period), and C{capacity.low} once
when days until full are under C{--capacity-warning}.
"""

import subprocess

from tests.support.catalog import CatalogClient, sendRecordings
from tests.support.server import BWSCD
from tests.support.waiting import waitFor


def test_capacity_is_shown_and_low_capacity_is_one_event(launch, dataDirectory):
    server = launch(dataDirectory)
    sendRecordings(server.connection())
    CatalogClient.of(server, server.addAccount("clerk", "reader")).waitFor()
    shown = subprocess.run([BWSCD, "capacity", "--data", dataDirectory],
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "days until full" in shown.stdout and "kept for ever" in shown.stdout
    assert server.eventsOf("capacity.low") == []
    subprocess.run([BWSCD, "retention", "set", "--data", dataDirectory, "--default", "3650"],
                   check=True, capture_output=True)
    shown = subprocess.run([BWSCD, "retention", "show", "--data", dataDirectory],
                           capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "default\t3650 days" in shown.stdout
    assert "capacity\tfree" in shown.stdout and "kept 3650 days" in shown.stdout
    subprocess.run([BWSCD, "retention", "set", "--data", dataDirectory, "--default", "forever"],
                   check=True, capture_output=True)
    server.stop()
    # Any storage is short of a trillion days at this intake.
    server = launch(dataDirectory, "--capacity-warning", "1000000000000")
    assert waitFor(lambda: server.eventsOf("capacity.low"), timeout=30)
    low, = server.eventsOf("capacity.low")
    assert low["thresholdDays"] == 1000000000000
    assert low["freeBytes"] > 0 and low["intakePerDay"] > 0 and low["daysUntilFull"] > 0
