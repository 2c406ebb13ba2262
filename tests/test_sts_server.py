"""STS against a real gateway process configured from the environment (PWG_OIDC_ISSUERS,
PWG_MASTER_KEY): a CI job's token exchanged and used, and, since sessions are stateless, the
same temporary credentials accepted by a second process sharing the master key."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from cryptography.fernet import Fernet

from tests.support.clients import make_s3_client
from tests.support.oidc_issuer import local_issuer
from tests.support.servers import running_gateway

#: Needs a real server (see tests/conftest.py).
pytestmark = pytest.mark.server


def test_sessions_from_one_process_work_on_another(tmp_path: Path) -> None:
    with local_issuer() as issuer:
        env = {
            "PWG_OIDC_ISSUERS": json.dumps([issuer.table(default_role="writer")]),
            "PWG_MASTER_KEY": Fernet.generate_key().decode(),
            # Two replicas: one store, one catalog.
            "PWG_BACKEND": f"file://{tmp_path / 'storage'}",
            "PWG_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.sqlite3'}",
        }
        with running_gateway(tmp_path / "one", env=env) as one:
            make_s3_client(one).create_bucket(Bucket="docs")
            sts = boto3.client(
                "sts",
                endpoint_url=one.endpoint,
                region_name=one.region,
                aws_access_key_id="unused",
                aws_secret_access_key="unused",
            )
            credentials = sts.assume_role_with_web_identity(
                RoleArn="arn:aws:iam::000000000000:role/ci",
                RoleSessionName="build-1",
                WebIdentityToken=issuer.token(sites=["docs"]),
            )["Credentials"]
            with running_gateway(tmp_path / "two", env=env) as two:
                for server in (one, two):
                    s3 = boto3.client(
                        "s3",
                        endpoint_url=server.endpoint,
                        region_name=server.region,
                        aws_access_key_id=credentials["AccessKeyId"],
                        aws_secret_access_key=credentials["SecretAccessKey"],
                        aws_session_token=credentials["SessionToken"],
                        config=Config(s3={"addressing_style": "path"}),
                    )
                    key = f"from-{server.port}.html"
                    s3.put_object(Bucket="docs", Key=key, Body=b"ok")
                    assert s3.get_object(Bucket="docs", Key=key)["Body"].read() == b"ok"
