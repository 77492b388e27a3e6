"""S3-compatible storage (AWS S3, Alibaba OSS's S3 endpoint, MinIO, R2) through boto3.

boto3 is blocking; every network call runs in a worker thread (boto3 clients are thread-safe).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import anyio
import anyio.to_thread
import boto3  # type: ignore[import-untyped]
import structlog
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from .storage import (
    READ_CHUNK,
    ListedObject,
    ObjectChanged,
    ObjectNotFound,
    ObjectTooLarge,
    StoredObject,
    iter_file,
    public_media_url,
    validate_key,
)

# Multipart part size. S3 wants ≥ 5 MiB per part (except the last) and ≤ 10,000 parts, so 8 MiB
# parts cover objects up to ~78 GiB while holding at most one part in memory.
PART_SIZE = 8 * 1024 * 1024

logger = structlog.get_logger(__name__)

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _is_missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES


def _version_error(exc: ClientError, key: str) -> Exception:
    """What a read or copy pinned to one ETag failed on: that version is gone, or another."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code in _MISSING_CODES or code in ("PreconditionFailed", "412"):
        return ObjectChanged(key)
    error: Exception = exc
    return error


class S3Storage:
    """Objects in one bucket; handed out to browsers as short-lived presigned GET URLs."""

    name = "s3"

    def __init__(
        self, client: Any, bucket: str, public_base_url: str, *, presign_seconds: int = 900
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.public_base_url = public_base_url.rstrip("/")
        self.presign_seconds = presign_seconds

    @classmethod
    def connect(
        cls,
        *,
        bucket: str,
        public_base_url: str,
        endpoint_url: str = "",
        region: str = "",
        access_key_id: str = "",
        secret_access_key: str = "",
        addressing_style: str = "auto",
        presign_seconds: int = 900,
    ) -> S3Storage:
        """Build the boto3 client; empty settings fall back to boto3's own configuration chain."""
        if addressing_style not in ("auto", "path", "virtual"):
            raise ValueError(f"invalid S3 addressing style {addressing_style!r}")
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": addressing_style},
            # botocore ≥ 1.36 adds CRC checksums / aws-chunked bodies by default, which MinIO, OSS
            # and other S3-compatibles reject; only send them where an operation requires them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=32,
        )
        session = boto3.session.Session()
        client = session.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            config=config,
        )
        return cls(client, bucket, public_base_url, presign_seconds=presign_seconds)

    async def _call(self, method: str, **params: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: getattr(self.client, method)(**params))

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """One PUT for bodies under PART_SIZE, else a multipart upload (aborted on any failure)."""
        validate_key(key)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise ObjectTooLarge(max_bytes)
                digest.update(chunk)
                buffer += chunk
                while len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        created = await self._call(
                            "create_multipart_upload",
                            Bucket=self.bucket,
                            Key=key,
                            ContentType=content_type,
                        )
                        upload_id = str(created["UploadId"])
                    part = bytes(buffer[:PART_SIZE])
                    del buffer[:PART_SIZE]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await self._call(
                    "put_object",
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(buffer),
                    ContentType=content_type,
                )
            else:
                if buffer:
                    parts.append(
                        await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer))
                    )
                await self._call(
                    "complete_multipart_upload",
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            if upload_id is not None:
                # Shielded: a cancelled request must still not leave billable parts behind.
                with anyio.CancelScope(shield=True):
                    await self._abort(key, upload_id)
            raise
        return StoredObject(
            key=key, size=size, sha256=digest.hexdigest(), content_type=content_type
        )

    async def _abort(self, key: str, upload_id: str) -> None:
        try:
            await self._call(
                "abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id
            )
        except Exception:
            # Keep the original error; a bucket lifecycle rule (AbortIncompleteMultipartUpload)
            # is the backstop for parts this could not remove.
            logger.warning("s3_abort_multipart_failed", key=key, upload_id=upload_id, exc_info=True)

    async def _upload_part(
        self, key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        answer = await self._call(
            "upload_part",
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"ETag": answer["ETag"], "PartNumber": number}

    async def put_file(self, key: str, path: Path, *, content_type: str) -> StoredObject:
        """Upload a local file (hashing it on the way)."""
        return await self.put_stream(key, iter_file(path), content_type=content_type)

    async def adopt_file(
        self, key: str, path: Path, *, content_type: str, sha256: str
    ) -> StoredObject:
        """Upload the file, then remove the local copy."""
        stored = await self.put_file(key, path, content_type=content_type)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))
        return stored

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """Yield the object's bytes in chunks; ObjectNotFound if it does not exist."""
        validate_key(key)
        try:
            answer = await self._call("get_object", Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                raise ObjectNotFound(key) from None
            raise
        body = answer["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, READ_CHUNK):
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(body.close)

    async def exists(self, key: str) -> bool:
        """HEAD the object."""
        validate_key(key)
        try:
            await self._call("head_object", Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        """DELETE the object (S3 answers 204 for a missing key too)."""
        validate_key(key)
        await self._call("delete_object", Bucket=self.bucket, Key=key)

    async def stat(self, key: str) -> tuple[int, str] | None:
        """The object's size in bytes and ETag from a HEAD, or None if there is no object."""
        validate_key(key)
        try:
            answer = await self._call("head_object", Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return int(answer["ContentLength"]), str(answer["ETag"])

    async def read_head(self, key: str, length: int, *, etag: str) -> bytes:
        """The first ``length`` bytes of the object (fewer if it is shorter), by a ranged GET of
        the version ``etag`` names (ObjectChanged if another one replaced it)."""
        answer = await self._get_version(key, etag, Range=f"bytes=0-{length - 1}")
        body = answer["Body"]
        try:
            data: bytes = await anyio.to_thread.run_sync(body.read, length)
        finally:
            await anyio.to_thread.run_sync(body.close)
        return data

    async def download(self, key: str, path: Path, *, etag: str, max_bytes: int) -> str:
        """Write the version ``etag`` names to ``path``, at most ``max_bytes`` of it
        (ObjectTooLarge beyond), and return its hex SHA-256."""
        answer = await self._get_version(key, etag)
        body = answer["Body"]
        digest = hashlib.sha256()
        size = 0
        file: BinaryIO = await anyio.to_thread.run_sync(path.open, "wb")
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, READ_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ObjectTooLarge(max_bytes)
                digest.update(chunk)
                await anyio.to_thread.run_sync(file.write, chunk)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(file.close)
                await anyio.to_thread.run_sync(body.close)
        return digest.hexdigest()

    async def copy(self, source: str, target: str, *, etag: str) -> None:
        """Copy the version ``etag`` names of ``source`` to ``target`` inside the bucket (no bytes
        pass through vidgate); ObjectChanged if another version replaced it."""
        validate_key(target)
        try:
            await self._call(
                "copy_object",
                Bucket=self.bucket,
                Key=target,
                CopySource={"Bucket": self.bucket, "Key": validate_key(source)},
                CopySourceIfMatch=etag,
            )
        except ClientError as exc:
            raise _version_error(exc, source) from None

    async def _get_version(self, key: str, etag: str, **params: Any) -> Any:
        validate_key(key)
        try:
            return await self._call(
                "get_object", Bucket=self.bucket, Key=key, IfMatch=etag, **params
            )
        except ClientError as exc:
            raise _version_error(exc, key) from None

    def presigned_post(
        self, key: str, *, content_type: str, size: int, expires_in: int
    ) -> tuple[str, dict[str, str]]:
        """The URL and form fields of a browser POST that can store exactly one object: under
        ``key``, of exactly ``size`` bytes, with this Content-Type (the bucket checks the signed
        policy; signing is local, no network call)."""
        answer = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=validate_key(key),
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]],
            ExpiresIn=expires_in,
        )
        return str(answer["url"]), {str(k): str(v) for k, v in answer["fields"].items()}

    async def list_keys(self, prefix: str) -> AsyncIterator[ListedObject]:
        """ListObjectsV2, a page (up to 1,000 keys) per call."""
        token: str | None = None
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
            if token is not None:
                params["ContinuationToken"] = token
            page = await self._call("list_objects_v2", **params)
            for item in page.get("Contents", []):
                yield ListedObject(
                    key=item["Key"], size=int(item["Size"]), modified=item["LastModified"]
                )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or token is None:
                return

    def public_url(self, key: str) -> str:
        """The stable vidgate URL of ``key`` (it redirects to a fresh presigned URL)."""
        return public_media_url(self.public_base_url, validate_key(key))

    def presigned_get_url(self, key: str, filename: str | None = None) -> str:
        """A GetObject URL valid for ``presign_seconds``; signing is local, no network call."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": validate_key(key)}
        if filename is not None:
            params["ResponseContentDisposition"] = attachment_disposition(filename)
        url = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self.presign_seconds
        )
        return str(url)


def attachment_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` and, when needed, an RFC 5987 ``filename*``."""
    ascii_name = "".join(c for c in filename if " " <= c <= "~" and c not in '"\\') or "download"
    if ascii_name == filename:
        return f'attachment; filename="{ascii_name}"'
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
