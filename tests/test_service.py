"""
C{twistd bwscd} as an operator meets it: first start, restarts, options.
"""

import json
import os
import signal
import stat
import subprocess

import pytest
from bwscd.config import connectionfile


def test_first_start_writes_a_valid_connection_file(server):
    with open(os.path.join(server.data, "config.json"), "rb") as f:
        conf = connectionfile.validate(f.read())
    assert conf["AuthenticationTokenURI"] == [f"https://127.0.0.1:{server.port}/auth/v1.0"]
    assert conf["ContainerType"] == "mkv"
    assert conf["WantEncryption"] is False
    assert len(conf["HTTPSCertificate"]) == 1
    log = server.log()
    assert os.path.join(server.data, "config.json") in log
    assert conf["AuthenticationTokenURI"][0] in log
    assert conf["BlobAPIKey"] not in log


def test_secrets_are_private_and_the_key_is_only_hashed(server):
    for name in ("settings.json", "server.key", "config.json"):
        mode = stat.S_IMODE(os.stat(os.path.join(server.data, name)).st_mode)
        assert mode == 0o600, name
    key = server.connectionFile["BlobAPIKey"]
    with open(os.path.join(server.data, "settings.json")) as f:
        settings = f.read()
    assert key not in settings
    assert json.loads(settings)["account"]["keyHash"].startswith("scrypt$")


def test_restart_reuses_account_and_certificate(launch, dataDirectory):
    first = launch(dataDirectory)
    before = first.connectionFile
    with open(os.path.join(dataDirectory, "server.crt"), "rb") as f:
        certificate = f.read()
    first.stop()
    second = launch(dataDirectory, port=first.port)
    assert second.connectionFile == before
    with open(os.path.join(dataDirectory, "server.crt"), "rb") as f:
        assert f.read() == certificate
    second.connection().head_account()


def test_new_public_address_gets_new_certificate_and_file(launch, dataDirectory):
    first = launch(dataDirectory)
    before = first.connectionFile
    first.stop()
    second = launch(dataDirectory, "--public-address", "localhost", port=first.port)
    after = second.connectionFile
    assert after["BlobAPIKey"] == before["BlobAPIKey"]
    assert after["HTTPSCertificate"] != before["HTTPSCertificate"]
    assert f"https://localhost:{first.port}/auth/v1.0" in after["AuthenticationTokenURI"]
    second.connection().head_account()
    assert "upload" in second.log() and "Body Worn Manager again" in second.log()


def test_plain_http_for_development(launch, dataDirectory):
    server = launch(dataDirectory, https=False)
    conf = server.connectionFile
    assert "HTTPSCertificate" not in conf
    assert conf["AuthenticationTokenURI"][0].startswith("http://")
    connection = server.connection()
    connection.put_container("Users")
    assert connection.put_object("Users", "u", b"abc") == "900150983cd24fb0d6963f7d28e17f72"


def test_container_type_mp4(launch, dataDirectory):
    server = launch(dataDirectory, "--container-type", "mp4")
    assert server.connectionFile["ContainerType"] == "mp4"


def test_leftovers_of_interrupted_writes_are_removed_at_start(launch, dataDirectory):
    temporary = os.path.join(dataDirectory, "storage", ".bwscd", "tmp")
    os.makedirs(temporary)
    for name in ("w-1", "w-2"):
        with open(os.path.join(temporary, name), "wb") as f:
            f.write(b"half an upload")
    server = launch(dataDirectory)
    assert os.listdir(temporary) == []
    assert "removed 2 leftover(s)" in server.log()


def test_backend_options(launch, dataDirectory, tmp_path):
    root = tmp_path / "elsewhere"
    server = launch(dataDirectory, "--backend", f"filesystem:root={root}")
    server.connection().put_container("Users")
    assert (root / "Users" / "Users.metadata.json").exists()


@pytest.mark.parametrize("arguments, message", [
    (["--backend", "nosuch"], "unknown backend 'nosuch'; installed backends: filesystem"),
    (["--backend", "filesystem:colour=blue"], "unknown option(s) colour"),
    (["--backend", "filesystem:reserve=lots"], "reserve='lots' is not a size"),
    (["--container-type", "avi"], "--container-type must be mkv or mp4"),
    (["--port", "0"], "--port must be 1 to 65535"),
    (["--catalog-port", "web"], "--catalog-port 'web': a port from 1 to 65535, or 0 or off"),
    (["--port", "9000", "--catalog-port", "9000"], "--catalog-port must differ from --port"),
    (["--map-tiles", "http://tiles.example/{z}/{x}/{y}.png"],
     "--map-tiles 'http://tiles.example/{z}/{x}/{y}.png': an https URL with {z}, {x} and {y}"),
])
def test_bad_options_fail_at_start_with_one_clear_line(twistdCommand, tmp_path, arguments,
                                                      message):
    result = subprocess.run(
        [*twistdCommand, "bwscd", "--data", str(tmp_path / "d"), *arguments],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.fixture
def cannotStart(tmp_path):
    """
    C{(arguments, prefix, message)} for a start that must fail, by name: a
    port another program listens on, a data directory the server may not
    read (for root too: started without the capabilities that pass over
    file permissions), an option the backend does not know.
    """
    import shutil
    import socket

    listening = []

    def make(failure: str):
        data = str(tmp_path / "data")
        if failure == "port in use":
            busy = socket.socket()
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            listening.append(busy)
            port = busy.getsockname()[1]
            return (["--data", data, "--interface", "127.0.0.1", "--port", str(port)], [],
                    f"127.0.0.1 port {port} is in use by another program (another server?): "
                    "stop it, or give another --port or --interface")
        if failure == "unreadable data directory":
            os.mkdir(data, 0)
            prefix = []
            if os.geteuid() == 0:
                if shutil.which("setpriv") is None:
                    pytest.skip("needs setpriv (util-linux) to run as root without "
                                "CAP_DAC_OVERRIDE")
                prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
            return (["--data", data], prefix,
                    f"{data}/bwscd.lock: Permission denied; the data directory and the "
                    "storage must be readable and writable by the user twistd runs as "
                    f"(uid {os.geteuid()})")
        return (["--data", data, "--backend", "filesystem:colour=blue"], [],
                "--backend filesystem:colour=blue: filesystem backend: unknown option(s) "
                "colour (known: reserve, root); the backends and their options: "
                "twistd bwscd --help-backends")

    yield make
    for busy in listening:
        busy.close()


@pytest.mark.parametrize("failure", ["port in use", "unreadable data directory",
                                     "bad backend option"])
@pytest.mark.parametrize("foreground", [True, False], ids=["foreground", "daemon"])
def test_a_server_that_cannot_start_says_why_in_one_line(twistdCommand, tmp_path, cannotStart,
                                                         failure, foreground):
    arguments, prefix, message = cannotStart(failure)
    if foreground:  # as the README runs it
        command = [*twistdCommand, "bwscd"]
    else:  # found before twistd becomes a daemon, so its caller sees it too
        command = [twistdCommand[0], f"--pidfile={tmp_path}/twistd.pid",
                   f"--logfile={tmp_path}/twistd.log", "bwscd"]
    result = subprocess.run([*prefix, *command, *arguments], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (1, ""), result
    assert result.stderr.splitlines() == [f"twistd bwscd: cannot start: {message}"], result
    assert not os.path.exists(tmp_path / "data" / "settings.json")


def test_help_lists_every_option(twistdCommand):
    result = subprocess.run([*twistdCommand, "bwscd", "--help"], capture_output=True, text=True,
                            timeout=60)
    for option in ("--data", "--port", "--interface", "--backend", "--public-address",
                   "--http", "--container-type", "--token-lifetime", "--max-uploads", "--idle-timeout", "--header-timeout",
                   "--max-downloads",
                   "--help-backends", "--event-log-keep", "--refusal-quiet-period"):
        assert option in result.stdout


def test_shutdown_during_an_upload_leaves_nothing_behind(launch, dataDirectory):
    import time

    server = launch(dataDirectory)
    swift = server.connection()
    swift.put_container("Users")
    upload = server.startUpload(swift, "/Users/half", 10_000_000, b"x" * 1_000_000)
    time.sleep(0.5)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 10
    upload.close()
    # twistd re-raises the signal once it has shut down cleanly.
    assert server.process.returncode == -signal.SIGTERM
    assert not os.path.exists(os.path.join(server.storage, "Users", "half"))
    assert os.listdir(os.path.join(server.storage, ".bwscd", "tmp")) == []


def test_slow_request_headers_are_cut_off(launch, dataDirectory):
    import time

    server = launch(dataDirectory, "--header-timeout", "2")
    with server.connectTLS(timeout=None) as tls:
        tls.sendall(b"PUT /v1/AUTH_x/c/o HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        tls.settimeout(10)
        for _ in range(8):  # a byte now and then keeps the idle timeout away
            try:
                tls.sendall(b"X")
            except OSError:
                break
            time.sleep(0.5)
        assert tls.recv(1024) == b""
        assert time.monotonic() - started < 6
    assert "request headers took longer than 2 s" in server.log()


def test_uploads_beyond_the_limit_get_503_with_retry_after(launch, dataDirectory):
    server = launch(dataDirectory, "--max-uploads", "1")
    swift = server.connection()
    swift.put_container("Users")
    url, token = swift.get_auth()
    path = url.split(str(server.port), 1)[1]
    first = server.startUpload(swift, "/Users/first", 1000, b"x" * 10)
    import time
    time.sleep(0.5)
    second = server.httpsConnection()
    second.request("PUT", path + "/Users/second", body=b"y", headers={"X-Auth-Token": token})
    answer = second.getresponse()
    assert answer.status == 503
    assert answer.getheader("Retry-After") == "10"
    assert b"upload slots are busy" in answer.read()
    first.send(b"x" * 990)
    assert first.getresponse().status == 201
    assert swift.put_object("Users", "third", b"z")
