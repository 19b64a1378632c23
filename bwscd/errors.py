"""
The refusals bwscd answers with, one class per status code of the API.

Each status carries the meaning the Body worn integration API gives it, so
the system controller reacts correctly: 400 marks a recording "not
transferred" for good, 503 and 507 make it retry later, 401 makes it log in
again.  Handlers raise these; one place (L{bwscd.protocol.response.refusal}) turns them
into responses and log lines.
"""

from http import HTTPStatus


class SwiftError(Exception):
    """
    A request refused with C{code}; C{message} is shown to the client and
    logged, so it must name what was wrong and never contain a secret.
    """

    code: HTTPStatus = HTTPStatus.INTERNAL_SERVER_ERROR
    headers: dict[bytes, bytes] = {}

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(SwiftError):
    """The content destination can't store this, and never will."""

    code = HTTPStatus.BAD_REQUEST


class Unauthorized(SwiftError):
    """Credentials invalid, or the auth token missing or expired."""

    code = HTTPStatus.UNAUTHORIZED


class Forbidden(SwiftError):
    """The account may not do this to this resource."""

    code = HTTPStatus.FORBIDDEN


class NotFound(SwiftError):
    """The resource does not exist."""

    code = HTTPStatus.NOT_FOUND


class MethodNotAllowed(SwiftError):
    """The resource exists but does not answer this method."""

    code = HTTPStatus.METHOD_NOT_ALLOWED


class Conflict(SwiftError):
    """The resource is not in a state that allows this (Swift: a container
    that still holds objects can't be deleted)."""

    code = HTTPStatus.CONFLICT


class RangeNotSatisfiable(SwiftError):
    """A reader asked for bytes the object does not have."""

    code = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE


class UnprocessableEntity(SwiftError):
    """The body does not match its ETag, or its declared length."""

    code = HTTPStatus.UNPROCESSABLE_ENTITY


class ServiceUnavailable(SwiftError):
    """Busy, or storage unreachable: the controller keeps the data and retries."""

    code = HTTPStatus.SERVICE_UNAVAILABLE
    headers = {b"Retry-After": b"10"}
    kind = "storage"
    """Why offload stopped, for L{bwscd.policy.refusals}: storage failing or unreachable."""


class UploadSlotsBusy(ServiceUnavailable):
    """Every upload slot is taken (C{--max-uploads})."""

    kind = "busy"


class InsufficientStorage(SwiftError):
    """Out of disk space or quota: the controller keeps the data and retries."""

    code = HTTPStatus.INSUFFICIENT_STORAGE
    kind = "disk"
    """Why offload stopped, for L{bwscd.policy.refusals}: the storage's free space is used up."""


class QuotaUsedUp(InsufficientStorage):
    """The account's quota (C{--quota}) is used up."""

    kind = "quota"
