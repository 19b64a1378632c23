"""
L{bwscd.plugins}: the C{--backend NAME:key=value:...} spec, with its
backslash escapes, and the sizes backend options take.
"""

import pytest

from bwscd.plugins import parseBackendSpec, parseSize


@pytest.mark.parametrize("spec, parsed", [
    ("filesystem", ("filesystem", {})),
    ("filesystem:root=/srv/bwscd", ("filesystem", {"root": "/srv/bwscd"})),
    ("sqlite:path=/a.sqlite:reserve=1G", ("sqlite", {"path": "/a.sqlite", "reserve": "1G"})),
    (r"filesystem:root=C\:\data", ("filesystem", {"root": "C:data"})),
    (r"filesystem:root=C\:\\data", ("filesystem", {"root": "C:\\data"})),
    ("sftp:host=h:key=", ("sftp", {"host": "h", "key": ""})),
    ("sftp:options=a=b", ("sftp", {"options": "a=b"})),
    ("", ("", {})),
])
def test_a_spec_is_a_name_and_its_options(spec, parsed):
    assert parseBackendSpec(spec) == parsed


@pytest.mark.parametrize("spec, message", [
    ("filesystem:root", "backend option 'root' is not key=value"),
    ("filesystem::root=/", "backend option '' is not key=value"),
    ("filesystem:=x", "backend option '=x' is not key=value"),
    ("filesystem:root=/a:root=/b", "backend option 'root' given twice"),
])
def test_a_spec_with_a_bad_option_is_refused(spec, message):
    with pytest.raises(ValueError) as refused:
        parseBackendSpec(spec)
    assert str(refused.value) == message


@pytest.mark.parametrize("text, size", [
    ("0", 0), ("512", 512), ("64K", 64 << 10), ("64k", 64 << 10), ("256M", 256 << 20),
    ("2G", 2 << 30), ("1T", 1 << 40), ("1 G", 1 << 30), ("1GB", 1 << 30), ("512MiB", 512 << 20),
])
def test_sizes_are_in_powers_of_1024(text, size):
    assert parseSize("sqlite", "reserve", text) == size


@pytest.mark.parametrize("text", ["", "M", "1.5G", "-1", "1 P", "1GiG", "ten"])
def test_a_size_that_is_not_one_names_the_backend_and_option(text):
    with pytest.raises(ValueError) as refused:
        parseSize("sqlite", "reserve", text)
    assert str(refused.value) == f"sqlite backend: reserve={text!r} is not a size like 256M"
