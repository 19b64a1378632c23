"""
What this machine can do without bwscd, measured with the same payload as
the uploads, so that each of bwscd's figures is also a ratio to a limit:

- L{timeDiscard}: the same uploads as to bwscd, with the same client, to
  the discard receiver (bench/discard.py), which reads them off the socket
  and drops them.
- L{timeDiskWrites}: writing the same bytes to files and fsyncing them, no
  network at all.
- L{timeSFTPPuts}: OpenSSH's own C{sftp} client putting the same bytes,
  fsynced, to the sshd the SFTP backend writes to.
"""

import base64
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bwscd.backends.sftp.ssh import CIPHERS
from tests.support.server import Server, freePort
from upload import Figures, Payload, RepeatedBlock, machineBusySeconds, timeUploads

HOST = "127.0.0.1"
DISCARD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "discard.py")


def startDiscard(directory: str, https: bool = True):
    """
    Start bench/discard.py in a process of its own, with a certificate of
    the kind bwscd makes (self-signed, ECDSA P-256) and a connection file in
    C{directory} like bwscd's, so that the C{Server} of tests/support/server.py
    returned can log in to it, upload to it and sample its memory.
    """
    from bwscd.security.certificate import createSelfSigned

    os.makedirs(directory)
    port = freePort()
    command = [sys.executable, DISCARD, "--port", str(port)]
    connectionFile = {
        "AuthenticationTokenURI": [f"{'https' if https else 'http'}://{HOST}:{port}/auth/v1.0"],
        "BlobAPIUserName": "discard",
        "BlobAPIKey": "discard",
    }
    if https:
        certificatePEM, keyPEM = createSelfSigned([HOST])
        certificatePath = os.path.join(directory, "server.crt")
        keyPath = os.path.join(directory, "server.key")
        with open(certificatePath, "wb") as c, open(keyPath, "wb") as k:
            c.write(certificatePEM)
            k.write(keyPEM)
        command += ["--certificate", certificatePath, "--key", keyPath]
        connectionFile["HTTPSCertificate"] = [base64.b64encode(certificatePEM).decode("ascii")]
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(connectionFile, f)

    logPath = directory + ".log"
    with open(logPath, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = Server(directory, port, process, logPath, https)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"discard.py exited {process.returncode}:\n{server.log()}")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"discard.py did not listen on port {port}")


def timeDiscard(directory: str, payload: Payload, count: int, https: bool = True) -> Figures:
    """C{count} uploads at once to the discard receiver, which runs in C{directory}."""
    server = startDiscard(directory, https)
    try:
        figures, _ = timeUploads(server, payload, count)
    finally:
        server.stop()
    return figures


def writeFile(path: str, block: bytes, size: int) -> None:
    """C{size} bytes of C{block} repeated, in 1 MiB writes, then fsync."""
    source = RepeatedBlock(block, size)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while chunk := source.read():
            while chunk:
                chunk = chunk[os.write(descriptor, chunk):]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def timeDiskWrites(directory: str, payload: Payload, count: int) -> Figures:
    """
    C{count} files of the payload's objects written at once in
    C{directory}, each by its own thread, fsynced, then deleted: what the
    disk takes when nothing else is done with the bytes.  The CPU figure is
    this process's own (the writing threads).
    """
    paths = [os.path.join(directory, f"disk-{index}") for index in range(count)]
    before, busyBefore = os.times(), machineBusySeconds()
    started = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        list(pool.map(writeFile, paths, payload.blocks[:count], [payload.size] * count))
    wall = time.monotonic() - started
    after, busy = os.times(), machineBusySeconds() - busyBefore
    for path in paths:
        os.remove(path)
    cpu = (after.user - before.user) + (after.system - before.system)
    return Figures(count, payload.size, wall, clientCPU=0.0, serverCPU=cpu, machineCPU=busy)


def timeSFTPPuts(sshd, directory: str, payload: Payload, count: int) -> Figures:
    """
    C{count} runs of OpenSSH's C{sftp -b} at once, each putting one of the
    payload's objects (a file written and fsynced beforehand, off the clock,
    so read from the page cache) to C{sshd}, a C{SSHServer} of
    tests/support/sshd.py, with C{put -f}: fsynced on the server, as the
    SFTP backend does.  Timed from starting the clients to the last one's
    exit, so including each SSH handshake.  With the SFTP backend's
    ciphers, so that both encrypt alike.  The client CPU figure is that
    of C{sftp} and its C{ssh}; sshd's is not measured.
    """
    remote = os.path.join(sshd.root, "sftp-put")
    os.makedirs(remote)
    sources = [os.path.join(directory, f"sftp-source-{index}") for index in range(count)]
    commands = []
    for index, source in enumerate(sources):
        writeFile(source, payload.blocks[index], payload.size)
        batch = f"{source}.batch"
        with open(batch, "w") as f:
            f.write(f"put -f {source} {remote}/object-{index}.mkv\n")
        commands.append([
            "sftp", "-q", "-b", batch, "-P", str(sshd.port), "-i", sshd.keyPath,
            "-o", f"UserKnownHostsFile={sshd.knownHostsPath}",
            "-o", "StrictHostKeyChecking=yes", "-o", f"Ciphers={CIPHERS}",
            f"{sshd.user}@{HOST}",
        ])

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busyBefore = machineBusySeconds()
    started = time.monotonic()
    clients = [subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for command in commands]
    errors = [client.communicate()[1] for client in clients]
    wall = time.monotonic() - started
    busy = machineBusySeconds() - busyBefore
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for client, error in zip(clients, errors):
        if client.returncode != 0:
            raise RuntimeError(
                f"sftp exited {client.returncode}: {error.decode(errors='replace')}")
    for index in range(count):
        stored = os.path.getsize(os.path.join(remote, f"object-{index}.mkv"))
        if stored != payload.size:
            raise AssertionError(f"sftp stored {stored} bytes of {payload.size}")
    shutil.rmtree(remote)
    for source in sources:
        os.remove(source)
        os.remove(f"{source}.batch")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Figures(count, payload.size, wall, clientCPU=cpu, machineCPU=busy)
