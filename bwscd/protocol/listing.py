"""
Swift's listings of an account's containers and a container's objects:
its arguments (C{prefix}, C{marker}, C{limit}, C{format}) and its formats
(one name a line, or JSON with C{format=json}).
"""

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus

from bwscd import constraints
from bwscd.constraints import LISTING_LIMIT
from bwscd.errors import BadRequest
from bwscd.protocol.response import Response


@dataclass(frozen=True)
class ListingArguments:
    prefix: str
    marker: str
    limit: int
    json: bool
    """Whether the listing is asked for as JSON (C{format=json})."""


def listingArguments(args: dict[bytes, list[bytes]]) -> ListingArguments:
    """
    A listing's arguments from a request's query (C{request.args}); the
    limit is at most L{LISTING_LIMIT}, as in Swift.

    @raise BadRequest: for a limit that is not a number.
    """
    def argument(name, default):
        return args.get(name.encode(), [default.encode()])[0].decode("utf-8", "replace")

    try:
        limit = min(int(argument("limit", str(LISTING_LIMIT))), LISTING_LIMIT)
    except ValueError:
        raise BadRequest("limit must be a number")
    return ListingArguments(argument("prefix", ""), argument("marker", ""), max(limit, 0),
                            argument("format", "plain") == "json")


def listingResponse(entries, arguments: ListingArguments, describe) -> Response:
    """
    The answer listing C{entries}: C{describe} makes each a JSON object.
    A plain listing of nothing is C{204}, as in Swift.
    """
    if arguments.json:
        body = json.dumps([describe(e) for e in entries], ensure_ascii=False)
        return Response(HTTPStatus.OK, body=body.encode("utf-8"),
                        contentType=b"application/json; charset=utf-8")
    if not entries:
        return Response(HTTPStatus.NO_CONTENT)
    return Response(HTTPStatus.OK, body="".join(e.name + "\n" for e in entries).encode("utf-8"))


def listingTime(seconds: float) -> str:
    """A listing's C{last_modified}, as Swift writes it (UTC, no zone)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def describeContainer(container) -> dict:
    """A container in an account's JSON listing (a L{bwscd.interfaces.ContainerInfo})."""
    return {"name": container.name, "count": container.objectCount,
            "bytes": container.bytesUsed, "last_modified": listingTime(container.modified)}


def describeObject(info) -> dict:
    """An object in a container's JSON listing (a L{bwscd.interfaces.ObjectInfo})."""
    return {
        "name": info.name,
        "bytes": info.digests.length,
        "hash": info.digests.md5,
        "last_modified": listingTime(info.modified),
        "content_type": constraints.contentType(info.name, info.contentType),
    }
