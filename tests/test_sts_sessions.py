"""Stateless STS sessions (policy.sessions), the per-request credential lookup that checks
their tokens (gateway.session_auth), and the OIDC and STS settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from cryptography.fernet import Fernet

from core.errors import S3Error
from gateway.session_auth import security_token, session_lookup
from gateway.settings import SettingsError, load_settings
from policy.credentials import Credential
from policy.principals import Principal, Role
from policy.secret_box import SecretBox
from policy.sessions import (
    InvalidSessionToken,
    SessionExpired,
    is_session_key,
    mint_session,
    open_session,
    read_session,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ROOT = Credential("PWROOT", "root-secret", "root")
ROLE_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::docs/*"}],
    }
)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_key(Fernet.generate_key())


def principal(policy: str | None = None) -> Principal:
    roles = MappingProxyType({"docs": Role.writer, "blog": Role.reader})
    return Principal("oidc:ci", "session", roles, policy)


def test_a_session_round_trips(box: SecretBox) -> None:
    minted = mint_session(box, principal('{"Statement":[]}'), LATER)
    key = minted.credential.access_key
    assert is_session_key(key)
    assert len(key) == 20
    assert key[4:].isalnum()
    assert key[4:].upper() == key[4:]
    assert minted.expires == LATER
    opened = read_session(box, key, minted.session_token, NOW)
    assert opened.credential == minted.credential
    assert opened.principal == principal('{"Statement":[]}')
    assert dict(opened.principal.site_roles) == {"docs": Role.writer, "blog": Role.reader}
    # The token is sealed: neither the secret nor the roles can be read from it.
    assert minted.credential.secret_key not in minted.session_token
    assert "docs" not in minted.session_token


def test_every_session_is_new(box: SecretBox) -> None:
    one, two = (mint_session(box, principal(), LATER) for _ in range(2))
    assert one.credential.access_key != two.credential.access_key
    assert one.credential.secret_key != two.credential.secret_key


def test_refused_tokens(box: SecretBox) -> None:
    minted = mint_session(box, principal(), LATER)
    key, token = minted.credential.access_key, minted.session_token
    tampered = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    other_box = SecretBox.from_key(Fernet.generate_key())
    foreign = mint_session(other_box, principal(), LATER).session_token
    for bad in (tampered, foreign, "", "not a token", token[:-4]):
        with pytest.raises(InvalidSessionToken):
            read_session(box, key, bad, NOW)
        assert open_session(box, key, bad, NOW) is None
    other = mint_session(box, principal(), LATER)
    with pytest.raises(InvalidSessionToken):
        read_session(box, other.credential.access_key, token, NOW)
    # A sealed value that is not a session document.
    with pytest.raises(InvalidSessionToken):
        read_session(box, key, box.seal(json.dumps({"v": 1}).encode()), NOW)
    with pytest.raises(InvalidSessionToken):
        read_session(box, key, box.seal(b"[]"), NOW)


def test_expiry(box: SecretBox) -> None:
    minted = mint_session(box, principal(), LATER)
    key, token = minted.credential.access_key, minted.session_token
    assert open_session(box, key, token, LATER - timedelta(seconds=1)) is not None
    with pytest.raises(SessionExpired):
        read_session(box, key, token, LATER)
    assert open_session(box, key, token, LATER) is None


def test_the_lookup_of_one_request(box: SecretBox) -> None:
    minted = mint_session(box, principal(), LATER)
    key, token = minted.credential.access_key, minted.session_token

    def long_term(access_key: str) -> Credential | None:
        return ROOT if access_key == ROOT.access_key else None

    plain = session_lookup(long_term, box, None, NOW)
    assert plain(ROOT.access_key) == ROOT
    assert plain(key) is None  # a session key without its token is unknown

    with_token = session_lookup(long_term, box, token, NOW)
    found = with_token(key)
    assert found is not None
    assert found.identity == principal()
    assert found.principal == "oidc:ci"

    def code(lookup_key: str, presented: str, now: datetime = NOW, sealer: object = box) -> str:
        lookup = session_lookup(
            long_term, sealer if isinstance(sealer, SecretBox) else None, presented, now
        )
        with pytest.raises(S3Error) as excinfo:
            lookup(lookup_key)
        return excinfo.value.code

    assert code(ROOT.access_key, token) == "InvalidToken"  # a token with a long-term key
    assert code(key, token + "x") == "InvalidToken"
    assert code(key, token, LATER) == "ExpiredToken"
    assert code(key, token, sealer=None) == "InvalidToken"  # sessions are off


def test_where_the_token_travels() -> None:
    assert security_token({"x-amz-security-token": " t1 "}, {}) == "t1"
    assert security_token({}, {"X-Amz-Security-Token": "t2"}) == "t2"
    assert security_token({}, {"x-amz-security-token": "t3"}) == "t3"
    assert security_token({"x-amz-security-token": "h"}, {"X-Amz-Security-Token": "q"}) == "h"
    assert security_token({}, {}) is None


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_oidc_and_sts_settings_from_toml(tmp_path: Path) -> None:
    config = write(
        tmp_path / "gateway.toml",
        """
sts_max_session_seconds = 7200

[sts_role_policy]
Version = "2012-10-17"
Statement = [{ Effect = "Allow", Action = "s3:PutObject", Resource = "*" }]

[[oidc.issuers]]
issuer = "https://token.actions.example"
audiences = ["pagewright"]
principal_claim = "repository"
sites_claim = "pagewright_sites"
default_role = "writer"

[[oidc.issuers]]
issuer = "https://auth.pagewright.example"
name_prefix = "pw:"
audience = "gateway"
jwks_uri = "https://auth.pagewright.example/keys"
leeway_seconds = 10
""",
    )
    settings = load_settings(config_file=config)
    first, second = settings.oidc_issuers
    assert (first.principal_claim, first.sites_claim, first.default_role) == (
        "repository",
        "pagewright_sites",
        Role.writer,
    )
    assert (second.audiences, second.jwks_uri, second.leeway_seconds) == (
        ("gateway",),
        "https://auth.pagewright.example/keys",
        10,
    )
    assert settings.sts_max_session_seconds == 7200
    assert settings.sts_role_policy is not None
    assert json.loads(settings.sts_role_policy)["Statement"][0]["Action"] == "s3:PutObject"


def test_oidc_and_sts_settings_from_the_environment() -> None:
    issuers = [{"issuer": "https://idp.example", "audiences": ["gw"]}]
    settings = load_settings(
        environ={
            "PWG_OIDC_ISSUERS": json.dumps(issuers),
            "PWG_STS_ROLE_POLICY": ROLE_POLICY,
            "PWG_STS_MAX_SESSION_SECONDS": "900",
            "PWG_MASTER_KEY": "k" * 43 + "=",
        }
    )
    assert [i.issuer for i in settings.oidc_issuers] == ["https://idp.example"]
    assert settings.sts_role_policy == ROLE_POLICY
    assert settings.sts_max_session_seconds == 900
    assert settings.master_key == "k" * 43 + "="
    assert "kkkk" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"PWG_STS_MAX_SESSION_SECONDS": "899"}, "sts_max_session_seconds must be 900..43200"),
        ({"PWG_MASTER_KEY": "too-short"}, "master_key: the master key must be 32 url-safe"),
        ({"PWG_STS_MAX_SESSION_SECONDS": "43201"}, "sts_max_session_seconds must be"),
        ({"PWG_STS_ROLE_POLICY": "{"}, "sts_role_policy: the policy is not valid JSON"),
        ({"PWG_STS_ROLE_POLICY": "[]"}, "sts_role_policy: the policy must be a JSON object"),
        (
            {
                "PWG_STS_ROLE_POLICY": '{"Statement": [{"Effect": "Allow", "Action": "s3:*", '
                '"Resource": "*", "Principal": "*"}]}'
            },
            "sts_role_policy",
        ),
        ({"PWG_OIDC_ISSUERS": "not json"}, "PWG_OIDC_ISSUERS: oidc issuers"),
        ({"PWG_OIDC_ISSUERS": '{"issuer": "x"}'}, "list of tables"),
        (
            {
                "PWG_OIDC_ISSUERS": '[{"issuer": "https://i.example", "audiences": ["a"], '
                '"algorithms": ["HS256"]}]'
            },
            "not allowed",
        ),
    ],
)
def test_refused_settings(environ: dict[str, str], problem: str) -> None:
    with pytest.raises(SettingsError, match=problem):
        load_settings(environ=environ)


def test_an_oidc_table_holds_only_issuers(tmp_path: Path) -> None:
    config = write(tmp_path / "gateway.toml", '[oidc]\nissuer = "https://idp.example"\n')
    with pytest.raises(SettingsError, match=r"\[oidc\] holds only"):
        load_settings(config_file=config)
