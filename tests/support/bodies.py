"""Request bodies a test controls."""

from twisted.internet.defer import Deferred


class HandFedBody:
    """
    A request body (an C{IBodyProducer}) that a test feeds by hand, through
    C{body.consumer.write}, and ends with C{body.done}; it checks that it
    is paused and resumed in turn.
    """

    def __init__(self, length=None):
        self.length = length
        self.paused = False
        self.done = Deferred()

    def startProducing(self, consumer):
        self.consumer = consumer
        return self.done

    def pauseProducing(self):
        assert not self.paused
        self.paused = True

    def resumeProducing(self):
        assert self.paused
        self.paused = False

    def stopProducing(self):
        pass
