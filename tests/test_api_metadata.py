"""User metadata beyond ASCII, as each kind of client sends it, authenticates and comes back
as S3 returns it; a request with both Date and x-amz-date is judged by x-amz-date (SigV4).

What clients send: boto3 refuses non-ASCII metadata (ParamValidationError), so its users
send RFC 2047 encoded words, which are ASCII and come back as sent; botocore sends other
headers' text as UTF-8 bytes, as Go, Java and JavaScript SDKs send (and sign) metadata.
S3 returns a non-ASCII metadata value as an RFC 2047 encoded word.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from typing import Any

import httpx
import pytest
from botocore.exceptions import ParamValidationError
from lxml import etree

from tests.support.clients import make_s3_client
from tests.support.gateway import InProcessGateway
from tests.support.signing import Signer


@pytest.fixture
def http(gateway: InProcessGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.endpoint) as client:
        yield client


def decoded(value: str) -> str:
    return str(make_header(decode_header(value)))


def encoded_word(text: str) -> str:
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


def test_utf8_metadata_as_go_and_js_sdks_send_it(
    http: httpx.Client, gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    """UTF-8 header bytes, signed as those bytes: the signature holds, and the value is
    stored as text and returned RFC 2047 encoded (S3's form)."""
    city = "Zürich · 日本"
    body = b"x"
    headers, *_ = Signer(gateway).sign(
        "PUT",
        f"/{bucket}/utf8",
        hashlib.sha256(body).hexdigest(),
        {"x-amz-meta-city": city},
        datetime.now(UTC),
    )
    raw_headers = {name.encode(): value.encode("utf-8") for name, value in headers.items()}
    response = http.put(f"/{bucket}/utf8", content=body, headers=raw_headers)
    assert response.status_code == 200, response.text
    head = s3.head_object(Bucket=bucket, Key="utf8")
    assert head["Metadata"] == {"city": encoded_word(city)}
    assert decoded(head["Metadata"]["city"]) == city
    got = http.get(
        f"/{bucket}/utf8",
        headers=Signer(gateway).sign(
            "GET", f"/{bucket}/utf8", hashlib.sha256(b"").hexdigest(), {}, datetime.now(UTC)
        )[0],
    )
    assert got.headers["x-amz-meta-city"] == encoded_word(city)

    # The same bytes with the value altered after signing are refused.
    raw_headers[b"x-amz-meta-city"] = "Zürich · 日本!".encode()
    refused = http.put(f"/{bucket}/utf8", content=body, headers=raw_headers)
    assert refused.status_code == 403
    assert etree.fromstring(refused.content).findtext("Code") == "SignatureDoesNotMatch"


def test_boto3_sends_rfc2047_words_and_gets_them_back(s3: Any, bucket: str) -> None:
    with pytest.raises(ParamValidationError):
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", Metadata={"a": "日本"})
    word = encoded_word("日本")
    s3.put_object(Bucket=bucket, Key="rfc2047", Body=b"x", Metadata={"a": word})
    assert s3.head_object(Bucket=bucket, Key="rfc2047")["Metadata"] == {"a": word}
    got = s3.get_object(Bucket=bucket, Key="rfc2047")
    assert got["Metadata"] == {"a": word}
    assert decoded(got["Metadata"]["a"]) == "日本"


def test_botocore_utf8_headers(s3: Any, bucket: str) -> None:
    """botocore refuses non-ASCII metadata whatever its settings, but sends other headers'
    text as UTF-8 bytes, signed as such: accepted, stored and sent back as those bytes
    (which http.client reads as Latin-1)."""
    disposition = 'attachment; filename="café.txt"'
    s3.put_object(Bucket=bucket, Key="utf8", Body=b"x", ContentDisposition=disposition)
    returned = s3.head_object(Bucket=bucket, Key="utf8")["ContentDisposition"]
    assert returned.encode("latin-1").decode("utf-8") == disposition


def test_form_upload_metadata_beyond_latin1(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    """A POST form's fields are UTF-8 text: stored as text, sent back RFC 2047 encoded
    (text beyond Latin-1 cannot be a header value as it is)."""
    signer = make_s3_client(gateway, signature_version="s3v4")
    form = signer.generate_presigned_post(
        bucket,
        "form.txt",
        Fields={"x-amz-meta-city": "日本"},
        Conditions=[{"x-amz-meta-city": "日本"}],
    )
    fields = {**form["fields"], "x-amz-meta-city": "日本"}
    answer = httpx.post(form["url"], data=fields, files={"file": ("f.txt", b"x", "text/plain")})
    assert answer.status_code == 204, answer.text
    assert s3.head_object(Bucket=bucket, Key="form.txt")["Metadata"] == {
        "city": encoded_word("日本")
    }


@pytest.mark.parametrize(("date_age", "amz_date_age", "status"), [(2, 0, 200), (0, 2, 403)])
def test_x_amz_date_wins_over_date(
    http: httpx.Client,
    gateway: InProcessGateway,
    bucket: str,
    date_age: int,
    amz_date_age: int,
    status: int,
) -> None:
    """SigV4 takes the request time from x-amz-date when both are sent (a stale Date is
    ignored; a stale x-amz-date is RequestTimeTooSkewed however fresh Date is)."""
    now = datetime.now(UTC)
    stale = now - timedelta(hours=amz_date_age)
    date = (now - timedelta(hours=date_age)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    headers, *_ = Signer(gateway).sign(
        "GET", f"/{bucket}", hashlib.sha256(b"").hexdigest(), {"date": date}, stale
    )
    response = http.get(f"/{bucket}", headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert etree.fromstring(response.content).findtext("Code") == "RequestTimeTooSkewed"
