"""
The controller's whole flow through a real C{twistd bwscd --backend ...}
for every installed backend: same protocol behaviour, same guarantees.
"""

import hashlib
import os

import pytest
from swiftclient.exceptions import ClientException

def test_a_recording_end_to_end(launch, dataDirectory, backendSpec, recording):
    server = launch(dataDirectory, "--backend", backendSpec)
    swift = server.connection()
    container = recording.start(swift)

    clip = os.urandom(3 * 1024 * 1024 + 7)
    md5 = hashlib.md5(clip).hexdigest()
    assert swift.put_object(container, "a.mkv", clip, etag=md5) == md5
    chunks = iter([clip[i:i + 65536] for i in range(0, len(clip), 65536)])
    assert swift.put_object(container, "b.mkv", chunks) == md5
    assert swift.put_object(container, "empty.key", b"") == hashlib.md5(b"").hexdigest()
    with pytest.raises(ClientException) as caught:
        swift.put_object(container, "c.mkv", clip, etag="0" * 32)
    assert caught.value.http_status == 422
    with pytest.raises(ClientException) as caught:
        swift.head_object(container, "c.mkv")
    assert caught.value.http_status == 404

    swift.put_object(container, "a.mkv", b"different")  # kept beside, never over
    swift.post_container(container, headers={"X-Container-Meta-Status": "Complete"})
    head = swift.head_object(container, "a.mkv")
    assert head["etag"] == md5 and head["content-length"] == str(len(clip))

    server.stop()
    again = launch(dataDirectory, "--backend", backendSpec, port=server.port)
    swift = again.connection()
    assert swift.head_container(container)["x-container-meta-status"] == "Complete"
    assert swift.head_object(container, "b.mkv")["etag"] == md5
    # The registry came back: a new recording of the same user and camera.
    swift.put_container(f"{recording.user}_{recording.device}_20240502T080000Z")
    types = [e["type"] for e in again.events()]
    assert types.count("clip.stored") == 4 and "recording.anomaly" in types
