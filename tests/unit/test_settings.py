"""Settings written by earlier versions of bwscd."""

import json
import os

from bwscd.security import tokens

from bwscd.security import accounts, roles

from bwscd.config import datadir


def test_reader_accounts_from_before_roles_are_readers(tmp_path):
    directory = str(tmp_path / "data")
    datadir.prepare(directory, port=8443, https=False)
    path = os.path.join(directory, datadir.SETTINGS)
    with open(path) as f:
        settings = json.load(f)
    settings["readers"] = [{"user": "archive", "keyHash": tokens.hashKey("old-key")}]
    with open(path, "w") as f:
        json.dump(settings, f)

    assert accounts.accounts(directory) == [("archive", roles.READER)]
    kept = accounts.Credentials(directory)
    assert kept.roleOf("archive") == roles.READER
    assert kept.accepts("archive", "old-key")
    # The next start saves them where they are now kept.
    datadir.prepare(directory, port=8443, https=False)
    with open(path) as f:
        saved = json.load(f)
    assert "readers" not in saved
    assert [a["user"] for a in saved["accounts"]] == ["archive"]
