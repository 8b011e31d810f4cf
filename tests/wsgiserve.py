"""A WSGI app (moto's S3 back end) served on 127.0.0.1 with keep-alive connections, as S3 and CDNs
serve. werkzeug's development server closes every connection after one response (and waits 10 ms
per request for a body nobody sends): each of the tests' tens of thousands of S3 requests then paid a
new connection and a new server thread — measured, a quarter of the CPU of a request (boto3 client
and moto server in one process). http.server reads one request at a time, so pipelined requests
(apt's) are answered in order."""
from __future__ import annotations

import io
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive"}


def _body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = []
        while size := int(h.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunk = h.rfile.read(size)
            if len(chunk) != size:
                raise ConnectionError(f"{len(chunk)} of {size} bytes")
            out.append(chunk)
            h.rfile.readline()
        while h.rfile.readline().strip():       # trailers
            pass
        return b"".join(out)
    n = int(h.headers.get("Content-Length") or 0)
    body = h.rfile.read(n) if n else b""
    if len(body) != n:      # the client went away mid-body (a killed upload): nothing to store
        raise ConnectionError(f"{len(body)} of {n} bytes")
    return body


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True       # headers and body go out in two writes: no 40 ms stalls
    app = None

    def log_message(self, *a):
        pass

    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            self.close_connection = True
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():        # answered (an error, or 100 Continue then go on)
            return
        try:
            body = _body(self)
        except (OSError, ValueError):
            self.close_connection = True
            return
        path, _, query = self.path.partition("?")
        env = {"REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
               "RAW_URI": self.path, "REQUEST_URI": self.path, "SERVER_PROTOCOL": self.request_version,
               "SERVER_NAME": self.server.server_address[0], "SERVER_PORT": str(self.server.server_address[1]),
               "REMOTE_ADDR": self.client_address[0], "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http",
               "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False}
        for k, v in self.headers.items():
            key = "HTTP_" + k.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE"):
                env[key] = f"{env[key]},{v}" if key in env else v
        started: list = []
        result = self.app(env, lambda status, headers, exc_info=None: started.extend((status, headers)))
        try:
            out = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        code, _, reason = started[0].partition(" ")
        self.send_response_only(int(code), reason)
        head = self.command == "HEAD" or int(code) in (204, 304)
        for k, v in started[1]:
            if k.lower() in HOP_BY_HOP or (k.lower() == "content-length" and not head):
                continue
            self.send_header(k, v)
        if not head:
            self.send_header("Content-Length", str(len(out)))
        if self.headers.get("Connection", "").lower() == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not head:
            self.wfile.write(out)
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client killed mid-response (the crash tests kill uploads and fscks): not the server's error
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def start(app) -> tuple[Server, str]:
    """The server, serving from a daemon thread, and its URL."""
    server = Server(("127.0.0.1", 0), type("Handler", (_Handler,), {"app": staticmethod(app)}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
