"""
A real OpenStack Keystone (PyPI's keystone) on loopback, for the swift
backend's Keystone v3 auth: SQLite, fernet tokens, served by wsgiref; a
project and a user for bwscd; and in its catalog, as the project's
object-store endpoint, a proxy of a L{SwiftCluster} that takes Keystone's
tokens (keystonemiddleware's C{authtoken}, Swift's C{keystoneauth}).
"""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request

from tests.support.installing import Unavailable
from tests.support.server import HOST, freePort
from tests.support.swiftcluster import SwiftCluster

PROJECT, USER, PASSWORD = "evidence", "bwscd", "bwscd-secret"
REGION = "RegionOne"

SERVE = """
import os, sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

sys.argv[1:] = []  # oslo.config reads the command line
from keystone.server.wsgi import initialize_public_application


class Quiet(WSGIRequestHandler):
    def log_message(self, *arguments):
        pass


make_server("127.0.0.1", int(os.environ["KEYSTONE_PORT"]), initialize_public_application(),
            handler_class=Quiet).serve_forever()
"""


class Keystone:
    """Keystone in C{directory}, and its object-store endpoint on C{cluster}."""

    def __init__(self, directory: str, cluster: SwiftCluster):
        self.directory = directory
        self.cluster = cluster
        self.port = freePort()
        self.authURL = f"http://{HOST}:{self.port}/v3"
        self.adminPassword = secrets.token_hex(8)
        self._process: subprocess.Popen | None = None
        self._environment = dict(os.environ, OS_KEYSTONE_CONFIG_DIR=directory,
                                 KEYSTONE_PORT=str(self.port))

    @classmethod
    def start(cls, directory: str, cluster: SwiftCluster) -> "Keystone":
        """
        Set it up and start it; it answers once this returns.

        @raise Unavailable: PyPI's keystone is not installed (the test extra).
        """
        manage = os.path.join(os.path.dirname(sys.executable), "keystone-manage")
        if not os.path.exists(manage):
            raise Unavailable("keystone-manage missing: pip install the test extra")
        keystone = cls(directory, cluster)
        try:
            keystone._setUp(manage)
            keystone._serve()
            project = keystone._provision()
            cluster.startKeystoneProxy(keystone.authURL, "admin", keystone.adminPassword)
            keystone.storageURL = f"http://{HOST}:{cluster.ports['keystone-proxy']}/v1/" \
                                  f"AUTH_{project}"
        except BaseException:
            keystone.stop()
            raise
        return keystone

    def _setUp(self, manage: str) -> None:
        configuration = os.path.join(self.directory, "keystone.conf")
        with open(configuration, "w") as f:
            f.write(f"""[database]
connection = sqlite:///{self.directory}/keystone.db
[token]
provider = fernet
[fernet_tokens]
key_repository = {self.directory}/fernet
[fernet_receipts]
key_repository = {self.directory}/receipts
[credential]
key_repository = {self.directory}/credential
""")
        user = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
        for arguments in (["db_sync"], ["fernet_setup", *user], ["credential_setup", *user],
                          ["bootstrap", "--bootstrap-password", self.adminPassword,
                           "--bootstrap-public-url", self.authURL,
                           "--bootstrap-region-id", REGION]):
            done = subprocess.run([manage, "--config-file", configuration, *arguments],
                                  env=self._environment, capture_output=True, text=True)
            if done.returncode:
                raise Unavailable(f"keystone-manage {arguments[0]} failed: "
                                  f"{done.stderr.strip()[-500:]}")

    def _serve(self) -> None:
        log = open(os.path.join(self.directory, "keystone.log"), "ab")
        self._process = subprocess.Popen([sys.executable, "-c", SERVE], env=self._environment,
                                         stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.authURL, timeout=5):
                    return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise Unavailable("keystone did not start: see "
                                      f"{self.directory}/keystone.log")
                time.sleep(0.2)

    def _call(self, method: str, path: str, body=None, token: str | None = None):
        request = urllib.request.Request(
            self.authURL + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"X-Auth-Token": token} if token else {})})
        with urllib.request.urlopen(request, timeout=30) as answer:
            data = answer.read()
            return answer.headers, (json.loads(data) if data else None)

    def _provision(self) -> str:
        """bwscd's project and user (a member), the object-store endpoint: the project's id."""
        headers, _ = self._call("POST", "/auth/tokens", {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "domain": {"name": "Default"},
                "password": self.adminPassword}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
        token = headers["X-Subject-Token"]
        _, made = self._call("POST", "/projects", {"project": {
            "name": PROJECT, "domain_id": "default"}}, token)
        project = made["project"]["id"]
        _, made = self._call("POST", "/users", {"user": {
            "name": USER, "domain_id": "default", "password": PASSWORD}}, token)
        user = made["user"]["id"]
        _, roles = self._call("GET", "/roles?name=member", token=token)
        self._call("PUT", f"/projects/{project}/users/{user}/roles/{roles['roles'][0]['id']}",
                   token=token)
        _, made = self._call("POST", "/services", {"service": {
            "type": "object-store", "name": "swift"}}, token)
        proxy = self.cluster.reservePort("keystone-proxy")
        self._call("POST", "/endpoints", {"endpoint": {
            "service_id": made["service"]["id"], "interface": "public", "region_id": REGION,
            "url": f"http://{HOST}:{proxy}/v1/AUTH_$(project_id)s"}}, token)
        return project

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self.cluster.stopServer("keystone-proxy")
