"""download_movielens against a local HTTP server (no internet): a byte cap, an overall
deadline, SHA-256 before keeping the file, and nothing partial left in the data home."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bayesrec.data import movielens
from bayesrec.errors import InputError

PAYLOAD = b"PK\x05\x06" + bytes(18) + b"a small archive"  # any bytes: only the hash matters
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """One behaviour per path: /ok, /slow, /huge, /huge-declared, /cut, /missing."""

    protocol_version = "HTTP/1.0"

    def do_GET(self):  # noqa: N802 (the http.server name)
        try:
            getattr(self, "_" + self.path.strip("/").replace("-", "_"))()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            pass

    def _start(self, length: int | None) -> None:
        self.send_response(200)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _ok(self):
        self._start(len(PAYLOAD))
        self.wfile.write(PAYLOAD)

    def _slow(self):  # one byte every 0.25 s: never idle long enough for the socket timeout
        self._start(40)
        for _ in range(40):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.25)

    def _huge(self):  # no Content-Length: the cap must count what arrives
        self._start(None)
        for _ in range(64):
            self.wfile.write(bytes(1 << 15))

    def _huge_declared(self):
        self._start(10**9)
        self.wfile.write(bytes(100))

    def _cut(self):  # the connection drops before the announced length
        self._start(len(PAYLOAD) * 10)
        self.wfile.write(PAYLOAD)

    def _missing(self):
        self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def _download(home, url, **kw):
    return movielens.download_movielens(home, url=url, sha256=kw.pop("sha256", PAYLOAD_SHA256),
                                        **kw)


def test_verified_download_is_kept(server, tmp_path):
    path = _download(tmp_path / "home", f"{server}/ok", timeout=5, deadline=10)
    assert path.read_bytes() == PAYLOAD
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["ml-100k.zip"]


def test_slow_server_hits_the_deadline(server, tmp_path):
    home = tmp_path / "home"
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"downloading {server}/slow took longer than the "
                                           r"deadline of 1 s \(\d+ bytes received\); the partial "
                                           r"download was deleted\. Retry .*longer deadline="):
        _download(home, f"{server}/slow", timeout=1, deadline=1)
    assert time.monotonic() - start < 4  # the deadline, overrun by at most one timeout
    assert list(home.iterdir()) == []


def test_the_default_deadline_applies(server, tmp_path, monkeypatch):
    monkeypatch.setattr(movielens, "DOWNLOAD_DEADLINE", 1.0)
    with pytest.raises(TimeoutError, match="took longer than the deadline of 1 s"):
        _download(tmp_path / "home", f"{server}/slow", timeout=1)
    assert list((tmp_path / "home").iterdir()) == []


@pytest.mark.parametrize(
    ("path", "what"),
    [("huge", r"sent more than the 1,000,000 bytes"),
     ("huge-declared", r"announces 1,000,000,000 bytes more than the 1,000,000 bytes")],
)
def test_oversized_response_is_stopped(server, tmp_path, path, what):
    home = tmp_path / "home"
    with pytest.raises(InputError, match=rf"the server {what} allowed for {server}/{path}; the "
                                         r"download was stopped and deleted\. Check the URL, "
                                         r"or pass a larger max_bytes="):
        _download(home, f"{server}/{path}", timeout=5, deadline=10, max_bytes=1_000_000)
    assert list(home.iterdir()) == []


def test_the_default_cap_is_a_little_above_the_archive(server, tmp_path, monkeypatch):
    assert movielens.ML100K_BYTES < movielens.DOWNLOAD_MAX_BYTES < 1.25 * movielens.ML100K_BYTES
    monkeypatch.setattr(movielens, "DOWNLOAD_MAX_BYTES", 1_000_000)
    with pytest.raises(InputError, match="the server sent more than the 1,000,000 bytes"):
        _download(tmp_path / "home", f"{server}/huge", timeout=5, deadline=10)


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [("cut", OSError, r"could not download .*/cut \(the connection closed after 37 of the 370 "
                      r"bytes announced\); download it by hand and put ml-100k.zip in"),
     ("missing", OSError, r"could not download .*/missing \(Not Found\)"),
     ("ok", InputError, r"checksum mismatch for .*/ok: expected SHA-256 0{64}")],
)
def test_failures_leave_nothing_behind(server, tmp_path, path, error, message):
    home = tmp_path / "home"
    kw = {"sha256": "0" * 64} if path == "ok" else {}
    with pytest.raises(error, match=message):
        _download(home, f"{server}/{path}", timeout=5, deadline=10, **kw)
    assert list(home.iterdir()) == []
    assert not (home / "ml-100k.zip").exists()


def test_bad_url_and_unwritable_home(tmp_path):
    with pytest.raises(InputError, match=r"cannot download 'no-scheme': unknown url type"):
        _download(tmp_path / "home", "no-scheme", timeout=1, deadline=1)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError, match=r"cannot create the data home .*file/home: .*; pass a "
                                         r"writable data_home="):
        _download(blocker / "home", "http://127.0.0.1:9/", timeout=1, deadline=1)
