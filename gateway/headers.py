"""HTTP header semantics shared by the object handlers: stored metadata, ranges, conditions."""

from __future__ import annotations

import base64
import email.policy
import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from core import checksums
from core.errors import S3Error
from core.numbers import saturating_decimal
from core.ranges import RangeSpec
from gateway.responses import http_date, quote_etag
from translators.base import STORED_HEADERS, ObjectInfo, WriteMetadata

META_PREFIX = "x-amz-meta-"
MAX_USER_METADATA_BYTES = 2048
_RANGE = re.compile(r"^[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*$")


def metadata_text(value: str) -> str:
    """A user-metadata value as the text it stands for. Header bytes arrive decoded as
    Latin-1: non-ASCII bytes that are UTF-8 (what most SDKs send) are read as UTF-8, other
    bytes stay Latin-1 text. ASCII values, RFC 2047 encoded words included, are kept as sent
    (S3 presents an ASCII value as it is)."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def metadata_header(value: str) -> str:
    """How a stored user-metadata value is sent in a GET/HEAD reply: as it is when ASCII,
    else as one RFC 2047 encoded word (``=?UTF-8?B?...?=``), as S3 does, since header
    bytes beyond ASCII have no agreed encoding (and no text beyond Latin-1 fits them)."""
    if value.isascii():
        return value
    return f"=?UTF-8?B?{base64.b64encode(value.encode()).decode('ascii')}?="


def check_write_options(headers: Mapping[str, str]) -> None:
    """Refuse the write options this gateway does not have, rather than ignore them: a
    storage class other than ``STANDARD`` (``InvalidStorageClass``; there is one class) and
    a website redirect (``NotImplemented``; no website hosting)."""
    storage_class = headers.get("x-amz-storage-class")
    if storage_class is not None and storage_class.strip() != "STANDARD":
        raise S3Error(
            "InvalidStorageClass",
            f"The storage class {storage_class.strip()!r} is not available: this gateway "
            "stores every object as STANDARD.",
            StorageClassRequested=storage_class.strip(),
        )
    if "x-amz-website-redirect-location" in headers:
        raise S3Error(
            "NotImplemented", "x-amz-website-redirect-location: website hosting is not implemented."
        )


def write_metadata(headers: Mapping[str, str]) -> WriteMetadata:
    """The stored headers and ``x-amz-meta-*`` pairs of a write (after
    :func:`check_write_options`); ``MetadataTooLarge`` past 2 KB (S3 counts the UTF-8 bytes of
    every user-metadata name and value). Values are read as :func:`metadata_text` says."""
    check_write_options(headers)
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    if "content-encoding" in stored:
        # aws-chunked describes the transfer, not the object: S3 drops it.
        codings = [c.strip() for c in stored["content-encoding"].split(",")]
        kept = ",".join(c for c in codings if c and c.lower() != "aws-chunked")
        if kept:
            stored["content-encoding"] = kept
        else:
            del stored["content-encoding"]
    user = {
        name[len(META_PREFIX) :]: metadata_text(value)
        for name, value in headers.items()
        if name.startswith(META_PREFIX)
    }
    size = sum(len(k.encode()) + len(v.encode()) for k, v in user.items())
    if size > MAX_USER_METADATA_BYTES:
        raise S3Error(
            "MetadataTooLarge",
            f"Your metadata headers are {size} bytes; the limit is {MAX_USER_METADATA_BYTES}.",
            Size=str(size),
            MaxSizeAllowed=str(MAX_USER_METADATA_BYTES),
        )
    return WriteMetadata(stored, user)


def object_headers(info: ObjectInfo, *, with_checksums: bool) -> list[tuple[str, str]]:
    """The headers of a GET/HEAD reply describing ``info`` (not Content-Length/Range)."""
    result = [
        ("ETag", quote_etag(info.etag)),
        ("Last-Modified", http_date(info.last_modified)),
        ("Accept-Ranges", "bytes"),
        ("Content-Type", info.content_type),
    ]
    result.extend(
        (_TITLE[name], value)
        for name, value in info.headers.items()
        if name != "content-type" and name in _TITLE
    )
    result.extend(
        (META_PREFIX + name, metadata_header(value)) for name, value in info.user_metadata.items()
    )
    if info.parts:
        result.append(("x-amz-mp-parts-count", str(len(info.parts))))
    if info.version_id is not None:
        result.append(("x-amz-version-id", info.version_id))
    if with_checksums and info.checksums:
        result.extend(
            (checksums.header_name(algorithm), value) for algorithm, value in info.checksums.items()
        )
        if info.checksum_type:
            result.append(("x-amz-checksum-type", info.checksum_type))
    return result


_TITLE = {name: "-".join(p.capitalize() for p in name.split("-")) for name in STORED_HEADERS}

#: GetObject's ``response-*`` query parameters and the header each overrides.
RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def apply_overrides(
    headers: list[tuple[str, str]], query: Mapping[str, str]
) -> list[tuple[str, str]]:
    """``headers`` with the ``response-*`` overrides of ``query`` laid over them, each
    checked by :func:`override_value`."""
    overrides = {
        header: override_value(param, query[param])
        for param, header in RESPONSE_OVERRIDES.items()
        if param in query
    }
    if not overrides:
        return headers
    kept = [(n, v) for n, v in headers if n not in overrides]
    return kept + list(overrides.items())


#: Characters no header value may hold (RFC 9110 field-value): controls other than HTAB.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: RFC 8187 attr-char besides letters and digits, left unescaped in ``name*=`` values.
_ATTR_CHAR_PUNCTUATION = "!#$&+-.^_`|~"


def override_value(param: str, value: str) -> str:
    """The header value a ``response-*`` parameter asks for.

    A control character (CR and LF included: they would split the reply) is refused with
    ``InvalidArgument``. HTTP header values are bytes, so text beyond Latin-1 cannot be sent
    as it is: a ``response-content-disposition`` holding non-ASCII text is rewritten as RFC
    6266 asks, each non-ASCII parameter as ``name*=UTF-8''<percent-encoded>`` (browsers
    decode it exactly), with an ASCII ``filename`` fallback; other headers carry no such
    text (types, languages, dates, codings), so non-Latin-1 text there is refused.
    """
    if _CONTROL.search(value):
        raise _bad_override(param, value, "must not hold control characters")
    if param == "response-content-disposition" and not value.isascii():
        return _rfc6266(param, value)
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise _bad_override(param, value, "must be Latin-1 text") from None
    return value


def _bad_override(param: str, value: str, why: str) -> S3Error:
    return S3Error(
        "InvalidArgument",
        f"The {param} value {why}.",
        ArgumentName=param,
        ArgumentValue=value,
    )


def _rfc6266(param: str, value: str) -> str:
    """A Content-Disposition with non-ASCII parameter values in RFC 8187 form."""
    parsed = email.policy.default.header_factory("content-disposition", value)
    disposition = str(parsed.content_disposition or "")
    if (
        parsed.defects
        or not _TOKEN.fullmatch(disposition)
        # RFC 8187 values decode to any text: a control character must not come back out.
        or not all(_TOKEN.fullmatch(n) and not _CONTROL.search(t) for n, t in parsed.params.items())
    ):
        raise _bad_override(
            param,
            value,
            "is not a Content-Disposition the gateway can encode; send non-ASCII names as "
            "filename*=UTF-8''<percent-encoded> (RFC 6266)",
        )
    parts = [disposition]
    for name, text in parsed.params.items():
        if text.isascii():
            parts.append(f"{name}={_quoted(text)}")
            continue
        if name == "filename":
            fallback = "".join(c if c.isascii() else "_" for c in text)
            parts.append(f"filename={_quoted(fallback)}")
        encoded = quote(text.encode("utf-8", "surrogatepass"), safe=_ATTR_CHAR_PUNCTUATION)
        parts.append(f"{name}*=UTF-8''{encoded}")
    return "; ".join(parts)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _quoted(text: str) -> str:
    """``text`` as an RFC 9110 quoted-string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def parse_range(value: str | None) -> RangeSpec | None:
    """A single ``bytes=`` range; None when absent or not one valid range (S3 then sends the
    whole object, as RFC 9110 allows). Positions are ASCII digits of any length: one past
    any object's size reads as "beyond the end" (a last position is then clamped, a first
    position makes the range unsatisfiable: 416), never as malformed."""
    if not value:
        return None
    match = _RANGE.match(value)
    if match is None:
        return None
    first_text, last_text = match.group(1), match.group(2)
    if not first_text and not last_text:
        return None
    last = saturating_decimal(last_text) if last_text else None
    if not first_text:
        return RangeSpec(None, last)
    first = saturating_decimal(first_text)
    if last is not None and last < first:
        return None
    return RangeSpec(first, last)


def parse_http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _etag_matches(condition: str, etag: str) -> bool:
    for candidate in condition.split(","):
        token = candidate.strip()
        if token.startswith("W/"):
            token = token[2:]
        if token == "*" or token.strip('"') == etag:
            return True
    return False


def check_preconditions(
    headers: Mapping[str, str], info: ObjectInfo, prefix: str = "if-"
) -> int | None:
    """Evaluate If-Match / If-None-Match / If-(Un)Modified-Since (RFC 9110 order, as S3).

    Returns 304 when the reply is Not Modified, 412 when a precondition failed, else None.
    ``prefix`` is ``x-amz-copy-source-if-`` for the copy-source conditions.
    """
    modified = info.last_modified.replace(microsecond=0)
    if_match = headers.get(prefix + "match")
    if if_match is not None:
        if not _etag_matches(if_match, info.etag):
            return 412
    else:
        since = parse_http_date(headers.get(prefix + "unmodified-since"))
        if since is not None and modified > since:
            return 412
    if_none_match = headers.get(prefix + "none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, info.etag):
            return 304
    else:
        since = parse_http_date(headers.get(prefix + "modified-since"))
        if since is not None and modified <= since:
            return 304
    return None
