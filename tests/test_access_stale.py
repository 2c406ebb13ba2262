"""policy.access_control while the catalog is down: the site settings last loaded are used
for up to ``stale_seconds`` past their freshness (stale-if-error); what was never loaded,
or is older than that, fails closed with the catalog's 503."""

from __future__ import annotations

import pytest

from core.errors import S3Error
from policy.access_control import AccessControl
from policy.bucket_access import BucketAccess, Grant, default_access


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Catalog:
    """Site settings that cannot be read while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.policy = (
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",'
            ' "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shop/*"}]}'
        )

    async def bucket_access(self, site: str) -> tuple[BucketAccess, str | None] | None:
        if self.down:
            raise S3Error("ServiceUnavailable", "The catalog database cannot be used.")
        return default_access("root"), self.policy

    async def object_acl(self, site: str, key: str) -> tuple[Grant, ...] | None:
        return None

    async def set_bucket_access(self, site: str, access: BucketAccess, policy: str | None) -> None:
        raise NotImplementedError

    async def remove_bucket_access(self, site: str) -> None:
        raise NotImplementedError

    async def set_object_acl(self, site: str, key: str, acl: tuple[Grant, ...] | None) -> None:
        raise NotImplementedError


@pytest.mark.anyio
async def test_known_sites_are_decided_from_their_last_settings_while_the_catalog_is_down() -> None:
    now = [0.0]
    catalog = Catalog()
    access = AccessControl(catalog, None, cache_seconds=2, stale_seconds=60, clock=lambda: now[0])
    loaded = await access.site("shop")
    catalog.down = True
    now[0] = 30.0  # past the 2 s freshness, within the stale window
    assert await access.site("shop") == loaded
    with pytest.raises(S3Error) as unknown:
        await access.site("docs")  # never loaded: cannot be decided
    assert unknown.value.status == 503
    now[0] = 62.5  # past freshness + the stale window
    with pytest.raises(S3Error):
        await access.site("shop")
    catalog.down = False
    assert await access.site("shop") == loaded
