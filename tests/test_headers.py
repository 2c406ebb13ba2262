"""HTTP header rules: response-* override values."""

from __future__ import annotations

import pytest

from core.errors import S3Error
from gateway.headers import override_value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('inline; filename="a.txt"', 'inline; filename="a.txt"'),
        ("attachment; filename*=UTF-8''%C3%A9.txt", "attachment; filename*=UTF-8''%C3%A9.txt"),
        (
            'attachment; filename="é"; size=3',
            'attachment; filename="_"; filename*=UTF-8\'\'%C3%A9; size="3"',
        ),
    ],
)
def test_override_value(value: str, expected: str) -> None:
    assert override_value("response-content-disposition", value) == expected


@pytest.mark.parametrize("value", ["a\r\nb", "\x00", "\x7f", "日本"])
def test_override_value_refuses(value: str) -> None:
    with pytest.raises(S3Error) as caught:
        override_value("response-content-type", value)
    assert caught.value.code == "InvalidArgument"


@pytest.mark.parametrize(
    "value",
    [
        "attachment; filename*=UTF-8''%0D%0Ainjected; x=\"é\"",
        'attachment; f日lename="a"',
        "日本",
    ],
)
def test_a_disposition_that_cannot_be_encoded_is_refused(value: str) -> None:
    with pytest.raises(S3Error) as caught:
        override_value("response-content-disposition", value)
    assert caught.value.code == "InvalidArgument"
