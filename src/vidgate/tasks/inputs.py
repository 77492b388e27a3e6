"""Input media for a task: find what a URL points at, check it is real media within the vendor's
limits, and choose the URL the vendor will fetch.

URLs of vidgate uploads resolve to storage (their metadata was read at upload time). Any other
URL is downloaded once through the SSRF-safe client, sniffed and probed, then discarded.

A download can take as long as the remote host likes (up to the timeout), so no database
connection is held while one runs: an upload is looked up on a connection of its own, returned
to the pool at once. Downloads are capped per process (excess waits a little, then 503) and per
user (excess is 429), so one caller cannot tie up the fetch slots or the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from vidgate.db.engine import Database
from vidgate.media.models import Upload
from vidgate.media.probe import FileType, MediaInfo, MediaRejected, read_head
from vidgate.media.sandbox import ProbeSandbox
from vidgate.media.storage import Storage, fetchable_url, public_media_url
from vidgate.net.safe_http import FetchFailed, SafeHttpClient, TooLarge, UnsafeUrl
from vidgate.tasks.errors import (
    InputFetchFailed,
    InputNotMedia,
    InputOutsideLimits,
    InputUploadExpired,
    InputUploadNotFound,
    InputUploadWrongType,
    InputUrlRefused,
    RemoteFetchesBusy,
    TooManyFetchesForAccount,
)

MB = 1024 * 1024


@dataclass(frozen=True)
class MediaLimits:
    """What a vendor accepts for one input (DashScope and kie.ai published limits)."""

    what: str  # "character image", "reference video", ...
    content_types: frozenset[str]
    max_bytes: int
    min_side: int | None = None
    max_side: int | None = None
    max_aspect: float | None = None  # longer side / shorter side
    min_seconds: float | None = None
    max_seconds: float | None = None

    def check(self, field: str, info: MediaInfo, size: int) -> None:
        """BadRequest naming the field and the limit when the media is outside it."""
        if info.content_type not in self.content_types:
            raise InputOutsideLimits(
                field, f"{info.content_type} is not accepted for the {self.what}"
            )
        if size > self.max_bytes:
            raise InputOutsideLimits(
                field,
                f"the {self.what} is {size / MB:.1f} MB; at most "
                f"{self.max_bytes // MB} MB is accepted",
            )
        sides = (info.width, info.height)
        if (
            self.min_side is not None
            and self.max_side is not None
            and (min(sides) < self.min_side or max(sides) > self.max_side)
        ):
            raise InputOutsideLimits(
                field,
                f"the {self.what} is {info.width}x{info.height}; width and height"
                f" must each be between {self.min_side} and {self.max_side} pixels",
            )
        if self.max_aspect is not None and max(sides) > self.max_aspect * min(sides):
            raise InputOutsideLimits(
                field, f"the {self.what}'s aspect ratio must be between 1:3 and 3:1"
            )
        duration = info.duration_seconds
        if (
            self.min_seconds is not None
            and self.max_seconds is not None
            and (duration is None or not self.min_seconds <= duration <= self.max_seconds)
        ):
            shown = f"{duration:g} s" if duration is not None else "of unknown length"
            raise InputOutsideLimits(
                field,
                f"the {self.what} is {shown}; it must be between "
                f"{self.min_seconds:g} and {self.max_seconds:g} seconds long",
            )


IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})

# DashScope Wan2.2-Animate: the character image and the reference video.
ANIMATE_IMAGE = MediaLimits(
    "character image", IMAGE_TYPES, 5 * MB, min_side=200, max_side=4096, max_aspect=3.0
)
ANIMATE_VIDEO = MediaLimits(
    "reference video",
    frozenset({"video/mp4", "video/quicktime", "video/x-msvideo"}),
    200 * MB,
    min_side=200,
    max_side=2048,
    max_aspect=3.0,
    min_seconds=2.0,
    max_seconds=30.0,
)
# kie.ai Sora 2 image-to-video: JPEG, PNG or WebP up to 10 MB.
SORA_IMAGE = MediaLimits("image", IMAGE_TYPES, 10 * MB)


@dataclass(frozen=True)
class ResolvedMedia:
    url: str  # as the caller gave it
    upstream_url: str  # what the vendor is asked to fetch
    info: MediaInfo
    size: int


# How long a create waits for one of the process's fetch slots before answering 503.
FETCH_SLOT_WAIT_SECONDS = 5.0


class MediaResolver:
    def __init__(
        self,
        *,
        db: Database,
        storage: Storage,
        prober: ProbeSandbox,
        public_base_url: str,
        client: SafeHttpClient,
        tmp_dir: Path,
        timeout: float,
        max_fetches: int = 16,
        max_fetches_per_user: int = 2,
    ) -> None:
        self.db = db
        self.storage = storage
        self.prober = prober
        self.media_prefix = public_media_url(public_base_url, "")
        self.client = client
        self.tmp_dir = tmp_dir
        self.timeout = timeout
        self.max_fetches_per_user = max_fetches_per_user
        self._slots = asyncio.Semaphore(max_fetches)
        self._fetching: Counter[uuid.UUID] = Counter()

    async def resolve(
        self,
        url: str,
        *,
        user_id: uuid.UUID,
        field: str,
        file_type: FileType,
        limits: MediaLimits,
    ) -> ResolvedMedia:
        if url.startswith(self.media_prefix):
            resolved = await self._uploaded(url, user_id, field, file_type)
        else:
            async with self._fetch_slot(user_id):
                resolved = await self._remote(url, field, file_type, limits.max_bytes)
        limits.check(field, resolved.info, resolved.size)
        return resolved

    @contextlib.asynccontextmanager
    async def _fetch_slot(self, user_id: uuid.UUID) -> AsyncIterator[None]:
        if self._fetching[user_id] >= self.max_fetches_per_user:
            raise TooManyFetchesForAccount(self.max_fetches_per_user)
        self._fetching[user_id] += 1
        try:
            try:
                async with asyncio.timeout(FETCH_SLOT_WAIT_SECONDS):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise RemoteFetchesBusy() from exc
            try:
                yield
            finally:
                self._slots.release()
        finally:
            self._fetching[user_id] -= 1
            if not self._fetching[user_id]:
                del self._fetching[user_id]

    async def _uploaded(
        self, url: str, user_id: uuid.UUID, field: str, file_type: FileType
    ) -> ResolvedMedia:
        key = url.removeprefix(self.media_prefix).split("?", 1)[0]
        async with self.db.autocommit_engine.connect() as conn:
            upload = (
                await conn.execute(select(Upload.__table__).where(Upload.storage_key == key))
            ).first()
        if upload is None or upload.user_id != user_id:
            raise InputUploadNotFound(field)
        if upload.expired_at is not None:
            raise InputUploadExpired(field)
        if upload.file_type != file_type:
            raise InputUploadWrongType(field, upload.file_type, file_type)
        info = MediaInfo(
            upload.content_type,
            "",
            upload.width or 0,
            upload.height or 0,
            upload.duration_seconds,
            upload.codec,
            upload.fps,
        )
        return ResolvedMedia(url, fetchable_url(self.storage, key), info, upload.size)

    async def _remote(
        self, url: str, field: str, file_type: FileType, max_bytes: int
    ) -> ResolvedMedia:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="remote-", suffix=".part")
        path = Path(name)
        try:
            os.close(handle)
            try:
                download = await self.client.download(
                    url, path, max_bytes=max_bytes, timeout=self.timeout
                )
            except TooLarge as exc:
                raise InputOutsideLimits(
                    field, f"the file is larger than {max_bytes // MB} MB"
                ) from exc
            except UnsafeUrl as exc:
                raise InputUrlRefused(field, str(exc)) from exc
            except FetchFailed as exc:
                raise InputFetchFailed(field, str(exc)) from exc
            head = await asyncio.to_thread(read_head, path)
            try:
                info = await self.prober.probe(path, head, file_type)
            except MediaRejected as exc:
                raise InputNotMedia(field, str(exc)) from exc
            return ResolvedMedia(url, url, info, download.size)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
