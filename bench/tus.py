"""Resumable upload benchmark (`make bench`): a 100 MB video through /api/uploads/tus/ in 5 MB
PATCHes, with the connection cut once at 60 %, next to a plain `POST /api/videos/upload` of the
same file in the same run.

Prints the bytes sent again after the cut (target: at most one chunk; the server keeps what
arrived of a cut PATCH sent without a checksum, so the client resumes from the HEAD's offset) and
the throughput of the tus upload, with and without the cut, as a ratio to the plain upload's
(medians of the rounds, each round measuring every side). Prints figures; asserts nothing.

As in bench/upload.py, the client sends the file's bytes with sendfile(2), and every stored file
is removed after its round so each round writes into recycled page cache.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import HOST, Server, client_key, launch_vidgate, running, sign_in, wait_http_ok
from upload import SIZE, padded_video, sha256_of, upload_seconds

CHUNK = 5 * 1024 * 1024
CUT_AT = 0.6
ROUNDS = 3
TUS = "/api/uploads/tus/"
PLAIN = "/api/videos/upload"
BASE64_NAME = "YmlnLm1wNA=="  # "big.mp4"
BASE64_VIDEO = "dmlkZW8="  # "video"


@dataclass
class TusRun:
    seconds: float
    sent: int  # bytes put on the wire in PATCH bodies
    status: int
    body: bytes


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str]
) -> http.client.HTTPResponse:
    conn.request(method, path, headers={"Tus-Resumable": "1.0.0", **headers})
    response = conn.getresponse()
    response.read()
    return response


def _patch(
    conn: http.client.HTTPConnection,
    path: str,
    headers: dict[str, str],
    source: Path,
    offset: int,
    count: int,
    *,
    cut_after: int | None = None,
) -> http.client.HTTPResponse | None:
    """One PATCH of `count` bytes from `offset`; with `cut_after`, the connection is closed
    after that many body bytes (None is returned)."""
    conn.putrequest("PATCH", path)
    for name, value in {
        **headers,
        "Tus-Resumable": "1.0.0",
        "Content-Type": "application/offset+octet-stream",
        "Upload-Offset": str(offset),
        "Content-Length": str(count),
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    assert conn.sock is not None
    with source.open("rb") as f:
        if cut_after is not None:
            conn.sock.sendfile(f, offset, cut_after)
            conn.sock.shutdown(socket.SHUT_RDWR)
            conn.close()
            return None
        if count:
            conn.sock.sendfile(f, offset, count)
    return conn.getresponse()


def _resume_offset(server: Server, path: str, headers: dict[str, str]) -> int:
    """HEAD until the cut PATCH has let go of the upload; the offset to go on from."""
    deadline = time.monotonic() + 30
    while True:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        try:
            head = _request(conn, "HEAD", path, headers)
        finally:
            conn.close()
        offset = int(head.headers["Upload-Offset"])
        probe = http.client.HTTPConnection(HOST, server.port, timeout=60)
        try:
            answer = _patch(probe, path, headers, Path("/dev/null"), offset, 0)
            assert answer is not None
            answer.read()
        finally:
            probe.close()
        if answer.status == 204 or time.monotonic() > deadline:
            return offset
        time.sleep(0.02)


def tus_upload(server: Server, headers: dict[str, str], source: Path, *, cut: bool) -> TusRun:
    """Create, then PATCH the file in CHUNK pieces on one kept-alive connection; with `cut`, the
    PATCH crossing CUT_AT of the file is cut halfway and the upload resumed after a HEAD."""
    size = source.stat().st_size
    started = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, server.port, timeout=300)
    created = _request(
        conn,
        "POST",
        TUS,
        {
            **headers,
            "Upload-Length": str(size),
            "Upload-Metadata": f"filename {BASE64_NAME},filetype {BASE64_VIDEO}",
        },
    )
    assert created.status == 201, created.status
    path = created.headers["Location"].split(str(server.port), 1)[1]
    offset, sent, cut_done = 0, 0, not cut
    status, body = 0, b""
    while offset < size:
        count = min(CHUNK, size - offset)
        if not cut_done and offset + count >= size * CUT_AT:
            _patch(conn, path, headers, source, offset, count, cut_after=count // 2)
            sent += count // 2
            cut_done = True
            offset = _resume_offset(server, path, headers)
            conn = http.client.HTTPConnection(HOST, server.port, timeout=300)
            continue
        response = _patch(conn, path, headers, source, offset, count)
        assert response is not None
        body = response.read()
        status = response.status
        sent += count
        if status not in (200, 204):
            break
        offset = int(response.headers["Upload-Offset"])
    conn.close()
    return TusRun(time.perf_counter() - started, sent, status, body)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vidgate-tus-bench-") as tmp:
        work = Path(tmp)
        source = work / "big.mp4"
        padded_video(source, SIZE)
        size = source.stat().st_size
        expected = sha256_of(source)
        data_dir = work / "data"
        server = launch_vidgate(data_dir, work / "serve.log", worker=False)
        plain: list[float] = []
        whole: list[float] = []
        with_cut: list[float] = []
        resent: list[int] = []
        failures: list[str] = []
        with running(server):
            wait_http_ok(server, "/readyz")
            token, key = sign_in(server), client_key(server)
            headers = {"Authorization": f"Bearer {token}", "X-API-Key": key}

            def stored(body: bytes) -> None:
                answer = json.loads(body)
                if answer["sha256"] != expected:
                    failures.append(f"stored sha256 {answer['sha256']} != {expected}")
                (data_dir / "media" / answer["storage_key"]).unlink()

            for _ in range(ROUNDS + 1):  # the first round warms up and is not counted
                seconds, status, body = upload_seconds(server, PLAIN, headers, source)
                plain.append(seconds)
                if status == 200:
                    stored(body)
                else:
                    failures.append(f"plain upload: {status}")
                for cut, into in ((False, whole), (True, with_cut)):
                    run = tus_upload(server, headers, source, cut=cut)
                    into.append(run.seconds)
                    if run.status != 200:
                        failures.append(f"tus upload (cut={cut}): {run.status} {run.body[:200]!r}")
                        continue
                    stored(run.body)
                    if cut:
                        resent.append(run.sent - size)
        plain_s = statistics.median(plain[1:])
        mb = size / 1e6
        print(f"tus upload of {mb:.0f} MB in {CHUNK // (1024 * 1024)} MB chunks, {ROUNDS} rounds")
        print(f"  plain POST /api/videos/upload: {mb / plain_s:7.1f} MB/s (median {plain_s:.2f} s)")
        for label, runs in (("tus, no cut", whole), ("tus, cut at 60 %", with_cut)):
            s = statistics.median(runs[1:])
            print(f"  {label:29}: {mb / s:7.1f} MB/s, ratio to plain {plain_s / s:.2f}")
        worst = max(resent) if resent else -1
        print(
            f"  bytes re-sent after the cut: {', '.join(str(r) for r in resent[1:])} "
            f"(worst {worst}; target <= one chunk, {CHUNK}): "
            f"{'met' if 0 <= worst <= CHUNK else 'NOT met'}"
        )
        for failure in failures:
            print(f"  FAILED: {failure}")


if __name__ == "__main__":
    main()
