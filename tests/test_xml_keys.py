"""Keys holding characters XML 1.0 cannot carry (U+0001-U+001F but tab/LF/CR, U+FFFE,
U+FFFF): they are stored, and every XML reply that names them stays well-formed XML 1.0
(each reply here is parsed by a strict parser). With ``encoding-type=url`` a listing carries
them exactly; elsewhere such a key is written URL-encoded, and only that key (see
gateway.s3xml)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import quote, unquote

import pytest
from lxml import etree

from tests.support.gateway import InProcessGateway
from tests.support.raw_s3 import RawReply, send

NS = {"s3": "http://s3.amazonaws.com/doc/2006-03-01/"}
#: Characters S3 stores in keys but XML 1.0 cannot carry, plus ones it carries only escaped.
ODD = 'ctl\x01\x08\x0b\x0c\x1f\ufffe\uffff & <x> "q" \r\n\t end'
PLAIN = "plain key"


def wire(key: str) -> str:
    return quote(key.encode("utf-8"), safe="/")


def _texts(root: etree._Element, path: str) -> list[str]:
    return [node.text or "" for node in root.iterfind(path, NS)]


@pytest.fixture
def stored(s3: Any, bucket: str) -> str:
    """``bucket`` holding ODD and PLAIN (written by boto3)."""
    for key in (ODD, PLAIN):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_such_keys_are_stored_and_read_back(s3: Any, stored: str) -> None:
    assert s3.get_object(Bucket=stored, Key=ODD)["Body"].read() == ODD.encode()
    s3.head_object(Bucket=stored, Key=ODD)


LISTINGS = [
    ("list-type=2", "s3:Contents/s3:Key", "ListBucketResult"),
    ("", "s3:Contents/s3:Key", "ListBucketResult"),
    ("versions", "s3:Version/s3:Key", "ListVersionsResult"),
]


@pytest.mark.parametrize(("query", "path", "root_tag"), LISTINGS)
def test_listings_asked_for_url_encoding_are_exact(
    gateway: InProcessGateway, stored: str, query: str, path: str, root_tag: str
) -> None:
    reply = send(gateway, "GET", f"/{stored}", "&".join(filter(None, [query, "encoding-type=url"])))
    assert reply.status == 200, reply.body
    root = reply.xml()
    assert etree.QName(root).localname == root_tag
    assert root.findtext("s3:EncodingType", namespaces=NS) == "url"
    assert sorted(unquote(k) for k in _texts(root, path)) == sorted([ODD, PLAIN])


@pytest.mark.parametrize(("query", "path", "root_tag"), LISTINGS)
def test_listings_without_encoding_encode_only_such_keys(
    gateway: InProcessGateway, stored: str, query: str, path: str, root_tag: str
) -> None:
    """The page is well-formed (S3's &#x1; is not); the other keys stay exact."""
    reply = send(gateway, "GET", f"/{stored}", query)
    assert reply.status == 200, reply.body
    root = reply.xml()
    assert etree.QName(root).localname == root_tag
    assert root.find("s3:EncodingType", NS) is None
    assert sorted(_texts(root, path)) == sorted([quote(ODD, safe="/"), PLAIN])


def test_common_prefixes_and_markers(gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    for key in ("d\x01/a", "d\x01/b", "e f"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    v1 = send(gateway, "GET", f"/{bucket}", "delimiter=%2F&marker=%01&max-keys=1").xml()
    assert v1.findtext("s3:Marker", namespaces=NS) == "%01"
    assert _texts(v1, "s3:CommonPrefixes/s3:Prefix") == ["d%01/"]
    assert v1.findtext("s3:NextMarker", namespaces=NS) == "d%01/"
    v2 = send(gateway, "GET", f"/{bucket}", "list-type=2&prefix=d%01").xml()
    assert v2.findtext("s3:Prefix", namespaces=NS) == "d%01"
    assert _texts(v2, "s3:Contents/s3:Key") == ["d%01/a", "d%01/b"]
    plain = send(gateway, "GET", f"/{bucket}", "list-type=2&start-after=d%01%2Fb").xml()
    assert plain.findtext("s3:StartAfter", namespaces=NS) == "d%01/b"
    assert _texts(plain, "s3:Contents/s3:Key") == ["e f"]
    asked = send(gateway, "GET", f"/{bucket}", "delimiter=%2F&encoding-type=url").xml()
    assert [unquote(p) for p in _texts(asked, "s3:CommonPrefixes/s3:Prefix")] == ["d\x01/"]
    assert [unquote(k) for k in _texts(asked, "s3:Contents/s3:Key")] == ["e f"]


def test_a_page_without_such_keys_is_unchanged(
    gateway: InProcessGateway, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key=PLAIN, Body=b"x")
    root = send(gateway, "GET", f"/{bucket}", "list-type=2").xml()
    assert _texts(root, "s3:Contents/s3:Key") == [PLAIN]


def test_boto3_lists_them_exactly(s3: Any, stored: str) -> None:
    """boto3 asks for encoding-type=url and decodes: the keys come back exactly."""
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=stored)["Contents"]]
    assert sorted(keys) == sorted([ODD, PLAIN])
    versions = s3.list_object_versions(Bucket=stored)["Versions"]
    assert sorted(v["Key"] for v in versions) == sorted([ODD, PLAIN])


def test_multipart_replies(gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    """CreateMultipartUpload returns its id, ListMultipartUploads and ListParts answer while
    the upload is pending, CompleteMultipartUpload answers: all well-formed."""
    created = send(gateway, "POST", f"/{bucket}/{wire(ODD)}", "uploads=")
    assert created.status == 200, created.body
    root = created.xml()
    upload_id = root.findtext("s3:UploadId", namespaces=NS)
    assert upload_id
    assert unquote(root.findtext("s3:Key", namespaces=NS) or "") == ODD
    part = s3.upload_part(Bucket=bucket, Key=ODD, UploadId=upload_id, PartNumber=1, Body=b"p")
    for asked in ("", "encoding-type=url"):
        uploads = send(gateway, "GET", f"/{bucket}", "&".join(filter(None, ["uploads=", asked])))
        assert uploads.status == 200, uploads.body
        listed = uploads.xml()
        assert [unquote(k) for k in _texts(listed, "s3:Upload/s3:Key")] == [ODD]
    # boto3 does not ask for encoding-type=url here: it gets the key URL-encoded (S3's
    # reply would not parse at all), and exactly when it asks.
    pending = s3.list_multipart_uploads(Bucket=bucket)
    assert [u["Key"] for u in pending["Uploads"]] == [quote(ODD, safe="/")]
    asked_for = s3.list_multipart_uploads(Bucket=bucket, EncodingType="url")
    assert [unquote(u["Key"]) for u in asked_for["Uploads"]] == [ODD]
    parts = send(gateway, "GET", f"/{bucket}/{wire(ODD)}", f"uploadId={upload_id}")
    assert parts.status == 200, parts.body
    assert unquote(parts.xml().findtext("s3:Key", namespaces=NS) or "") == ODD
    body = (
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
        f"<ETag>{part['ETag']}</ETag></Part></CompleteMultipartUpload>"
    ).encode()
    done = send(gateway, "POST", f"/{bucket}/{wire(ODD)}", f"uploadId={upload_id}", body=body)
    assert done.status == 200, done.body
    assert unquote(done.xml().findtext("s3:Key", namespaces=NS) or "") == ODD
    assert s3.get_object(Bucket=bucket, Key=ODD)["Body"].read() == b"p"


def test_boto3_multipart_round_trip(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key=ODD)
    part = s3.upload_part(
        Bucket=bucket, Key=ODD, UploadId=upload["UploadId"], PartNumber=1, Body=b"x"
    )
    s3.list_parts(Bucket=bucket, Key=ODD, UploadId=upload["UploadId"])
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=ODD,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert s3.get_object(Bucket=bucket, Key=ODD)["Body"].read() == b"x"


def _error(reply: RawReply, status: int, code: str) -> etree._Element:
    assert (reply.status, reply.error_code()) == (status, code), reply.body
    return reply.xml()


def test_error_documents_naming_such_keys(gateway: InProcessGateway, bucket: str) -> None:
    missing = _error(send(gateway, "GET", f"/{bucket}/{wire(ODD)}"), 404, "NoSuchKey")
    assert unquote(missing.findtext("Key") or "") == ODD
    assert unquote(missing.findtext("Resource") or "") == f"/{bucket}/{ODD}"
    argument = _error(
        send(gateway, "GET", f"/{bucket}", "encoding-type=%01%EF%BF%BE"), 400, "InvalidArgument"
    )
    assert argument.findtext("ArgumentValue") == quote("\x01\ufffe", safe="/")


def test_copy_object(gateway: InProcessGateway, s3: Any, stored: str) -> None:
    copied = send(
        gateway,
        "PUT",
        f"/{stored}/{wire(ODD + ' copy')}",
        headers={"x-amz-copy-source": f"/{stored}/{wire(ODD)}"},
    )
    assert copied.status == 200, copied.body
    assert copied.xml().findtext("s3:ETag", namespaces=NS)
    assert s3.get_object(Bucket=stored, Key=ODD + " copy")["Body"].read() == ODD.encode()
    missing = send(
        gateway,
        "PUT",
        f"/{stored}/{wire(ODD + ' copy')}",
        headers={"x-amz-copy-source": f"/{stored}/{wire(ODD + ' missing')}"},
    )
    assert unquote(_error(missing, 404, "NoSuchKey").findtext("Key") or "") == ODD + " missing"
    s3.copy_object(Bucket=stored, Key=ODD + " 2", CopySource={"Bucket": stored, "Key": ODD})


def test_delete_objects_verbose(gateway: InProcessGateway, s3: Any, bucket: str) -> None:
    """Keys XML 1.0 carries only escaped (CR, &, <) come back exactly; a document naming a
    key it cannot carry is not XML: MalformedXML, as S3 answers."""
    keys = ["cr\rkey", 'amp & <lt> "q"', "tab\tnl\nkey"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    objects = "".join(f"<Object><Key>{_escape(k)}</Key></Object>" for k in keys)
    body = f"<Delete><Quiet>false</Quiet>{objects}</Delete>".encode()
    reply = send(gateway, "POST", f"/{bucket}", "delete=", body=body, headers=_md5(body))
    assert reply.status == 200, reply.body
    assert sorted(_texts(reply.xml(), "s3:Deleted/s3:Key")) == sorted(keys)
    for bad in (b"<Delete><Object><Key>a&#x1;</Key></Object></Delete>",):
        refused = send(gateway, "POST", f"/{bucket}", "delete=", body=bad, headers=_md5(bad))
        _error(refused, 400, "MalformedXML")


def _escape(key: str) -> str:
    return (
        key.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _md5(body: bytes) -> dict[str, str]:
    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
