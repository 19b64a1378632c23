"""
Names in the storage tree that bwscd did not write and that are not UTF-8
(copied from another system, made by an operator's tool) are left out of
listings and counts, and logged once each: never a 500, never a server
that does not start.
"""

import os


def test_names_that_are_not_utf8_are_left_out(launch, dataDirectory, recording):
    server = launch(dataDirectory)
    swift = server.connection()
    container = recording.start(swift)
    swift.put_object(container, "clip.mkv", b"clip")
    server.stop()
    root = os.fsencode(server.storage)
    os.mkdir(os.path.join(root, b"\xfe"))
    for path in (os.path.join(root, os.fsencode(container), b"\xff.mkv"),
                 os.path.join(root, b"\xfd.txt")):
        with open(path, "wb") as f:
            f.write(b"x")

    # Counting what is stored for the quota, at start, lists everything.
    server = launch(dataDirectory, "--quota", "1G")
    reader = server.addAccount("integrator", "reader")
    for _ in range(2):
        _, containers = reader.get_account()
        assert sorted(c["name"] for c in containers) == sorted(
            ["Devices", "System", "Users", container])
        _, objects = reader.get_container(container)
        assert [o["name"] for o in objects] == ["clip.mkv"]
        assert reader.head_container(container)["x-container-object-count"] == "1"
    lines = [line for line in server.log().splitlines() if "not UTF-8" in line]
    assert len(lines) == 2, lines  # the directory at the top and the file in the recording
    assert any(line.endswith(f"{container}/\\xff.mkv, whose name is not UTF-8 "
                             "(it can't be a container's or an object's)") for line in lines)
