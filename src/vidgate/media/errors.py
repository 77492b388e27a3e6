"""What an upload can fail on: the form it comes in, and the file in it.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
(`media.multipart.UploadTooLarge`, the 413, is declared where it is raised.)
"""

from __future__ import annotations

from collections.abc import Iterable

from vidgate.errors import BadRequest, Conflict, NotFound, Unprocessable, VidgateError


class MalformedMultipart(BadRequest):
    """The multipart/form-data body is malformed: a part without a proper Content-Disposition
    header, or a body that breaks off."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class NotMultipart(Unprocessable):
    """The request is not sent as multipart/form-data with a boundary."""

    def __init__(self, reason: str | None = None) -> None:
        detail = "Send the file as multipart/form-data"
        super().__init__(f"{detail} ({reason})" if reason is not None else detail)


class BoundaryInvalid(Unprocessable):
    """The multipart boundary is longer than RFC 2046 allows, or not ASCII."""

    def __init__(self, max_length: int) -> None:
        super().__init__(f"The multipart boundary must be 1 to {max_length} ASCII characters")


class TooManyFormFields(Unprocessable):
    """The form has more parts than an upload takes."""

    detail = "Too many form fields"


class FormFieldTooLong(Unprocessable):
    """A text field of the form is longer than an upload takes."""

    def __init__(self, name: str | None) -> None:
        super().__init__(f"Form field `{name}` is too long")


class FileMissing(Unprocessable):
    """The form has no file part."""

    def __init__(self, field: str) -> None:
        super().__init__(f"Missing form field `{field}`")


class FileSentTwice(Unprocessable):
    """The form has more than one file part."""

    def __init__(self, field: str) -> None:
        super().__init__(f"Send exactly one `{field}`")


class UnknownFileType(Unprocessable):
    """The file_type field is neither image nor video."""

    detail = "file_type must be 'image' or 'video'"


class ExtensionNotAllowed(BadRequest):
    """The file name's extension is not one accepted for its file_type."""

    def __init__(self, kind: str, extension: str, allowed: Iterable[str]) -> None:
        super().__init__(
            f"Unsupported {kind} extension '{extension or '(none)'}'; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


class EmptyFile(BadRequest):
    """The file is empty."""

    detail = "The file is empty"


class NotWhatExtensionSays(BadRequest):
    """The bytes are not a readable image or video of the kind the extension says."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


# Resumable (tus) uploads: /api/uploads/tus/ (docs/api.md, "Resumable uploads").


class TusHeaderInvalid(BadRequest):
    """A tus header (Upload-Length, Upload-Offset, Upload-Metadata, Upload-Checksum) is missing
    or not in the form the tus 1.0 protocol gives it."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class TusVersionUnsupported(VidgateError):
    """The request does not say `Tus-Resumable: 1.0.0`, the one tus version vidgate speaks."""

    status_code = 412
    detail = "Send Tus-Resumable: 1.0.0 (the only tus version supported)"

    def __init__(self) -> None:
        super().__init__(headers={"Tus-Version": "1.0.0"})


class TusUploadNotFound(NotFound):
    """No resumable upload with this id belongs to the caller (or it expired, or was
    terminated)."""

    detail = "Upload not found (it may have expired or been deleted)"


class TusOffsetMismatch(Conflict):
    """The PATCH's Upload-Offset is not where the upload stands (send a HEAD to learn it), or the
    upload is already complete."""

    def __init__(self, sent: int, offset: int) -> None:
        super().__init__(f"Upload-Offset is {sent} but the upload is at {offset}: resume there")


class TusUploadBusy(VidgateError):
    """Another PATCH is still sending bytes to this upload."""

    status_code = 423
    detail = "Another request is still sending this upload; wait for it or resume after a HEAD"


class TusNotOctetStream(VidgateError):
    """The PATCH's body is not sent as `application/offset+octet-stream`."""

    status_code = 415
    detail = "Send the bytes as Content-Type: application/offset+octet-stream"


class TusChecksumMismatch(VidgateError):
    """The bytes do not match the Upload-Checksum sent with them; they were discarded and the
    offset is unchanged."""

    status_code = 460
    detail = "Checksum mismatch: the chunk was discarded, send it again"


class TusTooManyUnfinished(Conflict):
    """The caller already has as many unfinished resumable uploads as allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You have {limit} unfinished uploads: finish or delete one before starting another"
        )


class TusUploadIncomplete(Conflict):
    """The resumable upload has not received all its bytes yet (or was already completed, for a
    DELETE)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class DirectUploadsNeedS3(Conflict):
    """Direct uploads to storage are only offered when the server stores media in an
    S3-compatible bucket; upload through `POST /api/videos/upload` instead."""

    detail = "Direct uploads need S3 storage; use POST /api/videos/upload"


class ContentTypeNotAllowed(BadRequest):
    """The declared content type is not one accepted for the file_type."""

    def __init__(self, kind: str, content_type: str, allowed: Iterable[str]) -> None:
        super().__init__(
            f"Unsupported {kind} content type '{content_type}'; allowed: {', '.join(allowed)}"
        )


class UploadIntentNotFound(NotFound):
    """No direct upload with this id is waiting for the caller (never presigned, someone
    else's, or expired and removed)."""

    detail = "Upload not found"


class FileNotUploaded(Conflict):
    """Nothing has been uploaded to storage for this direct upload yet (or what was uploaded
    was refused and removed)."""

    detail = "The file has not been uploaded to storage yet"


class FileChanged(Conflict):
    """The file in storage was replaced while it was being checked; complete the upload again."""

    detail = "The file in storage changed while it was being checked; complete the upload again"


class SizeNotAsDeclared(BadRequest):
    """The file in storage does not have the size declared when the upload was presigned."""

    def __init__(self, size: int, declared: int) -> None:
        super().__init__(f"The uploaded file is {size} bytes; {declared} were declared")


class StorageQuotaExceeded(VidgateError):
    """Storing the file would take the account's uploads and results over its storage quota."""

    status_code = 413
