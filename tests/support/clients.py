"""S3 clients for a gateway under test."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from tests.support.gateway import GatewayEndpoint


def make_s3_client(server: GatewayEndpoint, **config: Any) -> Any:
    """boto3 at its defaults (checksums in aws-chunked trailers), path-style addressing."""
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
        verify=str(server.cafile) if server.cafile else None,
    )
