"""Real media for the browser tests, within the emulated vendors' input limits."""

import os
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fixtures.samples import jpeg_bytes, mp4_bytes  # noqa: E402

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
(out / "portrait.jpg").write_bytes(jpeg_bytes(size=(320, 400)))
(out / "dance.mp4").write_bytes(mp4_bytes(seconds=2.5, fps=10, size=(320, 240)))
(out / "not-a-video.mp4").write_bytes(b"this is plain text, not a video\n" * 10)
# Three 5 MB upload chunks: a real clip followed by an MP4 `free` box of random bytes.
clip = mp4_bytes(seconds=2.5, fps=10, size=(320, 240))
padding = 12 * 1024 * 1024 - len(clip)
(out / "long.mp4").write_bytes(clip + struct.pack(">I4s", padding, b"free") + os.urandom(padding - 8))
