"""Query-protocol actions by name: the registry the endpoint dispatches through.

An action is registered once, as a :class:`QueryAction`: its name (``CreateUser``), the
service whose SigV4 scope its requests are signed for (``iam``, ``sts``), the API version and
XML namespace of its responses, whether it must be signed at all (STS's
``AssumeRoleWithWebIdentity`` is not: the web identity token is the proof) and its handler.
A handler gets a :class:`QueryCall` and returns its ``<ActionResult>`` element (None for
actions without one), or a whole :class:`QueryReply` it rendered itself (STS renders its own
documents), or raises :class:`gateway.query.errors.QueryError` (or an identity store's
:class:`policy.identity_rules.IdentityError`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from lxml import etree

from gateway.query.errors import QueryError, missing
from policy.credentials import Credential
from policy.principals import Principal


@dataclass(frozen=True)
class QueryCall:
    """One authenticated call: its action, form parameters (``Action`` and ``Version``
    included), caller (:data:`policy.principals.ANONYMOUS` for an unsigned action) and the
    credential that signed it (None when unsigned)."""

    action: str
    params: Mapping[str, str]
    principal: Principal
    credential: Credential | None
    request_id: str
    source: str = "-"  # the client's address, as policies see it (aws:SourceIp)

    def param(self, name: str) -> str | None:
        """The parameter ``name``, or None when absent."""
        return self.params.get(name)

    def required(self, name: str) -> str:
        """The parameter ``name``; ``ValidationError`` when absent."""
        value = self.params.get(name)
        if value is None:
            raise missing(name)
        return value

    def integer(self, name: str, default: int) -> int:
        """The integer parameter ``name`` (``default`` when absent)."""
        value = self.params.get(name)
        if value is None:
            return default
        if not value.isdigit() or len(value) > 9:
            raise QueryError("ValidationError", f"Invalid value for parameter {name}: {value}")
        return int(value)


@dataclass(frozen=True)
class QueryReply:
    """A response a handler rendered whole: its HTTP status and XML document."""

    status: int
    document: bytes


QueryHandler = Callable[[QueryCall], Awaitable[etree._Element | QueryReply | None]]


@dataclass(frozen=True)
class QueryAction:
    """A registered action (see the module docstring)."""

    name: str
    service: str
    version: str
    namespace: str
    handler: QueryHandler
    signed: bool = True


class QueryDispatcher:
    """Actions by name. ``register`` them at start-up; :meth:`action` finds one."""

    def __init__(self) -> None:
        self._actions: dict[str, QueryAction] = {}

    def register(self, action: QueryAction) -> None:
        """Add ``action``; ``ValueError`` if its name is registered already."""
        if action.name in self._actions:
            raise ValueError(f"query action {action.name} is registered already")
        self._actions[action.name] = action

    def action(self, name: str | None, version: str | None) -> QueryAction:
        """The action ``name`` of API ``version``: ``MissingAction`` when no name is given,
        ``InvalidAction`` when no such action exists in that version."""
        if not name:
            raise QueryError("MissingAction", "Missing Action")
        found = self._actions.get(name)
        if found is None or version != found.version:
            raise QueryError(
                "InvalidAction", f"Could not find operation {name} for version {version}"
            )
        return found

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._actions)

    def namespace_for(self, version: str | None, default: str) -> str:
        """The XML namespace of the API ``version`` (an error about an unknown action is
        answered in the namespace of the API the client asked for), else ``default``."""
        for action in self._actions.values():
            if action.version == version:
                return action.namespace
        return default
