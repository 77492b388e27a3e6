"""Backend selection: the local or S3 storage the settings ask for (`vendors.STORAGE_BACKENDS`
declares the backends and the settings each needs)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from vidgate.media.storage import Storage

if TYPE_CHECKING:
    from vidgate.config import Settings


def storage_from_settings(settings: Settings) -> Storage:
    """The storage backend the settings configure."""
    return build_storage(
        backend=settings.storage_backend,
        data_dir=settings.data_dir,
        public_base_url=settings.base_url,
        s3_bucket=settings.s3_bucket,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=settings.s3_secret_access_key,
        s3_addressing_style=settings.s3_addressing_style,
        presign_seconds=settings.storage_presign_seconds,
    )


def build_storage(
    *,
    backend: str,
    data_dir: Path,
    public_base_url: str,
    s3_bucket: str = "",
    s3_endpoint_url: str = "",
    s3_region: str = "",
    s3_access_key_id: str = "",
    s3_secret_access_key: str = "",
    s3_addressing_style: str = "auto",
    presign_seconds: int = 900,
) -> Storage:
    """The backend the settings ask for: ``local`` (files under ``data_dir/media``) or ``s3``."""
    if backend == "local":
        from .local import LocalStorage

        return LocalStorage(data_dir / "media", public_base_url)
    if backend == "s3":
        from .s3 import S3Storage

        if not s3_bucket:
            raise ValueError("the s3 storage backend needs a bucket")
        return S3Storage.connect(
            bucket=s3_bucket,
            public_base_url=public_base_url,
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            access_key_id=s3_access_key_id,
            secret_access_key=s3_secret_access_key,
            addressing_style=s3_addressing_style,
            presign_seconds=presign_seconds,
        )
    raise ValueError(f"unknown storage backend {backend!r} (expected 'local' or 's3')")
