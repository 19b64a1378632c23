"""
One log line per request: who, what, how it ended, how much, how long; and
one per connection whose TLS failed, which never gets as far as a request.

Only the method and path are logged from the request, never its headers,
so tokens and keys stay out of the log.  Who is the client's address and
the account its token (or login) proved, C{-} when it proved none: every
account works on the controller's storage URL, so the path never says.
"""

import time

from OpenSSL import SSL
from twisted.logger import Logger

from bwscd.protocol.channel import StreamingChannel, StreamingRequest, StreamingSite

log = Logger(namespace="bwscd.access")


class TimedRequest(StreamingRequest):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.startedAt = time.monotonic()
        self.user: str | None = None
        """The account, once its token (or key) was checked."""


def _tlsReasons(error: SSL.Error) -> str:
    """
    Why OpenSSL failed, in its own words: the reason of each error in its
    queue (an alert the client sent, no protocol version in common), without
    the library and function names.
    """
    queue = error.args[0] if error.args and isinstance(error.args[0], list) else []
    return "; ".join(entry[-1] for entry in queue if entry and entry[-1]) or str(error)


class TLSReportingChannel(StreamingChannel):
    """
    A channel that logs a connection whose TLS failed.  No request reaches
    the site then, so no access line would show it; yet it is what an
    operator looks for when the controller can't connect (a client that does
    not trust the certificate says so with an alert, which Twisted passes to
    C{connectionLost}).
    """

    def connectionLost(self, reason):
        if reason.check(SSL.Error):
            log.info("{peer} TLS failed: {why}", peer=self.transport.getPeer().host,
                     why=_tlsReasons(reason.value))
        StreamingChannel.connectionLost(self, reason)


class AccessLoggingSite(StreamingSite):
    protocol = TLSReportingChannel
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
