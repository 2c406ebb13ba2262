"""OIDC tokens: a local issuer serves its JWKS over real HTTP; tokens signed with PyJWT are
accepted or refused with the error naming the failed check."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import jwt
import pytest

from policy.oidc import (
    BadSignature,
    IssuerUnavailable,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    TokenVerifier,
    UnknownIssuer,
    UnknownKeyId,
    WrongAudience,
    looks_like_jwt,
)
from policy.oidc_config import OidcIssuer, parse_issuer, parse_issuers
from policy.principals import Role
from tests.support.clock import Clock
from tests.support.oidc_issuer import AUDIENCE, LocalIssuer, local_issuer, new_key


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with local_issuer() as served:
        yield served


@pytest.fixture
def clock() -> Clock:
    return Clock()


def verifier_for(issuer: LocalIssuer, clock: Clock, **settings: Any) -> TokenVerifier:
    return TokenVerifier([parse_issuer(issuer.table(**settings))], clock=clock)


@pytest.mark.anyio
async def test_a_valid_token_is_its_principal_with_site_roles(
    issuer: LocalIssuer, clock: Clock
) -> None:
    verifier = verifier_for(issuer, clock)
    principal = await verifier.verify(issuer.token(sites=["docs", "blog"]))
    assert principal.name == "oidc:ci-job"
    assert principal.kind == "session"
    assert dict(principal.site_roles) == {"docs": Role.reader, "blog": Role.reader}
    assert principal.session_policy is None
    # The key set was found by discovery, once, and is cached.
    await verifier.verify(issuer.token())
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


@pytest.mark.anyio
@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
async def test_ec_and_edwards_keys(algorithm: str, clock: Clock) -> None:
    with local_issuer(new_key(algorithm)) as issuer:
        principal = await verifier_for(issuer, clock).verify(issuer.token())
    assert principal.name == "oidc:ci-job"


@pytest.mark.anyio
async def test_claims_map_sites_to_roles(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(
        issuer, clock, principal_claim="repository", roles_claim="role", name_prefix="gh:"
    )
    mapped = await verifier.verify(
        issuer.token(repository="org/site", sites={"docs": "writer", "blog": "owner"})
    )
    assert mapped.name == "gh:org/site"
    assert dict(mapped.site_roles) == {"docs": Role.writer, "blog": Role.owner}
    listed = await verifier.verify(
        issuer.token(repository="org/site", sites=["docs"], role="deployer")
    )
    assert dict(listed.site_roles) == {"docs": Role.deployer}
    nothing = await verifier.verify(issuer.token(repository="org/site", sites=[]))
    assert dict(nothing.site_roles) == {}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "claims",
    [
        {"sites": {"docs": "admin"}},  # unknown role
        {"sites": ["docs"], "role": "superuser"},
        {"sites": "docs"},  # neither list nor mapping
        {"sites": [""]},
        {"sites": [7]},
        # Names the role policy would read as patterns over other sites.
        {"sites": ["*"]},
        {"sites": {"doc*": "writer"}},
        {"sites": ["d?cs"]},
        {"sites": ["${aws:username}"]},
        {"sites": ["Docs"]},
        {"sites": ["docs/../blog"]},
        {"sub": ""},
        {"sub": 42},
    ],
)
async def test_bad_claims_are_refused(
    issuer: LocalIssuer, clock: Clock, claims: dict[str, Any]
) -> None:
    verifier = verifier_for(issuer, clock, roles_claim="role")
    with pytest.raises(MalformedToken):
        await verifier.verify(issuer.token(**claims))


@pytest.mark.anyio
async def test_rotation_refreshes_on_an_unknown_kid(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    old_key = issuer.keys[0]
    await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 1
    new = new_key()
    issuer.rotate(new)
    clock.now += 31  # past jwks_min_refresh_seconds (30)
    principal = await verifier.verify(issuer.token(new))
    assert principal.name == "oidc:ci-job"
    assert issuer.jwks_fetches == 2
    # The old key was withdrawn: its tokens now fail, without another fetch so soon.
    with pytest.raises(UnknownKeyId):
        await verifier.verify(issuer.token(old_key))
    assert issuer.jwks_fetches == 2


@pytest.mark.anyio
async def test_a_new_kid_right_after_a_fetch_waits_for_the_refresh_interval(
    issuer: LocalIssuer, clock: Clock
) -> None:
    verifier = verifier_for(issuer, clock)
    await verifier.verify(issuer.token())
    new = new_key()
    issuer.keys.append(new)
    with pytest.raises(UnknownKeyId):
        await verifier.verify(issuer.token(new))
    clock.now += 30
    await verifier.verify(issuer.token(new))
    assert issuer.jwks_fetches == 2


@pytest.mark.anyio
async def test_the_cache_expires(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock, jwks_cache_seconds=120)
    await verifier.verify(issuer.token())
    clock.now += 119
    await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 1
    clock.now += 1
    await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 2


@pytest.mark.anyio
async def test_a_kid_spray_costs_at_most_one_fetch_per_interval(
    issuer: LocalIssuer, clock: Clock
) -> None:
    verifier = verifier_for(issuer, clock)
    await verifier.verify(issuer.token())
    sprayed = [issuer.token(headers={"kid": uuid.uuid4().hex}) for _ in range(50)]
    for token in sprayed:
        with pytest.raises(UnknownKeyId):
            await verifier.verify(token)
    assert issuer.jwks_fetches == 1
    clock.now += 31
    for token in sprayed:
        with pytest.raises(UnknownKeyId):
            await verifier.verify(token)
    assert issuer.jwks_fetches == 2


@pytest.mark.anyio
async def test_expiry_and_not_before_with_leeway(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock, leeway_seconds=60)
    now = int(time.time())
    with pytest.raises(TokenExpired):
        await verifier.verify(issuer.token(exp=now - 120))
    await verifier.verify(issuer.token(exp=now - 30))  # inside the leeway
    with pytest.raises(TokenNotYetValid):
        await verifier.verify(issuer.token(nbf=now + 600))
    await verifier.verify(issuer.token(nbf=now + 30))
    strict = verifier_for(issuer, clock, leeway_seconds=0)
    with pytest.raises(TokenExpired):
        await strict.verify(issuer.token(exp=now - 2))


@pytest.mark.anyio
async def test_audience(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    with pytest.raises(WrongAudience):
        await verifier.verify(issuer.token(aud="someone-else"))
    await verifier.verify(issuer.token(aud=["someone-else", AUDIENCE]))
    with pytest.raises(MalformedToken):  # aud is required
        await verifier.verify(issuer.token(extra={"aud": None}))


@pytest.mark.anyio
async def test_unknown_issuer(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    with pytest.raises(UnknownIssuer):
        await verifier.verify(issuer.token(iss="https://evil.example"))
    assert issuer.hits == {}


@pytest.mark.anyio
async def test_bad_signatures(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    impostor = new_key(kid=issuer.keys[0].kid)  # same kid, another key
    with pytest.raises(BadSignature):
        await verifier.verify(issuer.token(impostor))
    header, _, signature = issuer.token().split(".")
    other_payload = issuer.token(sub="root").split(".")[1]
    with pytest.raises(BadSignature):
        await verifier.verify(f"{header}.{other_payload}.{signature}")


@pytest.mark.anyio
async def test_symmetric_and_unsigned_tokens_are_refused(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    claims = {"iss": issuer.url, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60}
    kid = issuer.keys[0].kid
    hs256 = jwt.encode(claims, "a-shared-secret-of-32-bytes-long!", "HS256", {"kid": kid})
    with pytest.raises(MalformedToken):
        await verifier.verify(hs256)
    unsigned = jwt.encode(claims, "", "none", {"kid": kid})
    with pytest.raises(MalformedToken):
        await verifier.verify(unsigned)
    with pytest.raises(MalformedToken):  # "none" with a fake signature segment
        await verifier.verify(unsigned + "c2ln")
    # An algorithm the issuer does not allow, though asymmetric.
    es_only = verifier_for(issuer, clock, algorithms=["ES256"])
    with pytest.raises(MalformedToken):
        await es_only.verify(issuer.token())


@pytest.mark.anyio
@pytest.mark.parametrize("token", ["", "abc", "a.b", "a.b.c.d", "e30.e30.e30", "ey!.ey.ey"])
async def test_malformed_tokens(issuer: LocalIssuer, clock: Clock, token: str) -> None:
    with pytest.raises(MalformedToken):
        await verifier_for(issuer, clock).verify(token)


@pytest.mark.anyio
async def test_an_unreachable_issuer(clock: Clock) -> None:
    with local_issuer() as issuer:
        token = issuer.token()
        table = issuer.table()
    verifier = TokenVerifier([parse_issuer(table)], clock=clock)
    with pytest.raises(IssuerUnavailable):
        await verifier.verify(token)


@pytest.mark.anyio
async def test_an_issuer_down_after_a_fetch_keeps_the_cached_keys(
    issuer: LocalIssuer, clock: Clock
) -> None:
    verifier = verifier_for(issuer, clock, jwks_cache_seconds=60)
    await verifier.verify(issuer.token())
    issuer.down = True
    clock.now += 61  # stale: a refetch is tried, fails, and the keys held keep serving
    await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 2
    with pytest.raises(UnknownKeyId):
        await verifier.verify(issuer.token(new_key()))
    issuer.down = False
    clock.now += 30
    await verifier.verify(issuer.token())
    assert issuer.jwks_fetches == 3


@pytest.mark.anyio
async def test_a_discovery_document_of_another_issuer_is_refused(
    issuer: LocalIssuer, clock: Clock
) -> None:
    issuer.discovery_issuer = "https://impostor.example"
    with pytest.raises(IssuerUnavailable):
        await verifier_for(issuer, clock).verify(issuer.token())
    assert issuer.jwks_fetches == 0


@pytest.mark.anyio
async def test_a_discovered_plain_http_jwks_uri_elsewhere_is_refused(
    issuer: LocalIssuer, clock: Clock
) -> None:
    issuer.discovery_jwks_uri = "http://keys.example/jwks"
    with pytest.raises(IssuerUnavailable):
        await verifier_for(issuer, clock).verify(issuer.token())


@pytest.mark.anyio
async def test_concurrent_verifications_share_one_fetch(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock)
    tokens = [issuer.token(sub=f"job-{n}") for n in range(20)]
    names: list[str] = []

    async def verify(token: str) -> None:
        names.append((await verifier.verify(token)).name)

    async with anyio.create_task_group() as group:
        for token in tokens:
            group.start_soon(verify, token)
    assert sorted(names) == sorted(f"oidc:job-{n}" for n in range(20))
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


@pytest.mark.anyio
async def test_a_configured_jwks_uri_skips_discovery(issuer: LocalIssuer, clock: Clock) -> None:
    verifier = verifier_for(issuer, clock, jwks_uri=issuer.url + "/jwks")
    await verifier.verify(issuer.token())
    assert issuer.hits == {"/jwks": 1}


def test_looks_like_jwt() -> None:
    assert looks_like_jwt("eyJh.eyJz.c2ln")
    assert not looks_like_jwt("pwg_abc_def")
    assert not looks_like_jwt("a.b.")


_IDP = "https://idp.example"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"issuer": _IDP, "audiences": []}, "at least one audience"),
        ({"issuer": "idp.example", "audiences": ["a"]}, "not an https URL"),
        ({"issuer": "http://idp.example", "audiences": ["a"]}, "loopback issuers only"),
        ({"issuer": _IDP, "audiences": ["a"], "jwks_uri": "http://idp.example/k"}, "https"),
        ({"issuer": _IDP}, "needs an issuer URL and its audiences"),
        ({"issuer": _IDP, "audiences": ["a"], "algorithms": ["HS256"]}, "not allowed"),
        ({"issuer": _IDP, "audiences": ["a"], "algorithms": ["none"]}, "not allowed"),
        ({"issuer": _IDP, "audiences": ["a"], "leeway_seconds": 301}, "leeway_seconds"),
        ({"issuer": _IDP, "audiences": ["a"], "leeway_seconds": -1}, "leeway_seconds"),
        ({"issuer": _IDP, "audiences": ["a"], "default_role": "admin"}, "admin"),
        ({"issuer": _IDP, "audiences": ["a"], "colour": "blue"}, "unknown OIDC issuer setting"),
        ({"issuer": _IDP, "audiences": ["a"], "sites_claim": ""}, "must not be empty"),
        ({"issuer": _IDP, "audiences": ["a"], "sites_claim": 3}, "sites_claim must be a string"),
        ({"issuer": _IDP, "audiences": ["a"], "audience": "b"}, "not both"),
    ],
)
def test_bad_issuer_settings_are_refused(table: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_issuer(table)


def test_issuer_settings() -> None:
    (issuer,) = parse_issuers(
        [{"issuer": "https://idp.example", "audience": "gw", "default-role": "writer"}]
    )
    assert issuer == OidcIssuer(
        "https://idp.example", ("gw",), default_role=Role.writer, leeway_seconds=60
    )
    assert issuer.discovery_uri == "https://idp.example/.well-known/openid-configuration"
    with pytest.raises(ValueError, match="more than once"):
        parse_issuers([{"issuer": "https://a.example", "audiences": ["x"]}] * 2)
    two = [
        {"issuer": "https://a.example", "audiences": ["x"]},
        {"issuer": "https://b.example", "audiences": ["x"]},
    ]
    with pytest.raises(ValueError, match="share the name_prefix 'oidc:'"):
        parse_issuers(two)
    a, b = parse_issuers([two[0], {**two[1], "name_prefix": "b:"}])
    assert (a.name_prefix, b.name_prefix) == ("oidc:", "b:")
