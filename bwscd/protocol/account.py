"""
The account level, C{/v1/AUTH_<user>}: what it holds (C{HEAD}) and its
containers (C{GET}).
"""

from http import HTTPStatus

from twisted.internet.defer import inlineCallbacks

from bwscd.protocol.listing import describeContainer, listingArguments, listingResponse
from bwscd.protocol.response import Response


class AccountHandler:
    """The account's methods, each called with the request and its L{Target}."""

    def __init__(self, backend, usage, quota):
        self._backend = backend
        self._usage = usage
        self._quota = quota
        self.methods = {"HEAD": self.head, "GET": self.get}

    @inlineCallbacks
    def head(self, request, target):
        totals = yield self._usage.current()
        # With a quota, the bytes it meters: kept exact by every process.
        used = totals.bytesUsed if self._quota.limit is None else self._quota.used
        headers = [(b"X-Account-Container-Count", b"%d" % totals.containers),
                   (b"X-Account-Object-Count", b"%d" % totals.objects),
                   (b"X-Account-Bytes-Used", b"%d" % used)]
        if self._quota.limit is not None:
            headers.append((b"X-Account-Meta-Quota-Bytes", b"%d" % self._quota.limit))
        return Response(HTTPStatus.NO_CONTENT, headers=headers)

    @inlineCallbacks
    def get(self, request, target):
        arguments = listingArguments(request.args)
        containers = yield self._backend.listContainers(
            arguments.prefix, arguments.marker, arguments.limit)
        return listingResponse(containers, arguments, describeContainer)
