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
"""

from OpenSSL.SSL import Connection, WantReadError

RECEIVE_LIMIT = 256 << 10


class BatchedConnection(Connection):
    """
    A L{Connection} whose C{recv} goes on reading records while there are
    any, up to L{RECEIVE_LIMIT} bytes (C{bufsiz} is what each record read
    may take, not a limit on the total).
    """

    _deferred: BaseException | None = None

    def recv(self, bufsiz: int, flags: int | None = None) -> bytes:
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        data = Connection.recv(self, bufsiz, flags)
        if flags:  # MSG_PEEK: what the next recv will return
            return data
        pieces, size = [data], len(data)
        while size < RECEIVE_LIMIT:
            try:
                data = Connection.recv(self, bufsiz)
            except WantReadError:
                break
            except Exception as e:
                # The peer's close_notify, or a record that does not
                # decrypt: the caller hears of it on its next call, after
                # it has the bytes that came before.
                self._deferred = e
                break
            pieces.append(data)
            size += len(data)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
