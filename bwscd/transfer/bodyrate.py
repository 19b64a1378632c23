"""
A floor under how fast an upload's body arrives.

The idle timeout closes a connection that sends nothing; a client that
sends a few bytes now and then (a slow-loris on the body) would hold an
upload slot and its worker thread for as long as it likes.  Here each
period of the idle timeout must bring at least C{rate} bytes per second, or
the connection is dropped and nothing of the upload is stored, as for any
client that goes away mid-body; the controller sends the clip again later.
A period in which bwscd itself paused reading (the storage was slower than
the client) is not held against the client.
"""

from twisted.internet.interfaces import IConsumer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

log = Logger()


@implementer(IBodyProducer, IConsumer)
class MinimumRate:
    """
    C{body} (an L{IBodyProducer}), as it is, unless it arrives at less than
    C{rate} bytes per second over a C{period}: then C{transport} is aborted.
    """

    def __init__(self, body, transport, rate: int, period: float, clock):
        self.length = body.length
        self._body = body
        self._transport = transport
        self._rate = rate
        self._period = period
        self._consumer = None
        self._received = 0  # in this period
        self._paused = False
        self._excused = False  # bwscd paused reading during this period
        self._check = LoopingCall(self._endOfPeriod)
        self._check.clock = clock

    def startProducing(self, consumer):
        self._consumer = consumer
        done = self._body.startProducing(self)
        if not done.called:
            self._check.start(self._period, now=False)
            done.addBoth(self._finished)
        return done

    def _finished(self, result):
        if self._check.running:
            self._check.stop()
        return result

    def _endOfPeriod(self):
        count = self._received
        tooSlow = not self._excused and count < self._rate * self._period
        self._received, self._excused = 0, self._paused
        if tooSlow:
            peer = self._transport.getPeer()
            log.info(
                "closing the connection from {peer}: its upload brought {count} bytes "
                "in {period} s, less than the minimum of {rate} bytes/s",
                peer=getattr(peer, "host", peer), count=count,
                period=self._period, rate=self._rate,
            )
            self._check.stop()
            self._transport.abortConnection()

    # IConsumer of the body.

    def write(self, data):
        self._received += len(data)
        self._consumer.write(data)

    def registerProducer(self, producer, streaming):
        pass  # the body is the producer, and this its consumer's

    def unregisterProducer(self):
        pass

    # IBodyProducer, to the consumer.

    def pauseProducing(self):
        self._paused = self._excused = True
        self._body.pauseProducing()

    def resumeProducing(self):
        self._paused = False
        self._body.resumeProducing()

    def stopProducing(self):
        self._finished(None)
        self._body.stopProducing()
