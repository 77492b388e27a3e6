"""Upload benchmark (`make bench`): a 100 MB video through POST /api/videos/upload.

Prints the upload throughput and the server process's peak memory growth next to a plain disk
write of the same bytes in the same run. Targets: memory growth <= 64 MB, throughput >= 0.5 of
the plain write. Prints figures; asserts nothing.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import launch_vidgate, running, sign_in, wait_http_ok

SIZE = 100 * 1024 * 1024 - 64 * 1024  # just under the 100 MB limit, with room for the MP4 itself
CHUNK = 1024 * 1024
MEMORY_TARGET_MB = 64
THROUGHPUT_TARGET = 0.5


def small_mp4() -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 10)
        for i in range(10):
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 48), (i * 20, 90, 160)))
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def padded_video(path: Path, total: int) -> None:
    """A real MP4 followed by one `free` box: valid, probeable, and as large as we like."""
    video = small_mp4()
    padding = total - len(video)
    with path.open("wb") as f:
        f.write(video)
        f.write(struct.pack(">I4s", padding, b"free"))
        block = os.urandom(CHUNK)
        left = padding - 8
        while left > 0:
            f.write(block[: min(CHUNK, left)])
            left -= CHUNK


def plain_write_seconds(source: Path, target: Path) -> float:
    started = time.perf_counter()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            dst.write(chunk)
    return time.perf_counter() - started


def reset_peak_rss(pid: int) -> bool:
    """Linux: writing 5 to clear_refs resets VmHWM (peak RSS) to the current RSS."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vidgate-upload-bench-") as tmp:
        work = Path(tmp)
        source = work / "big.mp4"
        padded_video(source, SIZE)
        size_mb = source.stat().st_size / 1e6
        plain = plain_write_seconds(source, work / "copy.mp4")
        (work / "copy.mp4").unlink()

        server = launch_vidgate(work / "data", work / "serve.log", worker=False)
        with running(server):
            wait_http_ok(server, "/readyz")
            token = sign_in(server)
            key = next(
                line.split(": ", 1)[1].strip()
                for line in server.log().splitlines()
                if "client API key" in line
            )
            headers = {"Authorization": f"Bearer {token}", "X-API-Key": key}
            pid = server.proc.pid
            peak_resettable = reset_peak_rss(pid)
            rss_before = rss_kb(pid, "VmRSS")
            with (
                httpx.Client(base_url=server.base_url, timeout=300) as client,
                source.open("rb") as f,
            ):
                started = time.perf_counter()
                r = client.post(
                    "/api/videos/upload",
                    headers=headers,
                    files={"file": ("big.mp4", f, "video/mp4")},
                    data={"file_type": "video"},
                )
                upload_seconds = time.perf_counter() - started
            peak = rss_kb(pid, "VmHWM")
        ok = r.status_code == 200
        growth_mb = (peak - rss_before) / 1024 if peak_resettable else float("nan")
        ratio = plain / upload_seconds
        print("vidgate upload benchmark (2 cores; client, server and PostgreSQL share them)")
        print(f"  file: {size_mb:.1f} MB real MP4 padded with a `free` box; status {r.status_code}")
        print(f"  plain disk write:   {size_mb / plain:8.1f} MB/s  ({plain:.3f} s)")
        print(
            f"  upload (HTTP):      {size_mb / upload_seconds:8.1f} MB/s  ({upload_seconds:.3f} s)"
        )
        print(
            f"  throughput ratio:   {ratio:8.2f}  (target >= {THROUGHPUT_TARGET})"
            f"  {'ok' if ratio >= THROUGHPUT_TARGET else 'BELOW TARGET'}"
        )
        print(
            f"  server peak memory growth: {growth_mb:.1f} MB  (target <= {MEMORY_TARGET_MB} MB)"
            f"  {'ok' if growth_mb <= MEMORY_TARGET_MB else 'ABOVE TARGET'}"
        )
        if not ok:
            print(f"  upload failed: {r.text[:300]}")


def render_speed() -> None:
    """Emulator render speed: seconds of video rendered per second of wall time."""
    from vidgate.emulators.render import render_animation

    with tempfile.TemporaryDirectory(prefix="vidgate-render-bench-") as tmp:
        image = Path(tmp) / "face.png"
        Image.new("RGB", (480, 640), (200, 120, 90)).save(image)
        print("emulator render speed (H.264, one core)")
        for label, fps, width, height in (
            ("wan-std 15 fps 360p", 15, 640, 360),
            ("wan-pro 25 fps 360p", 25, 640, 360),
            ("wan-pro 25 fps 720p", 25, 1280, 720),
        ):
            started = time.perf_counter()
            seconds = render_animation(
                image,
                Path(tmp) / "out.mp4",
                seconds=5.0,
                fps=fps,
                width=width,
                height=height,
                caption="benchmark",
            )
            elapsed = time.perf_counter() - started
            print(
                f"  {label}: {seconds:.1f} s of video in {elapsed:.2f} s"
                f" = {seconds / elapsed:.1f} s/s"
            )


if __name__ == "__main__":
    main()
    render_speed()
