"""
The S3 bucket as this backend speaks to it: requests signed with AWS
Signature Version 4 by botocore's signer, sent over the keep-alive
connections of L{bwscd.backends.remote}, path-style
(C{https://host/bucket/key}) or virtual-host style
(C{https://bucket.host/key}).

Bodies are not signed (C{UNSIGNED-PAYLOAD}): each carries its
C{Content-MD5}, which the store checks, so what it keeps is what bwscd
verified; and signing would cost a SHA-256 of every byte once more.
"""

import types
import urllib.parse
import xml.etree.ElementTree as ElementTree

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from bwscd.backends.remote import (
    Connections, Endpoint, Response, Unreachable, encodedHeaders, openGet)

UNSIGNED = types.SimpleNamespace(s3={"payload_signing_enabled": False})
"""The client configuration botocore's S3 signer reads: bodies not signed."""


def quoted(key: str) -> str:
    """A key as a URL path, as SigV4's canonical request has it."""
    return urllib.parse.quote(key, safe="/~")


def elements(body: bytes, name: str):
    """Every element C{name} of an S3 XML answer, whatever its namespace."""
    return [e for e in ElementTree.fromstring(body).iter() if e.tag.rsplit("}", 1)[-1] == name]


def text(element, name: str, default: str = "") -> str:
    for child in element:
        if child.tag.rsplit("}", 1)[-1] == name:
            return child.text or ""
    return default


class Bucket:
    """
    One bucket of an S3-compatible store.

    @param virtual: address it as C{bucket.host} rather than C{host/bucket}.
    """

    def __init__(self, endpoint: Endpoint, bucket: str, region: str, accessKey: str,
                 secret: str, virtual: bool = False):
        self.name = bucket
        self.region = region
        self._credentials = Credentials(accessKey, secret)
        if virtual:
            host = f"{bucket}.{endpoint.host}"
            endpoint = Endpoint(urllib.parse.urlunsplit((
                "https" if endpoint.secure else "http", f"{host}:{endpoint.port}",
                endpoint.path, "", "")), endpoint.context, endpoint.timeout)
            self._base = endpoint.path
        else:
            self._base = f"{endpoint.path}/{bucket}"
        self.endpoint = endpoint
        self._connections = Connections(endpoint)

    def path(self, key: str = "", query: dict[str, str] | None = None) -> str:
        path = f"{self._base}/{quoted(key)}"
        if query:
            path += "?" + urllib.parse.urlencode(sorted(query.items()),
                                                 quote_via=urllib.parse.quote)
        return path

    def signed(self, method: str, path: str, headers: dict[str, str]) -> list[tuple[str, bytes]]:
        """C{headers} and those that sign the request (its body unsigned)."""
        request = AWSRequest(method=method, url=self.endpoint.origin + path,
                             headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD", **headers})
        request.context["client_config"] = UNSIGNED
        S3SigV4Auth(self._credentials, "s3", self.region).add_auth(request)
        return encodedHeaders(dict(request.headers.items()))

    def request(self, method: str, key: str = "", query: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, body: bytes | None = None) -> Response:
        """
        One request, its answer read whole.

        @raise Unreachable: no answer, a 5xx, or the store refusing bwscd's
            credentials (a 403 of the signature or the key).
        """
        path = self.path(key, query)
        answer = self._connections.request(method, path, self.signed(method, path, headers or {}),
                                           body)
        checked(answer, f"{method} {key or self.name}")
        return answer

    def copySource(self, key: str) -> str:
        """C{x-amz-copy-source} for C{key} of this bucket: URL-encoded, as S3 wants it."""
        return quoted(f"/{self.name}/{key}")

    def openGet(self, key: str, headers: dict[str, str]):
        """A C{GET} whose body is left to be read: the connection and the answer."""
        path = self.path(key)
        connection, answer = openGet(self.endpoint, path, self.signed("GET", path, headers))
        if answer.status >= 500 or answer.status == 403:
            body = answer.read()
            connection.close()
            checked(Response(answer.status, answer.reason, [], body), f"GET {key}")
        return connection, answer


def checked(answer: Response, what: str) -> None:
    """@raise Unreachable: C{answer} is the store's failure, or a refusal of bwscd's credentials."""
    if answer.status >= 500 and answer.status != 507:
        raise Unreachable(f"{what}: {answer.status} {answer.reason}")
    if answer.status == 403:
        raise Unreachable(f"{what}: 403 {errorCode(answer.body) or answer.reason} (check the "
                          "access key, the secret and the region)")


def errorCode(body: bytes) -> str:
    """The C{Code} of an S3 error answer's XML, or C{""}."""
    try:
        return text(ElementTree.fromstring(body), "Code") if body.startswith(b"<") else ""
    except ElementTree.ParseError:
        return ""
