"""GetObject's ``response-*`` overrides: a value that cannot be an HTTP header value is a 400
InvalidArgument (never a dropped connection or a 500); a Content-Disposition naming a file
in non-ASCII text is sent in RFC 6266 / RFC 8187 form."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.support.gateway import InProcessGateway
from tests.support.raw_s3 import q, send


@pytest.fixture
def obj(s3: Any, bucket: str) -> str:
    s3.put_object(Bucket=bucket, Key="o", Body=b"body")
    return f"/{bucket}/o"


PARAMETERS = [
    "response-content-type",
    "response-content-language",
    "response-expires",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
]


@pytest.mark.parametrize("parameter", PARAMETERS)
@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "nul\x00", "bell\x07"])
def test_control_characters_are_refused(
    gateway: InProcessGateway, obj: str, parameter: str, value: str
) -> None:
    for method in ("GET", "HEAD"):
        reply = send(gateway, method, obj, f"{parameter}={q(value)}")
        assert reply.status == 400
        assert "x-injected" not in reply.headers
    error = send(gateway, "GET", obj, f"{parameter}={q(value)}")
    assert error.error_code() == "InvalidArgument"
    assert error.xml().findtext("ArgumentName") == parameter


@pytest.mark.parametrize("parameter", [p for p in PARAMETERS if "disposition" not in p])
def test_text_beyond_latin1_is_refused(gateway: InProcessGateway, obj: str, parameter: str) -> None:
    reply = send(gateway, "GET", obj, f"{parameter}={q('text/日本')}")
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")


def test_latin1_and_ascii_values_pass(gateway: InProcessGateway, obj: str) -> None:
    values = {
        "response-content-type": "text/plain; charset=utf-8",
        "response-cache-control": "no-cache\t, max-age=0",
        "response-content-language": "fr-CH é",
    }
    query = "&".join(f"{name}={q(value)}" for name, value in values.items())
    reply = send(gateway, "GET", obj, query)
    assert (reply.status, reply.body) == (200, b"body")
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache\t, max-age=0"
    assert reply.headers["content-language"].encode("latin-1") == "fr-CH é".encode("latin-1")


def test_a_unicode_filename_is_sent_in_rfc6266_form(
    gateway: InProcessGateway, s3: Any, bucket: str, obj: str
) -> None:
    name = 'résumé 日本 "q".pdf'
    disposition = f'attachment; filename="{name.replace(chr(34), chr(92) + chr(34))}"'
    url = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "o", "ResponseContentDisposition": disposition},
    )
    reply = httpx.get(url, timeout=30)
    assert (reply.status_code, reply.content) == (200, b"body")
    header = reply.headers["content-disposition"]
    assert header.isascii()
    assert header.startswith('attachment; filename="r_sum_ __ \\"q\\".pdf"; ')
    encoded = header.split("filename*=UTF-8''", 1)[1]
    assert unquote(encoded) == name


def test_an_unencodable_disposition_is_refused(gateway: InProcessGateway, obj: str) -> None:
    reply = send(gateway, "GET", obj, f"response-content-disposition={q('日本')}")
    assert (reply.status, reply.error_code()) == (400, "InvalidArgument")
