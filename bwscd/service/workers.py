"""
Worker processes: more than one core for concurrent uploads.

One Python process receives at most about one core's worth of uploads (TLS,
HTTP parsing and queueing run on its reactor thread).  With C{--workers N},
the main process (C{twistd bwscd}) opens the listening socket and starts
N - 1 workers, each a whole bwscd service on its own reactor that accepts
connections from the same socket, spread between the processes by how many
each has open (L{bwscd.service.balance}).

The main process does, once, what concerns the storage as a whole: it
recovers the backend (removes leftovers of interrupted writes) before any
worker starts, publishes the capability documents, counts the quota, warns
of the certificate's expiry.  Workers open the backend without recovery
(L{bwscd.interfaces.IStorageBackend.open}), share the registry and the
quota through the data directory, and send their events (as JSON lines on
standard output) and log records (as JSON on standard error) to the main
process, which writes them to the one event log, webhooks and log.  A
worker that ends unexpectedly is started again; one whose main process
dies is killed by the kernel (Linux's C{PR_SET_PDEATHSIG}), so that no
worker outlives the service and holds its port.
"""

import json
import os
import signal
import sys

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger, eventFromJSON, globalLogPublisher

log = Logger()

RESTART_DELAY = 1.0
WORKER_MODULE = "bwscd.service.workerprocess"
"""What a worker process runs (C{python -m}): L{bwscd.service.workerprocess}."""


class WorkerProcesses:
    """
    The main process's workers, numbered from 1, started with
    L{startWorkers} once the listening socket is open.
    """

    def __init__(self, arguments: list[str], count: int, events, connections,
                 lockFDs: list[int]):
        """
        @param arguments: the service's command-line options, given again to
            every worker.
        @param count: how many workers.
        @param events: the main process's L{bwscd.policy.events.Events}, which
            delivers the workers' events.
        @param connections: the processes' L{bwscd.service.balance.ConnectionTable}
            (L{None} with no workers).
        @param lockFDs: the main process's L{bwscd.config.processlock.ServiceLock}s,
            which every worker inherits: the locks stay held while one runs.
        """
        self._arguments = arguments
        self._count = count
        self._events = events
        self._connections = connections
        self._lockFDs = lockFDs
        self._fd: int | None = None
        self._running: dict[int, "_Worker"] = {}
        self._stopping = False

    def startWorkers(self, listeningFD: int) -> None:
        self._fd = listeningFD
        for number in range(1, self._count + 1):
            self._spawn(number)

    def _spawn(self, number: int) -> None:
        worker = _Worker(number, self._events.deliver, self._ended)
        table = self._connections.fd
        command = [sys.executable, "-m", WORKER_MODULE, "--worker", str(number),
                   "--listening-fd", str(self._fd), "--connections-fd", str(table),
                   *self._arguments]
        reactor.spawnProcess(worker, sys.executable, command, env=os.environ,
                             childFDs={0: "w", 1: "r", 2: "r", self._fd: self._fd,
                                       table: table, **{fd: fd for fd in self._lockFDs}})
        self._running[number] = worker

    def _ended(self, worker: "_Worker", reason) -> None:
        self._running.pop(worker.number, None)
        self._connections.markAbsent(worker.number)
        worker.stopped.callback(None)
        if not self._stopping:
            log.error("worker {number} ended ({reason}); starting it again",
                      number=worker.number, reason=reason.getErrorMessage())
            reactor.callLater(RESTART_DELAY, self._restart, worker.number)

    def _restart(self, number: int) -> None:
        if not self._stopping and number not in self._running:
            self._spawn(number)

    def signal(self, number: int) -> None:
        """Send every worker the signal C{number} (SIGHUP: reload now)."""
        for worker in self._running.values():
            worker.transport.signalProcess(number)

    def stop(self) -> Deferred:
        """Stop every worker: fires once they have all ended."""
        self._stopping = True
        stopped = [worker.stopped for worker in self._running.values()]
        self.signal(signal.SIGTERM)
        return gatherResults(stopped)


class _Worker(ProcessProtocol):
    """
    One worker process, seen from the main process: its events go to
    C{deliver}, its log records to the log, and C{ended(worker, reason)} is
    called when it ends.
    """

    def __init__(self, number: int, deliver, ended):
        self._deliver = deliver
        self._ended = ended
        self.number = number
        self.stopped = Deferred()
        self._buffers = {1: b"", 2: b""}

    def childDataReceived(self, fd: int, data: bytes) -> None:
        # One event or log record per line (a log record starts with the
        # record separator, \x1e): JSON escapes the newlines it holds.
        *complete, self._buffers[fd] = (self._buffers[fd] + data).split(b"\n")
        for record in complete:
            record = record.strip(b"\x1e \t\r")
            if record:
                (self._event if fd == 1 else self._logRecord)(record)

    def _event(self, line: bytes) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            log.warn("worker {number} wrote {line!r}", number=self.number, line=line)
            return
        self._deliver(event)

    def _logRecord(self, record: bytes) -> None:
        try:
            event = eventFromJSON(record.decode("utf-8"))
        except ValueError:
            log.warn("worker {number} logged {record!r}", number=self.number, record=record)
            return
        event["log_format"] = f"worker {self.number}: " + (event.get("log_format") or "")
        globalLogPublisher(event)

    def processEnded(self, reason) -> None:
        self._ended(self, reason)
