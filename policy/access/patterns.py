"""Compiled match patterns: literal text, ``*``/``?`` wildcards and ``${...}`` policy variables.

A :class:`Pattern` is compiled once, when its policy is parsed, and matched on every request.
A pattern without variables becomes a plain comparison or one compiled regular expression; a
pattern with variables keeps its parts and substitutes the request's values at match time.

Wildcards (where enabled): ``*`` matches any run of characters, ``/`` and ``:`` included;
``?`` matches one character. A policy variable is ``${key}`` or ``${key, 'default'}`` (a
doubled ``''`` in the default is one quote); ``${*}``, ``${?}`` and ``${$}`` stand for a
literal ``*``, ``?`` and ``$``. A substituted value is always matched literally: a user named
``a*`` does not become a wildcard. A variable whose key is absent from the request (and has no
default) or has several values makes the pattern match nothing, as in AWS.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

from policy.access.keys import Context, canonical_key, is_known_key
from policy.access.malformed import malformed


class Wildcard(Enum):
    """``*`` (any run of characters) or ``?`` (one character)."""

    any = "*"
    one = "?"


@dataclass(frozen=True, slots=True)
class Variable:
    """``${key}`` or ``${key, 'default'}``; ``key`` is canonical."""

    key: str
    default: str | None


Part = str | Wildcard | Variable

_VARIABLE = re.compile(r"\s*([^\s,']+)\s*(?:,\s*'((?:[^']|'')*)'\s*)?")
_ESCAPES: Final = {"*": "*", "?": "?", "$": "$"}
_REGEX_OF: Final = {Wildcard.any: ".*", Wildcard.one: "."}


@dataclass(frozen=True, slots=True)
class Pattern:
    """One compiled pattern; :meth:`matches` answers whether a request value fits it."""

    source: str
    parts: tuple[Part, ...]
    ignore_case: bool
    #: The whole pattern as text when it has neither wildcards nor variables (folded when
    #: ``ignore_case``).
    literal: str | None
    #: The compiled expression when it has wildcards but no variables.
    regex: re.Pattern[str] | None
    has_variables: bool
    #: The literal text every match starts with (checked first; empty when ``ignore_case``).
    prefix: str

    def matches(self, value: str, context: Context) -> bool:
        """Whether ``value`` fits this pattern, variables taken from ``context``."""
        if self.literal is not None:
            return (value.casefold() if self.ignore_case else value) == self.literal
        if not value.startswith(self.prefix):
            return False
        if self.regex is not None:
            return self.regex.fullmatch(value) is not None
        resolved = self._resolve(context)
        if resolved is None:
            return False
        if all(isinstance(p, str) for p in resolved):
            text = "".join(p for p in resolved if isinstance(p, str))
            if self.ignore_case:
                return value.casefold() == text.casefold()
            return value == text
        return _compile(tuple(resolved), self.ignore_case).fullmatch(value) is not None

    def _resolve(self, context: Context) -> list[str | Wildcard] | None:
        resolved: list[str | Wildcard] = []
        for part in self.parts:
            if isinstance(part, Variable):
                values = context.get(part.key)
                if values is not None and len(values) == 1:
                    resolved.append(values[0])
                elif values is None and part.default is not None:
                    resolved.append(part.default)
                else:
                    return None
            else:
                resolved.append(part)
        return resolved


@functools.lru_cache(maxsize=4096)
def _compile(parts: tuple[Part, ...], ignore_case: bool) -> re.Pattern[str]:
    """The expression for resolved ``parts`` (cached: a variable pattern resolves to the same
    parts for every request of one user)."""
    text = "".join(_REGEX_OF[p] if isinstance(p, Wildcard) else re.escape(str(p)) for p in parts)
    return re.compile(text, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _parse_variable(inner: str, where: str) -> str | Variable:
    if inner in _ESCAPES:
        return _ESCAPES[inner]
    found = _VARIABLE.fullmatch(inner)
    if found is None:
        raise malformed(
            f"{where}: policy variable ${{{inner}}} is not ${{key}} or ${{key, 'default'}}"
        )
    key, default = found.group(1), found.group(2)
    if not is_known_key(key):
        raise malformed(f"{where}: policy variable ${{{inner}}} names an unknown key {key!r}")
    return Variable(canonical_key(key), None if default is None else default.replace("''", "'"))


def _split(source: str, *, wildcards: bool, variables: bool, where: str) -> list[Part]:
    parts: list[Part] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            parts.append("".join(text))
            text.clear()

    i = 0
    while i < len(source):
        char = source[i]
        if variables and source.startswith("${", i):
            end = source.find("}", i + 2)
            if end < 0:
                raise malformed(f"{where}: policy variable at {source[i:]!r} has no closing '}}'")
            part = _parse_variable(source[i + 2 : end], where)
            if isinstance(part, str):
                text.append(part)
            else:
                flush()
                parts.append(part)
            i = end + 1
            continue
        if wildcards and char in "*?":
            flush()
            parts.append(Wildcard(char))
        else:
            text.append(char)
        i += 1
    flush()
    return parts


def compile_pattern(
    source: str, *, wildcards: bool, variables: bool, ignore_case: bool = False, where: str
) -> Pattern:
    """Compile ``source``; ``where`` names the policy element in error messages.

    Raises MalformedPolicy for an unterminated or unknown policy variable.
    """
    parts = tuple(_split(source, wildcards=wildcards, variables=variables, where=where))
    has_variables = any(isinstance(p, Variable) for p in parts)
    literal: str | None = None
    regex: re.Pattern[str] | None = None
    if not has_variables:
        if all(isinstance(p, str) for p in parts):
            text = "".join(p for p in parts if isinstance(p, str))
            literal = text.casefold() if ignore_case else text
        else:
            regex = _compile(parts, ignore_case)
    prefix = ""
    if not ignore_case and parts and isinstance(parts[0], str):
        prefix = parts[0]
    return Pattern(source, parts, ignore_case, literal, regex, has_variables, prefix)
