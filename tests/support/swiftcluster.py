"""
A real OpenStack Swift (PyPI's C{swift}) as a single-node cluster on
loopback, for the C{swift:} backend's tests and benchmarks: one replica,
rings of part power 10, tempauth with Debian's memcached, and the S3 API
through the C{s3api} middleware (access key C{test:tester}, secret
C{testing}).

Its one device is a loop-mounted XFS image (Debian's xfsprogs): Swift keeps
an object's metadata in extended attributes, and ext4, this machine's root
filesystem, allows only about 3.5 KB of them per file, less than the 4 KB of
metadata the API lets an object carry.  Without root or loop devices the
device is a plain directory, and objects with that much metadata fail.
"""

import os
import pwd
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request

from tests.support.installing import Unavailable, installPrograms
from tests.support.server import HOST, freePort

USER, KEY = "test:tester", "testing"
S3_BUCKET = "bwscd-tests"
ACCOUNT = "AUTH_test"
MEMCACHED = "/usr/bin/memcached"
IMAGE_SIZE = 4 << 30
"""Bytes of the XFS image by default: sparse, so only what is stored takes disk."""
SERVERS = ("account", "container", "object")


def _swiftProgram(name: str) -> str:
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        raise Unavailable(f"{name} missing: pip install the test extra (PyPI's swift)")
    return path


class SwiftCluster:
    """
    A single-node Swift cluster in C{directory}: its configuration, rings,
    device and logs, its servers' ports chosen free on 127.0.0.1.

    @ivar authURL: tempauth's v1 URL (C{X-Auth-User}/C{X-Auth-Key}).
    @ivar proxyURL: the proxy's base URL, for S3 too.
    """

    def __init__(self, directory: str, maxFileSize: int | None = None, tokenLife: int = 86400,
                 imageSize: int = IMAGE_SIZE, workers: int = 0):
        self.directory = directory
        self.configuration = os.path.join(directory, "etc")
        self.devices = os.path.join(directory, "devices")
        self.device = os.path.join(self.devices, "d1")
        self.image = os.path.join(directory, "xfs.img")
        self.maxFileSize = maxFileSize
        self.tokenLife = tokenLife
        self.imageSize = imageSize
        self.workers = workers
        self.ports = {name: freePort() for name in (*SERVERS, "proxy", "memcached")}
        self.proxyURL = f"http://{HOST}:{self.ports['proxy']}"
        self.authURL = f"{self.proxyURL}/auth/v1.0"
        self.storageURL = f"{self.proxyURL}/v1/{ACCOUNT}"
        self._processes: dict[str, subprocess.Popen] = {}
        self._mounted = False

    @classmethod
    def start(cls, directory: str, **options) -> "SwiftCluster":
        """
        Install what is missing (memcached and xfsprogs from Debian), build
        and start the cluster; it answers once this returns.

        @raise Unavailable: saying why it can't run here.
        """
        installPrograms([MEMCACHED, "mkfs.xfs"], ["memcached", "xfsprogs"])
        for name in (*SERVERS, "proxy"):
            _swiftProgram(f"swift-{name}-server")
        cluster = cls(directory, **options)
        try:
            cluster._build()
            cluster._startMemcached()
            for name in (*SERVERS, "proxy"):
                cluster.startServer(name)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    # Building.

    def _build(self) -> None:
        os.makedirs(self.configuration)
        os.makedirs(self.device)
        self._mountDevice()
        constraints = "" if self.maxFileSize is None else (
            f"[swift-constraints]\nmax_file_size = {self.maxFileSize}\n")
        self._write("swift.conf", """
            [swift-hash]
            swift_hash_path_suffix = bwscd-tests
            [storage-policy:0]
            name = one-replica
            default = yes
            """ + constraints)
        for name in SERVERS:
            self._write(f"{name}-server.conf", self._common(name), f"""
                [pipeline:main]
                pipeline = {name}-server
                [app:{name}-server]
                use = egg:swift#{name}
                # Listings follow what is stored: no object updater runs here to
                # apply a container update that an object server gave up on
                # after its default 1 s, as a loaded small machine makes it.
                container_update_timeout = 30
                """)
            builder = os.path.join(self.configuration, f"{name}.builder")
            ringBuilder = _swiftProgram("swift-ring-builder")
            for arguments in (["create", "10", "1", "1"],
                              ["add", f"r1z1-{HOST}:{self.ports[name]}/d1", "100"],
                              ["rebalance"]):
                subprocess.run([ringBuilder, builder, *arguments], check=True,
                               capture_output=True)
        self._writeProxy("proxy", "s3api tempauth", f"""
            [filter:tempauth]
            use = egg:swift#tempauth
            user_test_tester = {KEY} .admin
            token_life = {self.tokenLife}
            [filter:s3api]
            use = egg:swift#s3api
            """)

    def _writeProxy(self, name: str, auth: str, sections: str) -> None:
        """A proxy's configuration, C{auth} its pipeline's middleware that authenticates."""
        self._write(f"{name}-server.conf", self._common(name), f"""
            [pipeline:main]
            pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats
                {auth} copy slo dlo proxy-logging proxy-server
            [app:proxy-server]
            use = egg:swift#proxy
            account_autocreate = true
            # An object server fsyncing a large object can take longer than
            # Swift's default 10 s to answer the others, on a small machine.
            node_timeout = 60
            [filter:cache]
            use = egg:swift#memcache
            memcache_servers = {HOST}:{self.ports["memcached"]}
            [filter:catch_errors]
            use = egg:swift#catch_errors
            [filter:gatekeeper]
            use = egg:swift#gatekeeper
            [filter:healthcheck]
            use = egg:swift#healthcheck
            [filter:proxy-logging]
            use = egg:swift#proxy_logging
            [filter:listing_formats]
            use = egg:swift#listing_formats
            [filter:copy]
            use = egg:swift#copy
            [filter:slo]
            use = egg:swift#slo
            [filter:dlo]
            use = egg:swift#dlo
            """, sections)

    def reservePort(self, name: str) -> int:
        """The port a server to be started as C{name} will listen on, chosen now."""
        return self.ports.setdefault(name, freePort())

    def startKeystoneProxy(self, authURL: str, user: str, password: str) -> None:
        """
        A second proxy, C{keystone-proxy}, that takes Keystone's tokens
        (C{authtoken} checks them with C{user}'s credentials, C{keystoneauth}
        lets a project's members into its account C{AUTH_<project id>}).
        """
        self.reservePort("keystone-proxy")
        self._writeProxy("keystone-proxy", "authtoken keystoneauth", f"""
            [filter:authtoken]
            paste.filter_factory = keystonemiddleware.auth_token:filter_factory
            www_authenticate_uri = {authURL}
            auth_url = {authURL}
            auth_type = password
            # Keystone's bootstrap made only its public endpoint.
            interface = public
            username = {user}
            password = {password}
            project_name = admin
            user_domain_name = Default
            project_domain_name = Default
            [filter:keystoneauth]
            use = egg:swift#keystoneauth
            operator_roles = admin, member
            """)
        self.startServer("keystone-proxy")

    def _common(self, name: str) -> str:
        return textwrap.dedent(f"""
            [DEFAULT]
            bind_ip = {HOST}
            bind_port = {self.ports[name]}
            workers = {self.workers}
            # Its workers run as this user (Swift's default is a "swift" user).
            user = {pwd.getpwuid(os.getuid()).pw_name}
            mount_check = false
            devices = {self.devices}
            swift_dir = {self.configuration}
            log_name = {name}
            # No syslog here: the servers' -v puts their log on stderr.
            log_address = /nonexistent
            """)

    def _write(self, name: str, *texts: str) -> None:
        with open(os.path.join(self.configuration, name), "w") as f:
            f.write("".join(textwrap.dedent(text) for text in texts))

    def _mountDevice(self) -> None:
        if os.geteuid() != 0:
            return
        with open(self.image, "wb") as f:
            f.truncate(self.imageSize)
        subprocess.run(["mkfs.xfs", "-q", self.image], check=True, capture_output=True)
        done = subprocess.run(["mount", "-o", "loop", self.image, self.device],
                              capture_output=True, text=True)
        if done.returncode:
            raise Unavailable(f"can't loop-mount the XFS device: {done.stderr.strip()}")
        self._mounted = True

    # Running.

    def _startMemcached(self) -> None:
        self._processes["memcached"] = subprocess.Popen(
            [MEMCACHED, "-u", "root", "-l", HOST, "-p", str(self.ports["memcached"]), "-U", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def startServer(self, name: str) -> None:
        """Start one of its servers (again), and wait until it answers."""
        log = open(os.path.join(self.directory, f"{name}.log"), "ab")
        program = "proxy" if name.endswith("proxy") else name
        self._processes[name] = subprocess.Popen(
            [_swiftProgram(f"swift-{program}-server"),
             os.path.join(self.configuration, f"{name}-server.conf"), "-v"],
            stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 30
        # Any answer will do: the storage servers have no health check.
        probe = f"http://{HOST}:{self.ports[name]}/healthcheck"
        while True:
            try:
                with urllib.request.urlopen(probe, timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                if self._processes[name].poll() is not None or time.monotonic() > deadline:
                    raise Unavailable(f"swift-{name}-server did not start: see "
                                      f"{os.path.join(self.directory, name + '.log')}")
                time.sleep(0.05)

    def stopServer(self, name: str, how: int = signal.SIGTERM) -> None:
        """Stop one of its servers (C{"proxy"}: the store is unreachable)."""
        process = self._processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, how)
        except ProcessLookupError:
            pass
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def pid(self, name: str) -> int:
        return self._processes[name].pid

    def forgetTokens(self) -> None:
        """Empty memcached, where tempauth keeps its tokens: every one given is refused."""
        with socket.create_connection((HOST, self.ports["memcached"]), timeout=5) as s:
            s.sendall(b"flush_all\r\n")
            assert s.recv(100).startswith(b"OK")

    def stop(self) -> None:
        for name in list(self._processes):
            if name == "memcached":
                self._processes.pop(name).kill()
            else:
                self.stopServer(name)
        if self._mounted:
            subprocess.run(["umount", "-l", self.device], capture_output=True)
            self._mounted = False
        if os.path.exists(self.image):
            os.remove(self.image)

    def backendSpec(self, prefix: str = "", **options) -> str:
        """A C{--backend} spec for this cluster's account."""
        return _spec("swift", {"auth": self.authURL, "user": USER, "key": KEY,
                               **({"prefix": prefix} if prefix else {}), **options})

    def s3BackendSpec(self, bucket: str, prefix: str = "", **options) -> str:
        """A C{--backend} spec for one bucket of this cluster's S3 API."""
        return _spec("s3", {"endpoint": self.proxyURL, "bucket": bucket, "access_key": USER,
                            "secret": KEY, **({"prefix": prefix} if prefix else {}), **options})

    def s3(self):
        """boto3's S3 client on this cluster's S3 API."""
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.proxyURL, aws_access_key_id=USER,
                            aws_secret_access_key=KEY, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}))


def _spec(name: str, options: dict) -> str:
    # The spec's fields are split at colons: a backslash keeps a URL's.
    return f"{name}:" + ":".join(f"{key}={str(value).replace(':', chr(92) + ':')}"
                                 for key, value in options.items())
