"""S3's tag rules: what a tag set of an object or a bucket may hold.

A tag set maps a key to a value; keys are unique. S3's rules, applied to every tag set a
client gives (``PutObjectTagging``, ``PutBucketTagging``, ``x-amz-tagging``) and to every
one read back from a backup:

* at most :data:`MAX_OBJECT_TAGS` tags on an object, :data:`MAX_BUCKET_TAGS` on a bucket;
* a key is 1 to 128 Unicode characters, a value 0 to 256;
* keys and values hold only letters, digits and spaces (any script: Unicode categories
  ``L``, ``N`` and ``Z``) and ``_ . : / = + - @``;
* a key may not begin with ``aws:`` (reserved by AWS, in any letter case).

Every violation is an ``InvalidTag`` (400) naming the rule, as S3 answers it. Duplicate keys
are refused where a tag set is parsed (:func:`add_tag`), since a mapping cannot hold them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Final, Literal

from core.errors import S3Error

#: A tag set: key -> value.
TagSet = dict[str, str]
MAX_OBJECT_TAGS: Final = 10
MAX_BUCKET_TAGS: Final = 50
MAX_KEY_LENGTH: Final = 128
MAX_VALUE_LENGTH: Final = 256
_EXTRA_CHARACTERS: Final = frozenset("_.:/=+-@")
_RESERVED_PREFIX: Final = "aws:"


def allowed_text(text: str) -> bool:
    """Whether every character of ``text`` is one a tag key or value may hold."""
    return all(
        c in _EXTRA_CHARACTERS or unicodedata.category(c)[0] in ("L", "N", "Z") for c in text
    )


def add_tag(tags: TagSet, key: str, value: str) -> None:
    """Add one parsed tag to ``tags``: ``InvalidTag`` when ``key`` is there already."""
    if key in tags:
        raise S3Error("InvalidTag", "Cannot provide multiple Tags with the same key")
    tags[key] = value


def check_tags(tags: Mapping[str, str], target: Literal["object", "bucket"]) -> None:
    """``InvalidTag`` unless ``tags`` keeps the rules of the module docstring for a tag set
    of an ``object`` or a ``bucket``."""
    limit = MAX_OBJECT_TAGS if target == "object" else MAX_BUCKET_TAGS
    if len(tags) > limit:
        raise S3Error("InvalidTag", f"{target.capitalize()} tags cannot be greater than {limit}")
    for key, value in tags.items():
        if not key:
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid: it is empty")
        if len(key) > MAX_KEY_LENGTH:
            raise S3Error(
                "InvalidTag",
                f"The TagKey you have provided is too long, max {MAX_KEY_LENGTH}",
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise S3Error(
                "InvalidTag",
                f"The TagValue you have provided is too long, max {MAX_VALUE_LENGTH}",
            )
        if not allowed_text(key):
            raise S3Error("InvalidTag", "The TagKey you have provided is invalid")
        if not allowed_text(value):
            raise S3Error("InvalidTag", "The TagValue you have provided is invalid")
        if key.lower().startswith(_RESERVED_PREFIX):
            raise S3Error("InvalidTag", "Your TagKey cannot be prefixed with aws:")


def valid_tags(tags: object, target: Literal["object", "bucket"]) -> TagSet:
    """A tag set read from a file (a backup, a site state record): a mapping of strings to
    strings keeping the rules, else ``ValueError`` saying why."""
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ValueError("tags must map strings to strings")
    try:
        check_tags(tags, target)
    except S3Error as error:
        raise ValueError(error.message) from None
    return dict(tags)
