"""
The controller's whole flow through a real C{twistd bwscd --backend ...}
for every installed backend: same protocol behaviour, same guarantees.
"""

import hashlib
import os

import pytest
from swiftclient.exceptions import ClientException

USER = "0b9a3f2e-5c1d-4e8f-9a7b-2c3d4e5f6a7b"
DEVICE = "B8A44F000001"
RECORDING = f"{USER}_{DEVICE}_20240501T101500Z"


def test_a_recording_end_to_end(launch, dataDirectory, backendSpec):
    server = launch(dataDirectory, "--backend", backendSpec)
    swift = server.connection()
    swift.put_container("Users")
    swift.put_object("Users", USER, b"", headers={"X-Object-Meta-Name": "Anna"})
    swift.put_container("Devices")
    swift.put_object("Devices", DEVICE, b"", headers={"X-Object-Meta-Name": "Cam"})
    swift.put_container(RECORDING, headers={"X-Container-Meta-Status": "Transferring"})

    clip = os.urandom(3 * 1024 * 1024 + 7)
    md5 = hashlib.md5(clip).hexdigest()
    assert swift.put_object(RECORDING, "a.mkv", clip, etag=md5) == md5
    chunks = iter([clip[i:i + 65536] for i in range(0, len(clip), 65536)])
    assert swift.put_object(RECORDING, "b.mkv", chunks) == md5
    assert swift.put_object(RECORDING, "empty.key", b"") == hashlib.md5(b"").hexdigest()
    with pytest.raises(ClientException) as caught:
        swift.put_object(RECORDING, "c.mkv", clip, etag="0" * 32)
    assert caught.value.http_status == 422
    with pytest.raises(ClientException) as caught:
        swift.head_object(RECORDING, "c.mkv")
    assert caught.value.http_status == 404

    swift.put_object(RECORDING, "a.mkv", b"different")  # kept beside, never over
    swift.post_container(RECORDING, headers={"X-Container-Meta-Status": "Complete"})
    head = swift.head_object(RECORDING, "a.mkv")
    assert head["etag"] == md5 and head["content-length"] == str(len(clip))

    server.stop()
    again = launch(dataDirectory, "--backend", backendSpec, port=server.port)
    swift = again.connection()
    assert swift.head_container(RECORDING)["x-container-meta-status"] == "Complete"
    assert swift.head_object(RECORDING, "b.mkv")["etag"] == md5
    swift.put_container(f"{USER}_{DEVICE}_20240502T080000Z")  # the registry came back
    types = [e["type"] for e in again.events()]
    assert types.count("clip.stored") == 4 and "recording.anomaly" in types
