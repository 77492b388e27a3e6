"""Receive one file from a multipart/form-data body as a stream, with a hard size limit.

Starlette's form parser spools the whole body before the endpoint runs and has no limit on file
size; this reads the body chunk by chunk, writes the file part to a private temporary file,
hashes it on the way, and stops at the limit.

The event loop only parses and counts; hashing and writing happen in a worker thread, one batch
at a time, while the loop receives the next batch (measured with bench/upload.py: about twice the
throughput of hashing and writing each chunk on the loop).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
from starlette.requests import Request

from vidgate.errors import VidgateError
from vidgate.media.disposition import MalformedHeader, clean_filename, parse_parameters
from vidgate.media.errors import (
    BoundaryInvalid,
    FileMissing,
    FileSentTwice,
    FormFieldTooLong,
    MalformedMultipart,
    NotMultipart,
    TooManyFormFields,
)
from vidgate.media.probe import SNIFF_BYTES
from vidgate.media.writeback import start_writeback

MAX_FIELD_BYTES = 1024
MAX_PARTS = 10
# Headers per part and bytes per header line (python-multipart's defaults, made explicit): a
# Content-Disposition with a long Chinese file name is well under 1 KB.
MAX_PART_HEADERS = 8
MAX_HEADER_LINE_BYTES = 4096 + 128
# RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
MAX_BOUNDARY_LENGTH = 70
BODY_OVERHEAD = 64 * 1024  # boundaries and headers around the file
# The file part goes to the worker thread in batches of about this size: large enough that the
# thread hops and GIL hand-overs are few (~100 for 100 MB), small enough to keep memory flat.
WRITE_BATCH = 1024 * 1024

_file_writers = ThreadPoolExecutor(thread_name_prefix="upload-writer")


class UploadTooLarge(VidgateError):
    """The file is larger than this server's upload limit."""

    status_code = 413


@dataclass
class ReceivedFile:
    path: Path
    filename: str | None
    size: int
    sha256: str
    head: bytes
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def limit_message(max_bytes: int) -> str:
    return f"File too large: the limit is {max_bytes // (1024 * 1024)} MB"


class _HashingFileWriter:
    """Writes the file part to an open file and hashes it, in a worker thread, with at most one
    batch in flight: the event loop gathers the next batch while the last one is written."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd
        self._hash = hashlib.sha256()
        self._written = 0
        self._batch: list[bytes] = []
        self.batched = 0
        self._in_flight: Future[None] | None = None

    def add(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self.batched += len(chunk)

    async def send_batch(self) -> None:
        """Wait for the batch in flight (raising its error), then start the one gathered since."""
        await self._wait_in_flight()
        if self._batch:
            batch, self._batch, self.batched = self._batch, [], 0
            self._in_flight = _file_writers.submit(self._hash_and_write, batch)

    async def finish(self) -> str:
        """Write what is left and close the file; the sha256 of everything written."""
        await self.send_batch()
        await self._wait_in_flight()
        self.close()
        return self._hash.hexdigest()

    async def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            await asyncio.wrap_future(self._in_flight)
            # Forgotten only once done: if the wait is cancelled, close() still waits for it.
            self._in_flight = None

    def close(self) -> None:
        """Close the file once no batch is in flight. Blocks for at most one batch (about a
        millisecond), so the descriptor is never closed under a write still running."""
        if self._in_flight is not None:
            wait_for_futures([self._in_flight])
            self._in_flight = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _hash_and_write(self, batch: list[bytes]) -> None:
        assert self._fd is not None
        # One buffer, so hashlib and os.write each give up the GIL once for the whole batch:
        # a call per chunk would queue for the GIL (the event loop's) after every chunk.
        data = batch[0] if len(batch) == 1 else b"".join(batch)
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        start_writeback(self._fd, self._written, len(data))
        self._written += len(data)


class _Receiver:
    """python-multipart callbacks (synchronous) that route each part to the file or a field."""

    def __init__(self, file_field: str, max_bytes: int, tmp_dir: Path) -> None:
        self.file_field = file_field
        self.max_bytes = max_bytes
        self.tmp_dir = tmp_dir
        self.fields: dict[str, str] = {}
        self.parts = 0
        self.file: ReceivedFile | None = None
        self._writer: _HashingFileWriter | None = None
        self._file_ended = False
        self._head = bytearray()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition: bytes | None = None
        self._name: str | None = None
        self._value = bytearray()
        self._in_file = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise TooManyFormFields()
        self._disposition = None
        self._name = None
        self._value = bytearray()
        self._in_file = False

    def _header_end(self) -> None:
        # Header names are ASCII tokens; only Content-Disposition is read, as raw bytes (its
        # parameters are UTF-8). A second one is refused, not chosen between.
        if self._header_name.strip().lower() == b"content-disposition":
            if self._disposition is not None:
                raise MalformedMultipart("A multipart part has two Content-Disposition headers")
            self._disposition = bytes(self._header_value)
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        if self._disposition is None:
            raise MalformedMultipart("A multipart part has no Content-Disposition header")
        try:
            disposition, params = parse_parameters(self._disposition, "Content-Disposition")
        except MalformedHeader as exc:
            raise MalformedMultipart(str(exc)) from exc
        if disposition != "form-data" or not params.get("name"):
            raise MalformedMultipart(
                "Each multipart part needs a Content-Disposition: form-data header with a name"
            )
        self._name = params["name"]
        if self._name != self.file_field:
            return
        if self.file is not None:
            raise FileSentTwice(self.file_field)
        filename = params.get("filename")
        fd, path = tempfile.mkstemp(prefix="upload-", dir=self.tmp_dir)
        self._writer = _HashingFileWriter(fd)
        self.file = ReceivedFile(
            path=Path(path),
            filename=clean_filename(filename) if filename is not None else None,
            size=0,
            sha256="",
            head=b"",
        )
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self._in_file:
            self._value.extend(chunk)
            if len(self._value) > MAX_FIELD_BYTES:
                raise FormFieldTooLong(self._name)
            return
        assert self.file is not None and self._writer is not None
        self.file.size += len(chunk)
        if self.file.size > self.max_bytes:
            raise UploadTooLarge(limit_message(self.max_bytes))
        if len(self._head) < SNIFF_BYTES:
            self._head.extend(chunk[: SNIFF_BYTES - len(self._head)])
        self._writer.add(chunk)

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_ended = True
        elif self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    async def write_file(self) -> None:
        """Hand the file bytes gathered so far to the writer once there is a batch, and finish
        the file once its part has ended. Called after each chunk of the body is parsed."""
        writer = self._writer
        if writer is None:
            return
        if self._file_ended:
            assert self.file is not None
            self.file.sha256 = await writer.finish()
            self.file.head = bytes(self._head)
            self._writer = None
        elif writer.batched >= WRITE_BATCH:
            await writer.send_batch()

    @property
    def file_incomplete(self) -> bool:
        """The body ended inside the file part (no closing boundary)."""
        return self._writer is not None

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.file is not None:
            self.file.discard()


def _boundary(content_type: str) -> str:
    """The boundary of a `multipart/form-data` Content-Type (as Starlette gives it: Latin-1)."""
    try:
        media_type, params = parse_parameters(content_type.encode("latin-1"), "Content-Type")
    except MalformedHeader as exc:
        raise NotMultipart(str(exc)) from exc
    boundary = params.get("boundary", "")
    if media_type != "multipart/form-data" or not boundary:
        raise NotMultipart()
    if len(boundary) > MAX_BOUNDARY_LENGTH or not boundary.isascii():
        raise BoundaryInvalid(MAX_BOUNDARY_LENGTH)
    return boundary


async def receive_file(
    request: Request, *, file_field: str, max_bytes: int, tmp_dir: Path
) -> ReceivedFile:
    """The one file part of the request (on disk, in `tmp_dir`, which must exist) plus the
    small text fields beside it."""
    boundary = _boundary(request.headers.get("content-type", ""))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + BODY_OVERHEAD:
        raise UploadTooLarge(limit_message(max_bytes))
    receiver = _Receiver(file_field, max_bytes, tmp_dir)
    parser = MultipartParser(
        boundary,
        cast("MultipartCallbacks", receiver.callbacks()),
        max_header_count=MAX_PART_HEADERS,
        max_header_size=MAX_HEADER_LINE_BYTES,
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            await receiver.write_file()
        parser.finalize()
        if receiver.file_incomplete:
            raise MultipartParseError("The body ended inside the file part")
    except MultipartParseError as exc:
        receiver.abort()
        raise MalformedMultipart(f"Malformed multipart/form-data body ({exc})") from exc
    except BaseException:
        receiver.abort()
        raise
    if receiver.file is None:
        raise FileMissing(file_field)
    receiver.file.fields = receiver.fields
    return receiver.file
