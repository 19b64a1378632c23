"""python-swiftclient: calls that the server must refuse, bodies it sends chunked."""

import pytest
from swiftclient.exceptions import ClientException


def refusal(call, *args, **kwargs) -> ClientException:
    """The error of C{call(*args, **kwargs)}, which must fail with an HTTP status."""
    with pytest.raises(ClientException) as caught:
        call(*args, **kwargs)
    return caught.value


def status(call, *args, **kwargs) -> int:
    """The HTTP status with which the server refuses C{call(*args, **kwargs)}."""
    return refusal(call, *args, **kwargs).http_status


def inPieces(data: bytes, size: int = 64 << 10):
    """A generator body: swiftclient sends it with chunked transfer encoding."""
    for offset in range(0, len(data), size):
        yield data[offset:offset + size]


def storedObjects(account, container: str) -> list[str]:
    """The names of the objects in C{container}, as the account C{account} lists them."""
    return sorted(o["name"] for o in account.get_container(container, full_listing=True)[1])
