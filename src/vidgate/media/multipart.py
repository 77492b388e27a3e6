"""Receive one file from a multipart/form-data body as a stream, with a hard size limit.

Starlette's form parser spools the whole body before the endpoint runs and has no limit on file
size; this reads the body chunk by chunk, writes the file part to a private temporary file,
hashes it on the way, and stops at the limit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks
from starlette.requests import Request

from vidgate.errors import BadRequest, Unprocessable, VidgateError

HEAD_BYTES = 8192  # enough for every magic-byte signature we accept
MAX_FIELD_BYTES = 1024
MAX_PARTS = 10
BODY_OVERHEAD = 64 * 1024  # boundaries and headers around the file


class UploadTooLarge(VidgateError):
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


def _limit_message(max_bytes: int) -> str:
    return f"File too large: the limit is {max_bytes // (1024 * 1024)} MB"


class _Receiver:
    """python-multipart callbacks (synchronous) that route each part to the file or a field."""

    def __init__(self, file_field: str, max_bytes: int, tmp_dir: Path) -> None:
        self.file_field = file_field
        self.max_bytes = max_bytes
        self.tmp_dir = tmp_dir
        self.fields: dict[str, str] = {}
        self.parts = 0
        self.file: ReceivedFile | None = None
        self._handle: int | None = None
        self._hash = hashlib.sha256()
        self._head = bytearray()
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
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
            raise Unprocessable("Too many form fields")
        self._headers = {}
        self._name = None
        self._value = bytearray()
        self._in_file = False

    def _header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        self._headers[name] = self._header_value.decode("utf-8", "replace")
        self._header_name = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name")
        self._name = name.decode("utf-8", "replace") if name else None
        if self._name != self.file_field:
            return
        if self.file is not None:
            raise Unprocessable(f"Send exactly one `{self.file_field}`")
        filename = options.get(b"filename")
        fd, path = tempfile.mkstemp(prefix="upload-", dir=self.tmp_dir)
        self._handle = fd
        self.file = ReceivedFile(
            path=Path(path),
            filename=filename.decode("utf-8", "replace") if filename else None,
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
                raise Unprocessable(f"Form field `{self._name}` is too long")
            return
        assert self.file is not None and self._handle is not None
        self.file.size += len(chunk)
        if self.file.size > self.max_bytes:
            raise UploadTooLarge(_limit_message(self.max_bytes))
        if len(self._head) < HEAD_BYTES:
            self._head.extend(chunk[: HEAD_BYTES - len(self._head)])
        self._hash.update(chunk)
        # A page-cache write of one chunk is quicker than a hop to a worker thread.
        os.write(self._handle, chunk)

    def _part_end(self) -> None:
        if self._in_file:
            self._close_file()
        elif self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")

    def _close_file(self) -> None:
        if self._handle is not None:
            os.close(self._handle)
            self._handle = None
        if self.file is not None:
            self.file.sha256 = self._hash.hexdigest()
            self.file.head = bytes(self._head)

    def abort(self) -> None:
        self._close_file()
        if self.file is not None:
            self.file.discard()


async def receive_file(
    request: Request, *, file_field: str, max_bytes: int, tmp_dir: Path
) -> ReceivedFile:
    """The one file part of the request (on disk, in `tmp_dir`, which must exist) plus the
    small text fields beside it."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise Unprocessable("Send the file as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + BODY_OVERHEAD:
        raise UploadTooLarge(_limit_message(max_bytes))
    receiver = _Receiver(file_field, max_bytes, tmp_dir)
    parser = MultipartParser(boundary, cast("MultipartCallbacks", receiver.callbacks()))
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        receiver.abort()
        raise BadRequest("Malformed multipart/form-data body") from exc
    except BaseException:
        receiver.abort()
        raise
    if receiver.file is None:
        raise Unprocessable(f"Missing form field `{file_field}`")
    receiver.file.fields = receiver.fields
    return receiver.file
