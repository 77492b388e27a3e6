"""File and field names in any UTF-8, as browsers send them; unreadable multipart headers are a
clean 4xx, whatever their bytes."""

from __future__ import annotations

import string
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from vidgate.db.engine import Database
from vidgate.media.models import Upload
from vidgate.runtime import Runtime

from ..fixtures.app import DEV_CLIENT_KEY
from ..fixtures.samples import png_bytes
from ..fixtures.signin import SignedIn, sign_in

UPLOAD = "/api/videos/upload"
BOUNDARY = b"vidgate-test-boundary"
PNG = png_bytes()


def _body(disposition: bytes, *, extra_field: bytes | None = None) -> bytes:
    """A multipart body: `file_type=image`, then the file part with this Content-Disposition."""
    parts = [
        b'Content-Disposition: form-data; name="file_type"\r\n\r\nimage',
        b"Content-Disposition: " + disposition + b"\r\nContent-Type: image/png\r\n\r\n" + PNG,
    ]
    if extra_field is not None:
        parts.append(extra_field)
    body = b"".join(b"--" + BOUNDARY + b"\r\n" + part + b"\r\n" for part in parts)
    return body + b"--" + BOUNDARY + b"--\r\n"


async def _post(
    client: httpx.AsyncClient,
    user: SignedIn,
    body: bytes,
    content_type: bytes = b"multipart/form-data; boundary=" + BOUNDARY,
) -> httpx.Response:
    headers = {**user.headers, "X-API-Key": DEV_CLIENT_KEY}
    return await client.post(
        UPLOAD, headers={**headers, "Content-Type": content_type}, content=body
    )


async def _stored_name(db: Database, storage_key: str) -> str | None:
    async with db.session() as s:
        row = await s.scalar(select(Upload).where(Upload.storage_key == storage_key))
    assert row is not None
    return row.original_filename


async def _count_uploads(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(Upload)) or 0)


def _tmp_files(runtime: Runtime) -> list[Path]:
    return list((runtime.settings.data_dir / "tmp").iterdir())


async def test_chinese_file_name_is_accepted_and_kept(
    client: httpx.AsyncClient, db: Database
) -> None:
    """httpx, like browsers (RFC 7578 §4.2), sends the name as raw UTF-8 in filename="…"."""
    user = await sign_in(client)
    r = await client.post(
        UPLOAD,
        headers={**user.headers, "X-API-Key": DEV_CLIENT_KEY},
        files={"file": ("照片.png", PNG, "image/png")},
        data={"file_type": "image"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["content_type"] == "image/png"
    assert await _stored_name(db, r.json()["storage_key"]) == "照片.png"


@pytest.mark.parametrize(
    ("disposition", "stored"),
    [
        ('form-data; name="file"; filename="照片.png"', "照片.png"),
        ('form-data; name="file"; filename="Ünïcödé 写真 📷.PNG"', "Ünïcödé 写真 📷.PNG"),
        ("form-data; name=\"file\"; filename*=UTF-8''%E7%85%A7%E7%89%87.png", "照片.png"),
        ("form-data; name=file; filename*=utf-8'zh'%E7%85%A7%E7%89%87.png", "照片.png"),
        # filename* wins over the ASCII fallback next to it (RFC 6266 §4.3), in either order.
        (
            'form-data; name="file"; filename="photo.png"; filename*=UTF-8\'\'%E7%85%A7.png',
            "照.png",
        ),
        (
            'form-data; filename*=UTF-8\'\'%E7%85%A7.png; name="file"; filename="photo.png"',
            "照.png",
        ),
        ("form-data; name=\"file\"; filename*=ISO-8859-1''caf%E9.png", "café.png"),
        ('form-data; name="file"; filename="C:\\Users\\李\\照片.png"', "照片.png"),
        ('form-data; name="file"; filename="a\\"b\\".png"', 'a"b".png'),
        ('FORM-DATA ; NAME = "file" ; FILENAME = "x.png" ;', "x.png"),
        ('form-data; name="file"; filename="bad\x01\x7fname.png"', "badname.png"),
    ],
)
async def test_file_names_in_utf8_are_kept(
    client: httpx.AsyncClient, db: Database, disposition: str, stored: str
) -> None:
    user = await sign_in(client)
    r = await _post(client, user, _body(disposition.encode()))
    assert r.status_code == 200, r.text
    assert await _stored_name(db, r.json()["storage_key"]) == stored


async def test_non_latin1_field_name_is_read(client: httpx.AsyncClient) -> None:
    """A field whose name is not Latin-1 is read (and, being unknown, ignored)."""
    user = await sign_in(client)
    note = 'Content-Disposition: form-data; name="备注"\r\n\r\n你好'.encode()
    r = await _post(
        client, user, _body(b'form-data; name="file"; filename="a.png"', extra_field=note)
    )
    assert r.status_code == 200, r.text
    named = await _post(client, user, _body(b"form-data; name*=UTF-8''file; filename=\"a.png\""))
    assert named.status_code == 200, named.text


@pytest.mark.parametrize(
    ("disposition", "fragment"),
    [
        (b'form-data; name="file"; filename="\xff\xfe.png"', "not valid UTF-8"),
        (b'form-data; name="file"; filename="\xe7\x85.png"', "not valid UTF-8"),
        (b'form-data; name="file"; filename="unterminated.png', "unterminated"),
        (b"form-data; name=\"file\"; filename*=UTF-8''%ZZ.png", "percent-encoding"),
        (b"form-data; name=\"file\"; filename*=UTF-8''%E7%85.png", "not valid UTF-8"),
        (b"form-data; name=\"file\"; filename*=KOI8-R''abc.png", "unsupported charset"),
        (b'form-data; name="file"; filename*=abc.png', "charset'language'value"),
        (b'form-data; name="file"; filename="a.png"; filename="b.png"', "twice"),
        (b'form-data; name="file"; name="other"; filename="a.png"', "twice"),
        (b'form-data; name="file"; filename="a.png"; =x', "without a name"),
        (b'form-data; name="file"; filename', "no value"),
        (b'form-data; name="file" filename="a.png"', "malformed"),
        (b'form-data; name="file"; filename=a b.png', "malformed"),
        (b'attachment; name="file"; filename="a.png"', "form-data"),
        (b'form-data; filename="a.png"', "with a name"),
        (b"", "no value"),
        (b'form-data; name="file"; filename="' + b"x" * 5000 + b'.png"', "header size"),
    ],
)
async def test_unreadable_content_disposition_is_400_and_nothing_is_kept(
    client: httpx.AsyncClient, runtime: Runtime, db: Database, disposition: bytes, fragment: str
) -> None:
    user = await sign_in(client)
    before = await _count_uploads(db)
    r = await _post(client, user, _body(disposition))
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]
    assert await _count_uploads(db) == before
    assert _tmp_files(runtime) == []


async def test_part_without_content_disposition_is_400(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    body = b"--" + BOUNDARY + b"\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\r\n"
    r = await _post(client, user, body + b"--" + BOUNDARY + b"--\r\n")
    assert r.status_code == 400
    assert r.json() == {"detail": "A multipart part has no Content-Disposition header"}
    twice = b'Content-Disposition: form-data; name="x"\r\nContent-Disposition: form-data'
    r = await _post(
        client,
        user,
        _body(b'form-data; name="file"; filename="a.png"').replace(
            b'Content-Disposition: form-data; name="file_type"', twice
        ),
    )
    assert r.status_code == 400
    assert "two Content-Disposition" in r.json()["detail"]


@pytest.mark.parametrize(
    "content_type",
    [
        b"multipart/form-data",
        b"multipart/form-data; boundary=",
        b'multipart/form-data; boundary="unterminated',
        b"multipart/form-data; boundary=" + b"b" * 71,
        b"multipart/form-data; boundary=\xe7\x85\xa7",
        b"multipart/form-data; boundary=a; boundary=b",
        b"multipart/form-data; boundary=a b",
        b"text/plain; boundary=" + BOUNDARY,
        b"",
    ],
)
async def test_bad_body_content_type_is_422(client: httpx.AsyncClient, content_type: bytes) -> None:
    user = await sign_in(client)
    r = await _post(client, user, _body(b'form-data; name="file"; filename="a.png"'), content_type)
    assert r.status_code == 422, r.text
    assert "multipart" in r.json()["detail"]


async def test_quoted_boundary_is_read(client: httpx.AsyncClient) -> None:
    user = await sign_in(client)
    body = _body(b'form-data; name="file"; filename="a.png"')
    r = await _post(
        client, user, body, b'multipart/form-data; charset=utf-8; boundary="' + BOUNDARY + b'"'
    )
    assert r.status_code == 200, r.text


# --- whatever the bytes, never a 5xx ----------------------------------------------------------

_HEADER_ALPHABET = string.printable + "\"\\;=*%' 照片\x00\x7f"
_names = st.builds(
    str.__add__,
    st.one_of(
        st.text(),  # any code point, lone surrogates included (sent as invalid UTF-8)
        st.text(alphabet=_HEADER_ALPHABET, max_size=40),
        st.sampled_from(["照片", "a", "", "../../etc/passwd", "a\\b", "C:\\照片\\x"]),
    ),
    st.sampled_from([".png", ".PNG", "", ".gif"]),
)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


@st.composite
def _dispositions(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:  # anything at all
        return draw(st.binary(max_size=200))
    name = draw(
        st.sampled_from([b'"file"', b'"file"', b"file", b'"fi\\le"', b'"\xe6\x96\x87"', b""])
    )
    if kind == 1:  # a quoted file name of any text
        return b"form-data; name=" + name + b'; filename="' + _encode(draw(_names)) + b'"'
    if kind == 2:  # an RFC 5987 file name: any charset, any (mis)encoding
        charset = draw(st.sampled_from(["UTF-8", "utf-8", "ISO-8859-1", "KOI8-R", "", "x'y"]))
        encoded = draw(
            st.one_of(
                st.builds(quote, _names.map(lambda n: n.encode("utf-8", "replace"))),
                st.text(alphabet="%0123456789abcdefABCDEFZ.png'"),
                st.text(),
            )
        )
        language = draw(st.sampled_from(["", "zh", "en"]))
        return (
            b"form-data; name="
            + name
            + b"; filename*="
            + _encode(f"{charset}'{language}'{encoded}")
        )
    if kind == 3:  # pieces of headers glued in any order
        pieces = st.sampled_from(
            [
                b"form-data",
                b";",
                b" ",
                b"name=",
                b"filename=",
                b"filename*=",
                b'"',
                b"file",
                b"a.png",
                b"UTF-8''",
                b"%E7%85%A7",
                b"%",
                b"\\",
                b"=",
                b"\xff",
                b"\r\n",
                b"*",
            ]
        )
        return b"".join(draw(st.lists(pieces, max_size=20)))
    return b"form-data; name=" + name + b"; filename=" + _encode(draw(_names))


@st.composite
def _requests(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """`(content_type, body)`: mostly a well-formed body around a hostile Content-Disposition;
    sometimes a hostile boundary, or a body cut anywhere."""
    body = _body(draw(_dispositions()))
    boundary = BOUNDARY if draw(st.integers(0, 3)) else draw(st.binary(max_size=80))
    if not draw(st.integers(0, 3)):
        body = body[: draw(st.integers(0, len(body)))]
    return b"multipart/form-data; boundary=" + boundary, body


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=_requests())
async def test_no_multipart_header_makes_the_upload_fail_with_5xx(
    client: httpx.AsyncClient,
    runtime: Runtime,
    user_for_fuzzing: SignedIn,
    request: tuple[bytes, bytes],
) -> None:
    content_type, body = request
    r = await _post(client, user_for_fuzzing, body, content_type)
    event(f"status {r.status_code}")
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert isinstance(r.json()["detail"], str)
    assert _tmp_files(runtime) == []


@pytest.fixture
async def user_for_fuzzing(client: httpx.AsyncClient) -> SignedIn:
    return await sign_in(client)
