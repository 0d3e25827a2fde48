"""The manifest downloader against a local HTTP server on 127.0.0.1 serving fabricated files: a
normal file, a 404, a transfer cut mid-way (resumed with a Range request), a file whose bytes do not
match the manifest, a server error that goes away, and a server that ignores Range."""
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmlesson.cli import main
from mmlesson.data.download import FAILED_FILE, Downloader, RemoteFile


def payload(name: str, size: int) -> bytes:
    return hashlib.sha256(name.encode()).digest() * (size // 32) + b"x" * (size % 32)


FILES = {f"AudioWAV/{name}.wav": payload(name, 50_000 + 977 * i)
         for i, name in enumerate(["ok", "cut", "wrong", "flaky", "norange", "missing"])}


class Handler(BaseHTTPRequestHandler):
    requests: list = []
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.lstrip("/")
        with self.lock:
            Handler.requests.append((path, self.headers.get("Range")))
            attempt = sum(1 for p, _ in Handler.requests if p == path)
        if path.endswith("missing.wav") or path not in FILES:
            self.send_error(404)
            return
        if path.endswith("flaky.wav") and attempt == 1:
            self.send_error(503)
            return
        body = FILES[path]
        if path.endswith("wrong.wav"):
            body = bytes(reversed(body))  # right size, wrong content
        start = 0
        if self.headers.get("Range") and not path.endswith("norange.wav"):
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if path.endswith(("cut.wav", "norange.wav")) and attempt == 1:
            self.wfile.write(body[:len(body) // 2])  # the connection drops half-way
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


@pytest.fixture
def server():
    Handler.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def manifest():
    return [RemoteFile(path, len(body), hashlib.sha256(body).hexdigest()) for path, body in FILES.items()]


def test_downloads_retry_resume_and_verify(server, tmp_path):
    failures = Downloader(server, tmp_path, connections=4, retries=3, backoff=0, timeout=10).fetch_all(manifest())
    assert failures == {"AudioWAV/missing.wav": "HTTP 404", "AudioWAV/wrong.wav": "sha256 does not match the manifest"}
    for name in ("ok", "cut", "flaky", "norange"):
        assert (tmp_path / f"AudioWAV/{name}.wav").read_bytes() == FILES[f"AudioWAV/{name}.wav"]
    assert not (tmp_path / "AudioWAV/wrong.wav").exists() and not (tmp_path / "AudioWAV/wrong.wav.part").exists()
    assert not list(tmp_path.rglob("*.part"))
    requests = Handler.requests
    cut = [r for p, r in requests if p.endswith("cut.wav")]
    half = len(FILES["AudioWAV/cut.wav"]) // 2
    assert cut == [None, f"bytes={half}-"]  # resumed from the byte where the transfer stopped
    assert [p for p, _ in requests].count("AudioWAV/missing.wav") == 1  # a 404 is not retried
    assert [p for p, _ in requests].count("AudioWAV/flaky.wav") == 2  # a 503 is
    assert [p for p, _ in requests].count("AudioWAV/wrong.wav") == 2  # once more from scratch, then given up
    assert (tmp_path / FAILED_FILE).read_text().splitlines()[1:] == [
        "AudioWAV/missing.wav,HTTP 404", "AudioWAV/wrong.wav,sha256 does not match the manifest"]

    # a second run fetches nothing that is already in place and verified
    Handler.requests = []
    Downloader(server, tmp_path, connections=4, retries=0, backoff=0).fetch_all(manifest())
    assert sorted(p for p, _ in Handler.requests) == ["AudioWAV/missing.wav", "AudioWAV/wrong.wav"]


def test_a_partial_file_from_an_earlier_run_is_completed(server, tmp_path):
    body = FILES["AudioWAV/ok.wav"]
    part = tmp_path / "AudioWAV" / "ok.wav.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:12345])
    remote = [r for r in manifest() if r.path == "AudioWAV/ok.wav"]
    assert Downloader(server, tmp_path, retries=0, backoff=0).fetch_all(remote) == {}
    assert (tmp_path / "AudioWAV/ok.wav").read_bytes() == body
    assert Handler.requests == [("AudioWAV/ok.wav", "bytes=12345-")]


def test_cli_downloads_prepares_and_exits_1_when_a_file_failed(server, tmp_path, capsys, monkeypatch):
    """`mmlesson data prepare cremad --download`: fetched media are prepared; failures are listed, exit 1."""
    from mmlesson.data import REAL_DATASETS
    from mmlesson.data.fabricate import fabricate_cremad

    cremad = REAL_DATASETS["cremad"]
    source = fabricate_cremad(tmp_path / "source", ["1001_DFA_ANG_XX"], cremad.class_names())
    served = {f"{kind}/1001_DFA_ANG_XX.{ext}": (source / kind / f"1001_DFA_ANG_XX.{ext}").read_bytes()
              for kind, ext in (("AudioWAV", "wav"), ("VideoFlash", "flv"))}
    for path, body in served.items():
        monkeypatch.setitem(FILES, path, body)
    listed = [RemoteFile(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in served.items()]
    listed.append(RemoteFile("AudioWAV/1001_DFA_DIS_XX.wav", 10, "0" * 64))  # not on the server: 404
    monkeypatch.setattr(type(cremad), "manifest", lambda self: [r.__dict__ for r in listed])
    code = main(["data", "prepare", "cremad", "--download", "--base-url", server, "--raw", str(tmp_path / "raw"),
                 "--root", str(tmp_path / "root"), "--frame-size", "16", "--workers", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "download: 2 of 3 files in place and verified" in captured.out
    assert "cremad: 1 clips cached" in captured.out
    assert "1 downloads failed (listed in" in captured.err and "run the same command again" in captured.err
    assert main(["data", "prepare", "ave", "--download", "--raw", str(tmp_path), "--root", str(tmp_path / "r")]) == 2
    assert "not redistributable: download them yourself" in capsys.readouterr().err
