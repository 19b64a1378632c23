"""`twistd bwscd`: the content destination."""

from twisted.application.service import ServiceMaker

bwscd = ServiceMaker(
    "bwscd",
    "bwscd.service.assembly",
    "A verified, durable content destination for the Axis body worn system",
    "bwscd",
)
