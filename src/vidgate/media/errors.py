"""What an upload can fail on: the form it comes in, and the file in it.

Each docstring is what the OpenAPI document says about the error on the routes that declare it.
(`media.multipart.UploadTooLarge`, the 413, is declared where it is raised.)
"""

from __future__ import annotations

from collections.abc import Iterable

from vidgate.errors import BadRequest, Unprocessable


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
