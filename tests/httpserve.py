"""Serve a directory over HTTP/1.1 on 127.0.0.1, as an unprivileged user, the way a distro's web
server or CDN origin would (another user than the one who published)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import tree_copy

SERVER = r"""
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"          # keep-alive, as package managers use
    disable_nagle_algorithm = True         # headers and body go out in two writes: no 40 ms stalls
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), functools.partial(H, directory=sys.argv[2])).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def world_readable_copy(src: Path) -> Path:
    """A copy (modes, links kept) under a directory every user can traverse: pytest's own tmp dirs are 0700."""
    base = Path(tempfile.mkdtemp(prefix="bindistro-serve-"))
    os.chmod(base, 0o755)
    dst = tree_copy(src, base / src.name)
    os.chmod(dst, os.stat(src).st_mode & 0o777)
    return dst


@contextlib.contextmanager
def serve(directory: Path, user: str | None = "nobody"):
    port = free_port()
    cmd = ["/usr/bin/python3", "-c", SERVER, str(port), str(directory)]
    if user and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if p.poll() is not None:
                raise RuntimeError(f"http server died: {p.stderr.read().decode()[-500:]}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        p.terminate()
        p.wait(5)
