"""Generated version ids and secret keys are taken by command lines as values."""

from __future__ import annotations

import secrets

import pytest

from core import tokens
from translators import versioning


def test_a_token_beginning_with_a_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["-looks-like-an-option", "_fine-value"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes: next(drawn))
    assert tokens.opaque_token(24) == "_fine-value"


def test_version_ids_never_begin_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["-" + "a" * 31, "b" * 32])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda nbytes: next(drawn))
    assert versioning.new_version_id() == "b" * 32


def test_tokens_keep_their_length_and_alphabet() -> None:
    for _ in range(500):
        token = tokens.opaque_token(24)
        assert len(token) == 32
        assert not token.startswith("-")
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
