"""
A real OpenSSH server on loopback for the SFTP backend's tests: its own
throwaway host key and user key, its own port, and the remote tree in a
directory of this machine, so a test can look at what landed there.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

from tests.support.installing import installPrograms
from tests.support.processes import descendantsOf, isRunning
from tests.support.server import HOST, freePort

SSHD = "/usr/sbin/sshd"
# The SFTP backend runs OpenSSH's client; ssh-keygen comes with it.
CLIENT = ("ssh", "ssh-keygen")
# sshd refuses to start without its privilege separation directory.
PRIVILEGE_SEPARATION = "/run/sshd"


def installSSHD() -> str:
    """
    The path of sshd, installing Debian's C{openssh-server} (which brings
    C{openssh-client}, the C{ssh} the backend runs) if either is missing.

    @raise Unavailable: saying why they can't be had.
    """
    installPrograms([SSHD, *CLIENT], ["openssh-server", "openssh-client"])
    return SSHD


def _keygen(path: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bwscd-test", "-f", path],
        check=True,
    )


class SSHServer:
    """
    C{sshd -D} on 127.0.0.1, accepting the current user with C{keyPath}.

    @ivar root: the directory the backend is told to use as its root; on
        this machine, so the tests can read the remote tree directly.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self.port = freePort()
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.hostKeyPath = os.path.join(directory, "ssh_host_ed25519_key")
        self.keyPath = os.path.join(directory, "id_ed25519")
        self.knownHostsPath = os.path.join(directory, "known_hosts")
        self.root = os.path.join(directory, "remote")
        self.logPath = os.path.join(directory, "sshd.log")
        self._configPath = os.path.join(directory, "sshd_config")
        self._process: subprocess.Popen | None = None

    @classmethod
    def start(cls, directory: str) -> "SSHServer":
        """
        Make keys and a configuration in C{directory} (which must exist),
        start sshd and wait until it accepts connections.

        @raise Unavailable: if there is no sshd and it can't be installed.
        """
        sshd = installSSHD()
        server = cls(directory)
        _keygen(server.hostKeyPath)
        _keygen(server.keyPath)
        shutil.copy(server.keyPath + ".pub", os.path.join(directory, "authorized_keys"))
        with open(server.hostKeyPath + ".pub") as f:
            keyType, key = f.read().split()[:2]
        with open(server.knownHostsPath, "w") as f:
            f.write(f"[{HOST}]:{server.port} {keyType} {key}\n")
        with open(server._configPath, "w") as f:
            f.write(
                f"Port {server.port}\n"
                f"ListenAddress {HOST}\n"
                f"HostKey {server.hostKeyPath}\n"
                f"AuthorizedKeysFile {directory}/authorized_keys\n"
                f"PidFile {directory}/sshd.pid\n"
                "StrictModes no\n"
                "UsePAM no\n"
                "PasswordAuthentication no\n"
                "KbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\n"
                "Subsystem sftp internal-sftp\n"
            )
        os.makedirs(server.root)
        server._sshd = sshd
        server._run()
        return server

    @property
    def pid(self) -> int | None:
        """The process id of sshd, while it runs (its sessions are its children)."""
        return None if self._process is None else self._process.pid

    def backendSpec(self, **overrides: str) -> str:
        """The C{--backend} value for the SFTP backend on this server."""
        options = {
            "host": HOST,
            "port": str(self.port),
            "user": self.user,
            "key": self.keyPath,
            "known_hosts": self.knownHostsPath,
            "root": self.root,
            **overrides,
        }
        escape = lambda value: value.replace("\\", "\\\\").replace(":", "\\:")
        return "sftp:" + ":".join(f"{key}={escape(value)}" for key, value in options.items())

    def _run(self) -> None:
        os.makedirs(PRIVILEGE_SEPARATION, mode=0o755, exist_ok=True)
        with open(self.logPath, "ab") as log:
            self._process = subprocess.Popen(
                [self._sshd, "-D", "-e", "-f", self._configPath],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                with open(self.logPath) as f:
                    raise RuntimeError(f"sshd exited {self._process.returncode}:\n{f.read()}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port}")

    def stop(self) -> None:
        """
        Stop sshd and every session it serves: clients see their
        connections drop, and new ones are refused.
        """
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        # Each session runs in a child that sshd has put in a session of its
        # own, so killing sshd alone leaves them running: stop sshd so that
        # it forks no more, then end it and its children by their ids.
        process.send_signal(signal.SIGSTOP)
        sessions = descendantsOf(process.pid)
        for pid in sessions:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.kill()
        process.wait(10)
        for pid in sessions:
            while isRunning(pid):
                time.sleep(0.01)

    def restart(self) -> None:
        """Start sshd again, on the same port with the same keys."""
        self.stop()
        self._run()
