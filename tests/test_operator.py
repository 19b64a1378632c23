"""
The operator's commands, run as an operator runs them: C{bwscd ...} in a
subprocess, against a data directory and, where it matters, a running
C{twistd bwscd}.
"""

import base64
import datetime
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
import swiftclient
from bwscd import __version__
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from swiftclient.exceptions import ClientException

from bwscd.config import connectionfile
from tests.support.server import BWSCD



def bwscd(*arguments, check=True, cwd=None):
    result = subprocess.run([BWSCD, *arguments], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"bwscd {arguments} failed: {result.stderr}")
    return result


def refused(*arguments, cwd=None) -> str:
    """Run a command that must fail with one clear line; return that line."""
    result = bwscd(*arguments, check=False, cwd=cwd)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def connectionFile(data) -> dict:
    with open(os.path.join(data, "config.json"), "rb") as f:
        return connectionfile.validate(f.read())


def servedFingerprint(port) -> str:
    """The SHA-256 of the certificate a fresh TLS client is shown."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with context.wrap_socket(raw) as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def fingerprintOf(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


def test_init_from_flags_without_questions(tmp_path):
    data = str(tmp_path / "d")
    result = bwscd("init", "--data", data, "--public-address", "bwscd.example.org",
                   "--public-address", "10.9.8.7", "--port", "9443", "--site-name",
                   "North station", "--container-type", "mp4",
                   "--capability", "StoreReadSystemID", "--capability", "StoreBookmarks")
    assert "upload" in result.stdout
    conf = connectionFile(data)
    assert conf["SiteName"] == "North station"
    assert conf["ContainerType"] == "mp4"
    assert conf["AuthenticationTokenURI"] == [
        "https://bwscd.example.org:9443/auth/v1.0", "https://10.9.8.7:9443/auth/v1.0"]
    with open(os.path.join(data, "settings.json")) as f:
        assert json.load(f)["capabilities"] == ["StoreBookmarks", "StoreReadSystemID"]
    assert refused("init", "--data", data) == \
        f"bwscd init: {data} already holds a bwscd data directory"


def test_connection_file_out_and_check(tmp_path):
    data = str(tmp_path / "d")
    bwscd("init", "--data", data, "--public-address", "127.0.0.1")
    out = str(tmp_path / "copy.json")
    bwscd("connection-file", "--data", data, "--out", out)
    with open(out, "rb") as f, open(os.path.join(data, "config.json"), "rb") as g:
        assert f.read() == g.read()
    assert oct(os.stat(out).st_mode & 0o777) == "0o600"
    assert bwscd("connection-file", "--data", data, "--check", out).stdout.strip() == \
        f"{out} is a valid connection file"

    broken = dict(json.load(open(out)), SiteName=7, Extra=1)
    with open(out, "w") as f:
        json.dump(broken, f)
    line = refused("connection-file", "--data", data, "--check", out)
    assert "SiteName" in line and "Extra" in line

    # The last file issued says FullStoreAndReadSupport: true; going back is not allowed.
    issued = json.load(open(os.path.join(data, "config.json")))
    issued["FullStoreAndReadSupport"] = True
    with open(os.path.join(data, "config.json"), "w") as f:
        json.dump(issued, f)
    candidate = dict(issued, FullStoreAndReadSupport=False)
    with open(out, "w") as f:
        json.dump(candidate, f)
    assert "FullStoreAndReadSupport: may only change from false to true" in refused(
        "connection-file", "--data", data, "--check", out)


def test_renewed_certificate_reaches_new_clients_and_spares_uploads_in_flight(
        launch, dataDirectory):
    server = launch(dataDirectory)
    swift = server.connection()
    swift.put_container("Users")
    url, token = swift.get_auth()
    with open(os.path.join(dataDirectory, "server.crt"), "rb") as f:
        old = f.read()
    assert servedFingerprint(server.port) == fingerprintOf(old)

    # An upload starts with the old certificate...
    inflight = server.startUpload(swift, "/Users/inflight", 4 << 20, b"a" * (2 << 20))

    # ...the operator stages a new one: the connection file lists both...
    bwscd("cert", "--data", dataDirectory, "renew", "--new-key")
    assert len(connectionFile(dataDirectory)["HTTPSCertificate"]) == 2
    # ...then activates it; the server takes it up on SIGHUP.
    bwscd("cert", "--data", dataDirectory, "activate")
    with open(os.path.join(dataDirectory, "server.crt"), "rb") as f:
        new = f.read()
    assert fingerprintOf(new) != fingerprintOf(old)
    assert [base64.b64decode(c) for c in connectionFile(dataDirectory)["HTTPSCertificate"]] \
        == [new]
    server.process.send_signal(__import__("signal").SIGHUP)
    deadline = time.monotonic() + 15
    while servedFingerprint(server.port) != fingerprintOf(new):
        assert time.monotonic() < deadline, "the new certificate was never served"
        time.sleep(0.2)

    inflight.send(b"a" * (2 << 20))
    assert inflight.getresponse().status == 201
    # A client that trusts only the new certificate gets through.
    os.remove(server.caFile)
    server.connection().head_account()


def _certificateAuthority():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Police CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(1)
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=3650))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                   .sign(key, hashes.SHA256()))
    return key, certificate


def _issue(caKey, caCertificate, days):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                   .issuer_name(caCertificate.subject).public_key(key.public_key())
                   .serial_number(2).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=days))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), False)
                   .sign(caKey, hashes.SHA256()))
    return key, certificate


def test_imported_certificate_with_chain_and_expiry_warning(launch, dataDirectory, tmp_path):
    server = launch(dataDirectory)
    caKey, caCertificate = _certificateAuthority()
    key, leaf = _issue(caKey, caCertificate, days=10)
    files = {}
    for name, data in [
        ("leaf.pem", leaf.public_bytes(serialization.Encoding.PEM)),
        ("ca.pem", caCertificate.public_bytes(serialization.Encoding.PEM)),
        ("key.pem", key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())),
        ("other-key.pem", ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())),
    ]:
        files[name] = str(tmp_path / name)
        with open(files[name], "wb") as f:
            f.write(data)
    assert "is not the key of" in refused("cert", "--data", dataDirectory, "import",
                                          "--cert", files["leaf.pem"],
                                          "--key", files["other-key.pem"])
    bwscd("cert", "--data", dataDirectory, "import", "--cert", files["leaf.pem"],
          "--key", files["key.pem"], "--chain", files["ca.pem"], "--activate")
    listed = [base64.b64decode(c) for c in connectionFile(dataDirectory)["HTTPSCertificate"]]
    assert [fingerprintOf(c) for c in listed] == [
        leaf.fingerprint(hashes.SHA256()).hex(), caCertificate.fingerprint(hashes.SHA256()).hex()]
    shown = bwscd("cert", "--data", dataDirectory, "show").stdout
    assert "Test Police CA" in shown and "(+1 in chain)" in shown

    # A restart serves it (imported: never replaced) and warns of its expiry.
    server.stop()
    again = launch(dataDirectory, port=server.port)
    assert servedFingerprint(again.port) == leaf.fingerprint(hashes.SHA256()).hex()
    ca = str(tmp_path / "trust.pem")
    with open(ca, "wb") as f:
        f.write(caCertificate.public_bytes(serialization.Encoding.PEM))
    conf = again.connectionFile
    swiftclient.Connection(authurl=again.authURL, user=conf["BlobAPIUserName"],
                           key=conf["BlobAPIKey"], cacert=ca, retries=0).head_account()
    expiring = [e for e in again.events() if e["type"] == "certificate.expiring"]
    assert expiring and expiring[-1]["notValidAfter"].startswith(
        leaf.not_valid_after_utc.date().isoformat())


def test_credentials_rotation_with_a_grace_period(launch, dataDirectory):
    server = launch(dataDirectory)
    old = server.connectionFile
    bwscd("credentials", "--data", dataDirectory, "rotate", "--grace-days", "1")
    new = server.connectionFile
    assert new["BlobAPIKey"] != old["BlobAPIKey"]
    assert new["BlobAPIUserName"] == old["BlobAPIUserName"]
    assert "an older key is accepted until" in bwscd(
        "credentials", "--data", dataDirectory, "list").stdout
    server.process.send_signal(__import__("signal").SIGHUP)
    time.sleep(1)
    server.connection().head_account()  # the new key
    stale = server.connection()
    stale.key = old["BlobAPIKey"]
    stale.head_account()  # the old key, within its grace period

    bwscd("credentials", "--data", dataDirectory, "rotate", "--grace-days", "0")
    server.process.send_signal(__import__("signal").SIGHUP)
    time.sleep(1)
    for key in (old["BlobAPIKey"], new["BlobAPIKey"]):
        stale = server.connection()
        stale.key = key
        with pytest.raises(ClientException) as caught:
            stale.head_account()
        assert caught.value.http_status == 401
    server.connection().head_account()
    assert old["BlobAPIKey"] not in server.log() and new["BlobAPIKey"] not in server.log()


def test_missing_data_directory_is_one_clear_line(tmp_path):
    line = refused("credentials", "--data", str(tmp_path / "none"), "list")
    assert line == f"bwscd credentials: {tmp_path / 'none'} is not a bwscd data directory " \
                   "(no settings.json)"


@pytest.mark.parametrize("arguments, message", [
    (["--public-address", "bad name!"], "'bad name!' is neither an IP address nor a host name"),
    (["--public-address", "127.0.0.1", "--site-name", "x" * 70],
     "SiteName: is 70 characters long, at most 64 allowed"),
    (["--public-address", "127.0.0.1", "--port", "0"], "the port must be 1 to 65535"),
])
def test_init_refuses_bad_settings_and_writes_nothing(tmp_path, arguments, message):
    data = tmp_path / "d"
    assert refused("init", "--data", str(data), *arguments) == f"bwscd init: {message}"
    assert not data.exists()


def test_certificate_import_refusals(tmp_path):
    data = str(tmp_path / "d")
    bwscd("init", "--data", data, "--public-address", "127.0.0.1")
    caKey, caCertificate = _certificateAuthority()
    key, leaf = _issue(caKey, caCertificate, days=30)
    leafPath, keyPath, chainPath = (str(tmp_path / n) for n in ("l.pem", "k.pem", "c.pem"))
    with open(leafPath, "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(keyPath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"secret")))
    assert "is encrypted" in refused("cert", "--data", data, "import", "--cert", leafPath,
                                     "--key", keyPath)
    with open(keyPath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(chainPath, "wb") as f:
        f.write(caCertificate.public_bytes(serialization.Encoding.PEM) * 9)
    assert "would list 11 certificates" in refused(
        "cert", "--data", data, "import", "--cert", leafPath, "--key", keyPath,
        "--chain", chainPath)
    assert not os.path.exists(os.path.join(data, "server.next.crt"))


def test_rotating_a_leaked_key_ends_every_session(launch, dataDirectory):
    server = launch(dataDirectory)
    url, token = server.connection().get_auth()
    bwscd("credentials", "--data", dataDirectory, "rotate", "--grace-days", "0")
    server.process.send_signal(__import__("signal").SIGHUP)
    time.sleep(1)
    stale = swiftclient.Connection(preauthurl=url, preauthtoken=token,
                                   cacert=server.caFile, retries=0)
    with pytest.raises(ClientException) as caught:
        stale.head_account()
    assert caught.value.http_status == 401
    server.connection().head_account()


REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def choices(*command) -> list[str]:
    """The subcommands or actions C{bwscd COMMAND --help} offers."""
    usage = bwscd(*command, "--help").stdout
    return re.search(r"\{([\w,-]+)\}", usage).group(1).split(",")


def test_data_before_or_after_the_action(tmp_path):
    data = str(tmp_path / "d")
    bwscd("init", "--data", data, "--public-address", "127.0.0.1")
    bwscd("categories", "--data", data, "add", "Vandalism")
    # Run where there is no bwscd-data: a default that overwrote the
    # option given at another level would fail, not list the defaults.
    for arguments in (["--data", data, "categories", "list"],
                      ["categories", "--data", data, "list"],
                      ["categories", "list", "--data", data],
                      ["--data", "elsewhere", "categories", "list", "--data", data]):
        listed = bwscd(*arguments, cwd=tmp_path).stdout
        assert listed.splitlines()[-1] == "6\tVandalism", arguments
    for command in choices():
        assert "--data DATA" in bwscd(command, "--help").stdout, command
        if command in ("categories", "cert", "credentials", "keys"):
            for action in choices(command):
                assert "--data DATA" in bwscd(command, action, "--help").stdout, \
                    (command, action)


def test_version_of_both_commands(tmp_path, twistdCommand):
    assert bwscd("--version").stdout == f"bwscd {__version__}\n"
    result = subprocess.run([*twistdCommand, "bwscd", "--version"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result
    assert result.stdout.startswith(f"bwscd {__version__} (Twisted "), result.stdout
    assert os.listdir(tmp_path) == []  # no data directory made


def test_categories_remove_by_id_or_name(tmp_path):
    data = str(tmp_path / "d")
    bwscd("init", "--data", data, "--public-address", "127.0.0.1")
    assert bwscd("categories", "--data", data, "remove", "Assault").stdout == \
        "removed 3\tAssault\n"
    bwscd("categories", "--data", data, "add", "Traffic")
    assert refused("categories", "--data", data, "remove", "Traffic") == \
        "bwscd categories: 2 categories are named Traffic: remove one by its id"
    bwscd("categories", "--data", data, "add", "1", "--id", "X")
    # An id comes first: names need not be unique, ids are.
    assert bwscd("categories", "--data", data, "remove", "1").stdout == \
        "removed 1\tTestimony\n"
    assert bwscd("categories", "--data", data, "remove", "1").stdout == "removed X\t1\n"
    assert refused("categories", "--data", data, "remove", "Testimony") == \
        "bwscd categories: no category with id or name Testimony"
    assert [line.split("\t")[1] for line in bwscd(
        "categories", "--data", data, "list").stdout.splitlines()] == \
        ["Disorderly Conduct", "Homicide", "Traffic", "Traffic"]


def test_a_new_account_works_when_the_command_says(launch, dataDirectory):
    server = launch(dataDirectory)
    added = bwscd("credentials", "--data", dataDirectory, "add", "alice").stdout.splitlines()
    key = added[0].rsplit(": ", 1)[1]
    assert added[1] == "a running server accepts it within 10 s (at once on SIGHUP)"
    assert "reader alice" in bwscd("credentials", "--data", dataDirectory, "list").stdout

    def login():
        swiftclient.Connection(authurl=server.authURL, user="alice", key=key,
                               cacert=server.caFile, retries=0).get_auth()
    # The server looks every 10 s.  Tried every 2 s: 10 failed logins in a
    # minute would lock the address out.
    deadline = time.monotonic() + 10 + 5
    while True:
        try:
            login()
            break
        except ClientException as e:
            assert e.http_status == 401
            assert time.monotonic() < deadline, "the new account never worked"
            time.sleep(2)

    removed = bwscd("credentials", "--data", dataDirectory, "remove", "alice").stdout
    assert removed == ("account alice removed; a running server refuses its key and its "
                       "tokens within 10 s (at once on SIGHUP)\n")
    server.process.send_signal(signal.SIGHUP)
    time.sleep(1)
    with pytest.raises(ClientException) as caught:
        login()
    assert caught.value.http_status == 401


def test_cert_show_needs_a_data_directory(tmp_path):
    assert refused("cert", "--data", str(tmp_path), "show") == \
        f"bwscd cert: {tmp_path} is not a bwscd data directory (no settings.json)"


def test_cert_renew_days(tmp_path):
    data = str(tmp_path / "d")
    bwscd("init", "--data", data, "--public-address", "127.0.0.1")
    for days in ("0", "-1"):
        assert refused("cert", "--data", data, "renew", "--days", days) == \
            f"bwscd cert: --days {days}: a certificate is valid for at least 1 day"
    assert not os.path.exists(os.path.join(data, "server.next.crt"))
    assert bwscd("cert", "--data", data, "renew", "--days", "825").stderr == ""
    warned = bwscd("cert", "--data", data, "renew", "--days", "826").stderr
    assert warned.startswith("warning: --days 826 is more than 825, the longest validity "
                             "Apple's clients and browsers accept"), warned
    with open(os.path.join(data, "server.next.crt"), "rb") as f:
        staged = x509.load_pem_x509_certificate(f.read())
    assert (staged.not_valid_after_utc - staged.not_valid_before_utc).days == 826


def test_readme_names_every_subcommand():
    with open(os.path.join(REPOSITORY, "README.md")) as f:
        readme = f.read()
    for command in choices():
        assert f"`{command}`" in readme, command


def test_gitignore_leaves_out_twistd_pid():
    with open(os.path.join(REPOSITORY, ".gitignore")) as f:
        assert "twistd.pid" in f.read().splitlines()
