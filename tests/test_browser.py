"""A real browser against a real gateway: headless Chromium loads a page from another origin
(a tiny ``http.server`` on its own port), uploads a file through a presigned POST form
(``fetch`` with ``FormData``) and reads it back with ``fetch`` through a presigned URL. Both
replies are readable only because the bucket's CORS rule allows the page's origin (the read
sends ``Cache-Control``, so it is preflighted too); the same read of a bucket without CORS
rules fails in the browser. The page reports what it saw to its own server.

Chromium is driven as a plain process (no WebDriver, no DevTools client): the page does the
work and posts its result, and the test stops the browser once it has it. ``scripts/test``
installs Debian's ``chromium``; without it this test fails under CI=true, else is skipped.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import make_s3_client
from tests.support.servers import GatewayServer, free_port, require_tool

PAGE = """<!doctype html>
<html><body><p id="state">running</p><script>
const setup = __SETUP__;
function base64(bytes) {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}
async function run() {
  const result = {};
  const data = Uint8Array.from(atob(setup.data), c => c.charCodeAt(0));
  const form = new FormData();
  for (const [name, value] of Object.entries(setup.form.fields)) form.append(name, value);
  form.append("file", new Blob([data], {type: "application/octet-stream"}), "photo.bin");
  try {
    const uploaded = await fetch(setup.form.url, {method: "POST", body: form});
    result.upload_status = uploaded.status;
    result.upload_body = await uploaded.text();
    result.upload_etag = uploaded.headers.get("ETag");
  } catch (error) {
    result.upload_error = String(error);
  }
  try {
    const read = await fetch(setup.read_url, {headers: {"Cache-Control": "no-cache"}});
    result.read_status = read.status;
    result.read_data = base64(new Uint8Array(await read.arrayBuffer()));
  } catch (error) {
    result.read_error = String(error);
  }
  try {
    await fetch(setup.blocked_url);
    result.blocked = "readable";
  } catch (error) {
    result.blocked = "refused";
  }
  return result;
}
run().catch(error => ({fatal: String(error)})).then(result =>
  fetch("/result", {method: "POST", body: JSON.stringify(result)}));
</script></body></html>
"""


class _Page:
    """The other origin: serves the page and receives its report."""

    def __init__(self, html: str) -> None:
        self.html = html.encode()
        self.result: dict[str, Any] | None = None
        self.reported = threading.Event()


@contextmanager
def page_server(page: _Page) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page.html)))
            self.end_headers()
            self.wfile.write(page.html)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            page.result = json.loads(self.rfile.read(length))
            page.reported.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def headless_chromium(url: str, profile: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Chromium showing ``url`` until the context exits (then stopped and reaped); what it
    prints goes to ``log``."""
    binary = require_tool("chromium")
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # tests may run as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                f"--user-data-dir={profile}",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=output,
            env={**os.environ, "HOME": str(profile)},
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_browser_uploads_with_a_post_form_and_reads_back_through_cors(
    process_gateway: GatewayServer, tmp_path: Path
) -> None:
    s3 = make_s3_client(process_gateway, signature_version="s3v4")
    site, closed = "browser-site", "browser-closed"
    for bucket in (site, closed):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=closed, Key="secret.txt", Body=b"no cors here")
    data = os.urandom(3000)
    page = _Page("")
    with page_server(page) as origin:
        s3.put_bucket_cors(
            Bucket=site,
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": [origin],
                        "AllowedMethods": ["GET", "POST"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": ["ETag"],
                        "MaxAgeSeconds": 60,
                    }
                ]
            },
        )
        form = s3.generate_presigned_post(
            site,
            "uploads/${filename}",
            Fields={"success_action_status": "201"},
            Conditions=[
                ["starts-with", "$key", "uploads/"],
                {"success_action_status": "201"},
                ["content-length-range", 1, 1024 * 1024],
            ],
        )
        setup = {
            "form": form,
            "data": base64.b64encode(data).decode(),
            "read_url": s3.generate_presigned_url(
                "get_object", Params={"Bucket": site, "Key": "uploads/photo.bin"}
            ),
            "blocked_url": s3.generate_presigned_url(
                "get_object", Params={"Bucket": closed, "Key": "secret.txt"}
            ),
        }
        page.html = PAGE.replace("__SETUP__", json.dumps(setup)).encode()
        log = tmp_path / "chromium.log"
        with headless_chromium(origin + "/", tmp_path / "profile", log):
            reported = page.reported.wait(timeout=90)
        if not reported:
            pytest.fail(f"the page never reported; chromium said: {log.read_text()[-3000:]}")
    result = page.result
    assert result is not None
    assert result.get("upload_status") == 201, result
    assert "<Key>uploads/photo.bin</Key>" in result["upload_body"]
    assert result["upload_etag"] == s3.head_object(Bucket=site, Key="uploads/photo.bin")["ETag"]
    assert result.get("read_status") == 200, result
    assert base64.b64decode(result["read_data"]) == data
    assert result["blocked"] == "refused"
    stored = s3.get_object(Bucket=site, Key="uploads/photo.bin")["Body"].read()
    assert stored == data
