"""
Decrypting what arrives over TLS in as few pieces as possible.

Twisted's L{TLSMemoryBIOProtocol} hands each socket read to OpenSSL and
then calls C{recv} until OpenSSL wants more, passing every result on to the
HTTP channel.  pyOpenSSL's C{recv} returns one TLS record, at most 16 KiB,
so a request body went through the HTTP parser, the upload's queue and a
wake-up of its worker thread once per 16 KiB, with a fresh buffer and a
copy each time.  L{BatchedConnection.recv} returns all the plaintext that
what has arrived decrypts to, up to L{RECEIVE_LIMIT}: one pass per socket
read.

It decrypts with C{SSL_read} straight into one buffer per thread, through
pyOpenSSL's bindings (C{OpenSSL._util}, C{Connection._ssl} and
C{Connection._raise_ssl_error}, which pyOpenSSL does not promise to keep):
that saves, per 16 KiB record, a Python-level C{recv}, a 32 KiB buffer
allocated, a copy to a C{bytes} and a copy to join them.  Where those are
missing, it joins what pyOpenSSL's own C{recv} returns instead.
"""

import threading

from OpenSSL.SSL import Connection, WantReadError

try:
    from OpenSSL._util import ffi as _ffi
    from OpenSSL._util import lib as _lib
    from OpenSSL._util import no_zero_allocator as _allocate

    _direct = callable(getattr(Connection, "_raise_ssl_error", None))
except ImportError:  # pragma: no cover (another pyOpenSSL)
    _direct = False

RECEIVE_LIMIT = 256 << 10

_buffers = threading.local()


def _buffer():
    """This thread's buffer of L{RECEIVE_LIMIT} bytes (the reactor's, in bwscd)."""
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) != RECEIVE_LIMIT:
        buffer = _buffers.buffer = _allocate("char[]", RECEIVE_LIMIT)
    return buffer


class BatchedConnection(Connection):
    """
    A L{Connection} whose C{recv} goes on reading records while there are
    any, up to L{RECEIVE_LIMIT} bytes (C{bufsiz} is what each record read
    may take, not a limit on the total).  An error or the peer's
    close_notify that follows data is raised by the next call, after the
    caller has the data.
    """

    _deferred: BaseException | None = None

    def recv(self, bufsiz: int, flags: int | None = None) -> bytes:
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        if flags:  # MSG_PEEK: what the next recv will return
            return Connection.recv(self, bufsiz, flags)
        if _direct and getattr(self, "_ssl", None) is not None:
            return self._readDirect()
        return self._readJoined(bufsiz)

    def _readDirect(self) -> bytes:
        buffer, filled = _buffer(), 0
        while filled < RECEIVE_LIMIT:
            result = _lib.SSL_read(self._ssl, buffer + filled, RECEIVE_LIMIT - filled)
            if result > 0:
                filled += result
                continue
            # pyOpenSSL's own reading of the failure (and of any exception a
            # callback raised): WantReadError once all is decrypted.
            try:
                self._raise_ssl_error(self._ssl, result)
            except WantReadError:
                if not filled:
                    raise
            except Exception as e:
                if not filled:
                    raise
                self._deferred = e
            break
        if not filled:
            raise WantReadError()  # OpenSSL said no data without saying why
        return _ffi.buffer(buffer, filled)[:]

    def _readJoined(self, bufsiz: int) -> bytes:
        data = Connection.recv(self, bufsiz)
        pieces, size = [data], len(data)
        while size < RECEIVE_LIMIT:
            try:
                data = Connection.recv(self, bufsiz)
            except WantReadError:
                break
            except Exception as e:
                self._deferred = e
                break
            pieces.append(data)
            size += len(data)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
