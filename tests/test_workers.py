"""
--workers: the main process and its workers share the port, the storage,
the registry, the quota and the event log; no worker outlives the service.
"""

import hashlib
import json
import os
import re
import signal
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager

from swiftclient.exceptions import ClientException

from tests.support.waiting import waitFor

UPLOADS = 24


def workersOf(server) -> set[int]:
    """The pids of the processes the server's main process started."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == server.process.pid and fields[0] != "Z":
                children.add(int(entry))
    return children


@contextmanager
def connected(server):
    """A new connection to the server (the kernel picks the process)."""
    swift = server.connection()
    try:
        yield swift
    finally:
        swift.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def offload(server, number: int) -> str:
    """What the controller does for one recording, each step on a new connection."""
    user = f"0b9a3f2e-5c1d-4e8f-9a7b-{number:012d}"
    device = f"DEV{number:04d}"
    container = f"{user}_{device}_20240501T101500Z"
    data = hashlib.sha256(b"%d" % number).digest() * 4096
    with connected(server) as swift:
        swift.put_container("Users")
        swift.put_object("Users", user, b"", headers={"X-Object-Meta-Name": f"User {number}"})
    with connected(server) as swift:
        swift.put_container("Devices")
        swift.put_object("Devices", device, b"", headers={"X-Object-Meta-Name": f"Cam {number}"})
    with connected(server) as swift:
        swift.put_container(container, headers={"X-Container-Meta-Status": "Transferring"})
    with connected(server) as swift:
        etag = swift.put_object(container, "clip.mkv", data,
                                etag=hashlib.md5(data).hexdigest())
    with connected(server) as swift:
        swift.post_container(container, {"X-Container-Meta-Status": "Complete"})
    return etag


def test_processes_share_the_port_the_registry_and_the_event_log(launch, dataDirectory):
    server = launch(dataDirectory, "--workers", "2")
    assert len(workersOf(server)) == 1
    with ThreadPoolExecutor(8) as pool:
        etags = list(pool.map(lambda n: offload(server, n), range(UPLOADS)))
    assert len(etags) == UPLOADS
    log = server.log()
    served = [line for line in log.splitlines() if "PUT /v1/" in line]
    assert any("worker 1: " in line for line in served), "the worker served nothing"
    assert any("worker 1: " not in line for line in served), "the main process served nothing"
    # Every process's events are in the one event log, once each (a
    # worker's a moment after its response).
    kinds = ("user.registered", "recording.started", "clip.stored", "recording.complete")

    def counted():
        events = server.events()
        return [sum(e["type"] == kind for e in events) for kind in kinds]

    assert waitFor(lambda: counted() == [UPLOADS] * len(kinds))
    time.sleep(0.5)  # and no more come
    assert counted() == [UPLOADS] * len(kinds)
    # The registry holds what every process registered.
    with open(os.path.join(server.storage, ".bwscd", "state", "registry.json")) as f:
        registry = json.load(f)
    assert len(registry["Users"]) == UPLOADS and len(registry["Devices"]) == UPLOADS


def test_the_quota_is_shared(launch, dataDirectory):
    server = launch(dataDirectory, "--workers", "2", "--quota", "1M")
    offload(server, 0)
    container = "0b9a3f2e-5c1d-4e8f-9a7b-000000000000_DEV0000_20240501T101500Z"
    with connected(server) as swift:
        before = int(swift.head_account()["x-account-bytes-used"])

    def upload(number):
        try:
            with connected(server) as swift:
                swift.put_object(container, f"{number}.mkv", os.urandom(100 << 10))
            return 201
        except ClientException as e:
            return e.http_status

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(upload, range(16)))
    assert set(codes) == {201, 507}
    with connected(server) as swift:
        used = int(swift.head_account()["x-account-bytes-used"])
    # Both processes counted every upload against the one quota.
    assert used == before + codes.count(201) * (100 << 10) <= 1 << 20
    assert (1 << 20) - used < 100 << 10


def test_no_worker_outlives_its_main_process(launch, dataDirectory):
    server = launch(dataDirectory, "--workers", "3")
    workers = workersOf(server)
    assert len(workers) == 2
    offload(server, 1)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    assert waitFor(lambda: not any(alive(pid) for pid in workers))
    # The port is free again, and what was stored is there.
    again = launch(dataDirectory, "--workers", "3", port=server.port)
    with connected(again) as swift:
        assert swift.head_object(
            "0b9a3f2e-5c1d-4e8f-9a7b-000000000001_DEV0001_20240501T101500Z",
            "clip.mkv")["content-length"] == str(32 * 4096)


def test_workers_start_in_the_source_directory(launch, dataDirectory):
    """
    Started where the README starts it, in the checkout it was installed
    from: the checkout's bwscd/ (without its backends, which install as
    bwscd.backends) must not hide the installed package from the workers.
    """
    repository = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    server = launch(dataDirectory, "--workers", "2", cwd=repository)
    assert waitFor(lambda: "worker 1: AccessLoggingSite (TLS) starting" in server.log())
    assert "worker 1 ended" not in server.log()


def test_a_worker_that_dies_is_started_again(launch, dataDirectory):
    server = launch(dataDirectory, "--workers", "2")
    [worker] = workersOf(server)
    os.kill(worker, signal.SIGKILL)
    assert waitFor(lambda: workersOf(server) - {worker})
    assert "worker 1 ended" in server.log()
    for number in range(4):
        offload(server, number)


def test_stopping_the_service_stops_every_worker(launch, dataDirectory):
    server = launch(dataDirectory, "--workers", "3")
    workers = workersOf(server)
    assert waitFor(lambda: all(f"worker {n}: AccessLoggingSite (TLS) starting" in server.log()
                               for n in (1, 2)))
    server.stop()
    # twistd ends by the signal that stopped it, once shut down cleanly.
    assert server.process.returncode == -signal.SIGTERM
    assert "Server Shut Down." in server.log()
    assert not any(alive(pid) for pid in workers)
    assert server.log().count("Received SIGTERM, shutting down.") == 3


def test_connections_are_spread_between_the_processes(launch, dataDirectory):
    """
    Connections made at once go to the processes in turn, as 8 cameras'
    uploads starting together would: not all to the first one awake.
    """
    server = launch(dataDirectory, "--workers", "2")
    assert waitFor(lambda: "worker 1: AccessLoggingSite (TLS) starting" in server.log())
    context = ssl.create_default_context(cafile=server.caFile)
    context.check_hostname = False

    def served():
        return [line for line in server.log().splitlines()
                if "[bwscd.access#info]" in line and "HEAD /v1/AUTH_" in line]

    # Three rounds: the process woken first taking 3 to 5 of 8 by chance,
    # three times running, is unlikely (it took 6, 7, 6, 2, 6 in five rounds).
    for round in range(3):
        start = threading.Barrier(8)

        def connect(number):
            start.wait()
            return context.wrap_socket(socket.create_connection(("127.0.0.1", server.port)))

        with ThreadPoolExecutor(8) as pool:
            connections = list(pool.map(connect, range(8)))
        # Every connection open at once; then one request on each, for the
        # access log to say which process took it.
        try:
            for number, connection in enumerate(connections):
                connection.sendall(b"HEAD /v1/AUTH_%d HTTP/1.1\r\nHost: x\r\n\r\n" % number)
                assert connection.recv(100).startswith(b"HTTP/1.1 401")
        finally:
            for connection in connections:
                connection.close()
        assert waitFor(lambda: len(served()) == 8 * (round + 1))
        byWorker = sum("worker 1: " in line for line in served()[-8:])
        # 4 + 4 unless a process was busy for the whole of a deferral.
        assert 3 <= byWorker <= 5, served()
        time.sleep(0.5)  # for the processes to count the connections closed
    # A worker's log lines reach the main process's log whole and at once
    # (the last one too, with no other after it).
    assert all(re.search(r" in=0 out=0 \d+\.\d{3}s$", line) for line in served()), served()


def test_a_stuck_worker_holds_no_connection_back(launch, dataDirectory):
    """
    A worker that takes nothing (stopped here) still counts fewer
    connections than the main process: the main process leaves a new one
    to it only for a moment, then takes it and the next ones itself.
    """
    server = launch(dataDirectory, "--workers", "2")
    assert waitFor(lambda: "worker 1: AccessLoggingSite (TLS) starting" in server.log())
    [worker] = workersOf(server)
    os.kill(worker, signal.SIGSTOP)
    try:
        # A timeout, for the test to fail rather than wait for ever.
        with closing(server.connection(timeout=10)) as held:
            held.head_account()
            started = time.monotonic()
            for _ in range(5):
                with closing(server.connection(timeout=10)) as swift:
                    swift.head_account()
            elapsed = time.monotonic() - started
    finally:
        os.kill(worker, signal.SIGCONT)
    # 10 new connections (a login and a HEAD each time): the first one left
    # to the worker for 20 ms, the others taken at once, as the worker's
    # count does not change.
    assert elapsed < 2, elapsed
