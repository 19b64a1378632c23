"""
A real C{twistd -n bwscd} on loopback, with its own data directory, HTTPS
with the certificate from the connection file it wrote, and
python-swiftclient as the client; the sizes of a process from C{/proc}.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import swiftclient

from tests.support.processes import processStatus

HOST = "127.0.0.1"


def freePort() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def installed(program: str) -> str:
    """The path of C{program} as installed beside this Python (a venv's), or on C{PATH}."""
    found = os.path.join(os.path.dirname(sys.executable), program)
    return found if os.path.exists(found) else shutil.which(program)


BWSCD = installed("bwscd")
TWISTD = installed("twistd")
SWIFT = installed("swift")  # python-swiftclient's command line


@dataclass
class Server:
    """A running C{twistd -n bwscd}."""

    data: str
    port: int
    process: subprocess.Popen
    logPath: str
    https: bool = True

    @property
    def connectionFile(self) -> dict:
        with open(os.path.join(self.data, "config.json")) as f:
            return json.load(f)

    @property
    def storage(self) -> str:
        return os.path.join(self.data, "storage")

    @property
    def caFile(self) -> str:
        """The certificate from the connection file, as a client's trust anchor."""
        path = os.path.join(self.data, "test-ca.pem")
        if not os.path.exists(path):
            temporary = f"{path}.{threading.get_ident()}"
            with open(temporary, "wb") as f:
                f.write(base64.b64decode(self.connectionFile["HTTPSCertificate"][0]))
            os.replace(temporary, path)
        return path

    @property
    def authURL(self) -> str:
        return self.connectionFile["AuthenticationTokenURI"][0]

    def events(self) -> list[dict]:
        """Every event in the service's event log, oldest first."""
        from bwscd.policy.events import readEvents

        return readEvents(os.path.join(self.data, "events.jsonl"))

    def eventsOf(self, kind: str) -> list[dict]:
        """The events of type C{kind}, oldest first."""
        return [event for event in self.events() if event["type"] == kind]

    def log(self) -> str:
        with open(self.logPath, encoding="utf-8") as f:
            return f.read()

    def connection(self, **kwargs) -> swiftclient.Connection:
        conf = self.connectionFile
        return swiftclient.Connection(
            authurl=self.authURL,
            user=conf["BlobAPIUserName"],
            key=conf["BlobAPIKey"],
            cacert=self.caFile if self.https else None,
            retries=0,
            **kwargs,
        )

    def addAccount(self, name: str, role: str) -> swiftclient.Connection:
        """
        A new integrator account (C{bwscd credentials add}), logged in once
        this server has taken it up (SIGHUP).
        """
        added = subprocess.run([BWSCD, "credentials", "--data", self.data, "add", name,
                                "--role", role], capture_output=True, text=True, check=True)
        assert added.stdout.startswith(f"{role} {name} added"), added.stdout
        account = swiftclient.Connection(
            authurl=self.authURL, user=name, key=added.stdout.splitlines()[0].rsplit(" ", 1)[1],
            cacert=self.caFile if self.https else None, retries=0)
        self.process.send_signal(signal.SIGHUP)
        self._waitForLogin(account, accepted=True)
        return account

    def removeAccount(self, account: swiftclient.Connection) -> None:
        """Remove C{account} (C{bwscd credentials remove}), once this server refuses it."""
        subprocess.run([BWSCD, "credentials", "--data", self.data, "remove", account.user],
                       capture_output=True, check=True)
        self.process.send_signal(signal.SIGHUP)
        self._waitForLogin(swiftclient.Connection(
            authurl=self.authURL, user=account.user, key=account.key,
            cacert=self.caFile if self.https else None, retries=0), accepted=False)

    def _waitForLogin(self, account: swiftclient.Connection, accepted: bool) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                account.get_auth()
                if accepted:
                    return
            except swiftclient.ClientException:
                if not accepted:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"{account.user} still {'refused' if accepted else 'accepted'}")
            time.sleep(0.1)

    def clientContext(self) -> ssl.SSLContext:
        """A TLS client context that trusts this server's certificate."""
        return ssl.create_default_context(cafile=self.caFile)

    def connectTLS(self, timeout: float | None = 30) -> ssl.SSLSocket:
        """A raw TLS connection to this server, for requests written by hand."""
        raw = socket.create_connection((HOST, self.port), timeout=timeout)
        return self.clientContext().wrap_socket(raw, server_hostname=HOST)

    def httpsConnection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(HOST, self.port, context=self.clientContext())

    def startUpload(self, swift: swiftclient.Connection, path: str, length: int,
                    first: bytes) -> http.client.HTTPSConnection:
        """
        A PUT of C{length} bytes to C{path} (below the account) as C{swift}'s
        account, of which only the C{first} are sent: the test sends the
        rest, or doesn't.
        """
        url, token = swift.get_auth()
        client = self.httpsConnection()
        client.putrequest("PUT", urlsplit(url).path + path)
        client.putheader("X-Auth-Token", token)
        client.putheader("Content-Length", str(length))
        client.endheaders()
        client.send(first)
        return client

    def swiftCommand(self, account: swiftclient.Connection,
                     *arguments: str) -> subprocess.CompletedProcess:
        """C{swift *arguments} (python-swiftclient's command line) as C{account}."""
        return subprocess.run(
            # --key=: a key may start with "-".
            [SWIFT, "-A", self.authURL, f"--user={account.user}", f"--key={account.key}",
             "--os-cacert", self.caFile, *arguments],
            capture_output=True, text=True, timeout=60)

    def status(self) -> dict[str, int]:
        """The process's C{/proc/PID/status} sizes (VmRSS, VmHWM, ...) in bytes."""
        return processStatus(self.process.pid)

    def peakMemory(self) -> "PeakMemory":
        """C{with server.peakMemory() as memory:} ... C{memory.peak}."""
        return PeakMemory(self)

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


class PeakMemory:
    """The largest VmRSS of a server, sampled every 50 ms in a thread."""

    def __init__(self, server: Server):
        self._server = server
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while True:
            try:
                self.peak = max(self.peak, self._server.status()["VmRSS"])
            except (OSError, KeyError):
                return  # the process is gone
            self.samples += 1
            if self._stop.wait(0.05):
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def startServer(data: str, *arguments: str, port: int | None = None, https=True,
                cwd: str | None = None) -> Server:
    """
    Start C{twistd -n bwscd} and wait until it listens; in C{cwd}, by
    default the directory that holds C{data}.
    """
    port = port or freePort()
    logPath = os.path.join(data + ".log")
    command = [
        TWISTD, "-n", "--pidfile=", "bwscd",
        "--data", data, "--port", str(port), "--interface", HOST,
        "--public-address", HOST, *arguments,
    ]
    if not any(argument.startswith("--catalog-port") for argument in arguments):
        # The web viewer's default port is one for the whole machine: only
        # the tests that want a viewer get one, on a port of their own.
        command += ["--catalog-port", "off"]
    if not https:
        command.append("--http")
    log = open(logPath, "ab")
    startedAt = log.tell()
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd or os.path.dirname(data)
    )
    server = Server(data, port, process, logPath, https)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"twistd exited {process.returncode}:\n{server.log()}")
        with open(logPath, "rb") as f:
            f.seek(startedAt)
            started = b"token URI" in f.read()
        if started:
            return server
        time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"twistd did not start:\n{server.log()}")
