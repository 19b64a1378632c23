"""
One log line per request: who, what, how it ended, how much, how long.

Only the method and path are logged from the request, never its headers,
so tokens and keys stay out of the log.  Who is the client's address and
the account its token (or login) proved, C{-} when it proved none: every
account works on the controller's storage URL, so the path never says.
"""

import time

from twisted.logger import Logger

from bwscd.streaming import StreamingRequest, StreamingSite

log = Logger(namespace="bwscd.access")


class TimedRequest(StreamingRequest):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.startedAt = time.monotonic()
        self.user: str | None = None
        """The account, once its token (or key) was checked."""


class AccessLoggingSite(StreamingSite):
    requestFactory = TimedRequest

    def log(self, request):
        log.info(
            "{peer} {account} {method} {path} {status} in={received} out={sent} {duration:.3f}s",
            peer=request.getClientAddress().host,
            account=request.user or "-",
            method=request.method.decode("latin-1"),
            path=ascii(request.uri)[2:-1],
            status=request.code,
            received=request.body.received,
            sent=request.sentLength,
            duration=time.monotonic() - request.startedAt,
        )
