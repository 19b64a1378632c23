"""A webhook receiver on loopback: the events a server POSTs, as it sends them."""

import http.server
import json
import threading
from contextlib import contextmanager


@contextmanager
def webhookReceiver():
    """
    C{(url, received)}: POSTs to C{url} are answered 204 and their JSON
    bodies appended to C{received}, in order, until the block ends.
    """
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{receiver.server_address[1]}/events", received
    finally:
        receiver.shutdown()
        receiver.server_close()
