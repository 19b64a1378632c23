"""Settings written by earlier versions of bwscd, and what the settings accept."""

import json
import os

import pytest

from bwscd.security import tokens

from bwscd.security import accounts, roles

from bwscd.config import datadir, paths
from bwscd.config.settings import Settings


def dataDirectory(tmp_path) -> str:
    directory = str(tmp_path / "data")
    datadir.prepare(directory, port=8443, https=False)
    return directory


def rewrite(directory: str, change) -> None:
    """Write settings.json as C{change} makes it of what it holds, as an operator might."""
    path = os.path.join(directory, paths.SETTINGS)
    with open(path) as f:
        settings = json.load(f)
    with open(path, "w") as f:
        json.dump(change(settings), f)


def test_reader_accounts_from_before_roles_are_readers(tmp_path):
    directory = dataDirectory(tmp_path)
    path = os.path.join(directory, paths.SETTINGS)
    rewrite(directory, lambda settings: dict(
        settings, readers=[{"user": "archive", "keyHash": tokens.hashKey("old-key")}]))

    loaded = Settings.load(directory)
    assert [(a["user"], a["role"]) for a in loaded.integratorAccounts] == \
        [("archive", roles.READER)]
    kept = accounts.Credentials(loaded)
    assert kept.roleOf("archive") == roles.READER
    assert kept.accepts("archive", "old-key")
    # The next start saves them where they are now kept.
    datadir.prepare(directory, port=8443, https=False)
    with open(path) as f:
        saved = json.load(f)
    assert "readers" not in saved
    assert [a["user"] for a in saved["accounts"]] == ["archive"]


def test_settings_that_are_not_bwscds_are_refused_by_name(tmp_path):
    directory = dataDirectory(tmp_path)
    rewrite(directory, lambda settings: {k: v for k, v in settings.items()
                                         if k != "tokenSecret"})
    with pytest.raises(ValueError, match="has no tokenSecret"):
        Settings.load(directory)
    rewrite(directory, lambda settings: [])
    with pytest.raises(ValueError, match="not a JSON object"):
        Settings.load(directory)


def test_changes_are_checked_and_kept_only_once_saved(tmp_path):
    directory = dataDirectory(tmp_path)
    settings = Settings.load(directory)
    key = settings.addAccount("archive", roles.ADMIN)
    with pytest.raises(ValueError, match="already an account named archive"):
        settings.addAccount("archive", roles.READER)
    with pytest.raises(ValueError, match="a role is one of"):
        settings.addAccount("other", "owner")
    assert Settings.load(directory).integratorAccounts == []
    settings.save()
    credentials = accounts.Credentials(Settings.load(directory))
    assert credentials.roleOf("archive") == roles.ADMIN
    assert credentials.accepts("archive", key)
    settings.removeAccount("archive")
    with pytest.raises(ValueError, match="no integrator account named archive"):
        settings.removeAccount("archive")
    with pytest.raises(ValueError, match="neither an IP address nor a host name"):
        settings.setPublicAddresses(["not an address"])
    with pytest.raises(ValueError, match="container type must be mkv or mp4"):
        settings.setContainerType("avi")


def test_a_rotated_key_keeps_the_old_one_for_the_grace_period(tmp_path):
    directory = dataDirectory(tmp_path)
    settings = Settings.load(directory)
    before, secret = settings.keyHash, settings.tokenSecret
    settings.rotateKey(60, now=1000.0)
    assert settings.retiring == [{"keyHash": before, "until": 1060.0}]
    assert settings.tokenSecret == secret
    settings.rotateKey(0, now=1000.0)
    assert settings.retiring == [] and settings.tokenSecret != secret
