"""Asking the access decision from the request path: the condition context of a request and
:class:`AccessCheck`, which decides, audits and refuses.

The context holds the global condition keys AWS defines for every request (``aws:SourceIp``
from :mod:`gateway.client_address`, ``aws:SecureTransport``, ``aws:CurrentTime``, the
principal's keys) and the S3 keys a request carries (``s3:prefix``, ``s3:delimiter``,
``s3:max-keys``, ``s3:x-amz-acl``, the signature's version and kind). It is built when a
policy statement first reads it (:class:`LazyContext`): most requests (root's, a site
without conditional statements) decide without it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from core.errors import S3Error
from core.tracing import span
from gateway.audit import AuditEntry
from policy.access import Decision
from policy.access_control import AccessControl
from policy.principals import Principal

_PRINCIPAL_TYPES = {
    "root": "Account",
    "user": "User",
    "session": "AssumedRole",
    "anonymous": "Anonymous",
}
_LIST_KEYS = ("prefix", "delimiter", "max-keys")


class LazyContext(Mapping[str, str]):
    """A request's condition keys, built by ``build`` when first read; ``known`` keys (the
    source address, which every audit line reads) are answered without building."""

    def __init__(self, build: Callable[[], dict[str, str]], known: Mapping[str, str]) -> None:
        self._build = build
        self._known = known

    @functools.cached_property
    def _values(self) -> dict[str, str]:
        return self._build()

    def __getitem__(self, name: str) -> str:
        if name in self._known:
            return self._known[name]
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def condition_context(
    principal: Principal,
    *,
    source: str,
    secure: bool,
    now: datetime,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    region: str,
    signature: str | None,
    site: str | None,
) -> Mapping[str, str]:
    """The condition keys of one request, by their canonical names (built when first read;
    ``headers`` and ``query`` must not change meanwhile)."""

    def build() -> dict[str, str]:
        context = {
            "aws:SourceIp": source,
            "aws:SecureTransport": "true" if secure else "false",
            "aws:CurrentTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "aws:EpochTime": str(int(now.timestamp())),
            "aws:RequestedRegion": region,
            **_principal_keys(principal),
        }
        for header, name in (("user-agent", "aws:UserAgent"), ("referer", "aws:Referer")):
            if header in headers:
                context[name] = headers[header]
        for name in _LIST_KEYS:
            if name in query:
                context[f"s3:{name}"] = query[name]
        for header in ("x-amz-acl", "x-amz-content-sha256"):
            if header in headers:
                context[f"s3:{header}"] = headers[header]
        if signature is not None:
            version, _, kind = signature.partition(":")
            context["s3:signatureversion"] = version
            context["s3:authType"] = kind
        if site is not None:
            context["pagewright:site"] = site
        return context

    return LazyContext(build, {"aws:SourceIp": source})


def _principal_keys(principal: Principal) -> dict[str, str]:
    """The condition keys that describe the principal."""
    keys = {"aws:PrincipalType": _PRINCIPAL_TYPES[principal.kind]}
    if principal.kind != "anonymous":
        keys["aws:PrincipalArn"] = principal.arn
        keys["aws:userid"] = principal.name
    if principal.kind == "user":
        keys["aws:username"] = principal.name
    return keys


@dataclass
class AccessCheck:
    """The access decisions of one request, each kept for its audit line."""

    control: AccessControl
    principal: Principal
    context: Mapping[str, str]
    operation: str | None
    entries: list[AuditEntry] = field(default_factory=list)

    async def decide(self, action: str, bucket: str | None, key: str | None) -> Decision:
        """Decide ``action`` on ``bucket``/``key`` and keep the outcome for the audit
        (in an ``authorize`` span when tracing)."""
        with span("authorize", {"pagewright.action": action}) as deciding:
            decision = await self.control.decide(self.principal, action, bucket, key, self.context)
            deciding.set_attribute("pagewright.allowed", decision.allowed)
        self.entries.append(
            AuditEntry(
                principal=self.principal.name,
                principal_arn=self.principal.arn,
                source=str(self.context.get("aws:SourceIp", "")),
                site=bucket,
                key=key,
                operation=self.operation,
                action=action,
                allowed=decision.allowed,
                policy=decision.policy,
                statement=decision.statement,
            )
        )
        return decision

    async def permits(self, action: str, bucket: str | None, key: str | None = None) -> bool:
        """Whether ``action`` would be allowed, without auditing it (to filter a listing)."""
        decision = await self.control.decide(self.principal, action, bucket, key, self.context)
        return decision.allowed

    async def require(self, action: str, bucket: str | None, key: str | None = None) -> None:
        """``AccessDenied`` unless ``action`` on ``bucket``/``key`` is allowed."""
        if not (await self.decide(action, bucket, key)).allowed:
            raise S3Error("AccessDenied")

    def signed_by(
        self, principal: Principal, signature: str | None, keys: Mapping[str, str] | None = None
    ) -> None:
        """Decide later requests for ``principal``, who signed this request's body rather
        than its headers (a POST Object form): the principal's condition keys and the
        signature's (``<version>:<authType>``) replace the anonymous ones; ``keys`` are
        condition keys the body carries (a form's ``s3:x-amz-acl``)."""
        context = {
            name: value
            for name, value in self.context.items()
            if not name.startswith("aws:Principal")
            and name not in ("aws:userid", "aws:username", "s3:signatureversion", "s3:authType")
        }
        context.update(_principal_keys(principal))
        if signature is not None:
            version, _, kind = signature.partition(":")
            context["s3:signatureversion"] = version
            context["s3:authType"] = kind
        context.update(keys or {})
        self.principal = principal
        self.context = context

    @property
    def denied(self) -> bool:
        return any(not entry.allowed for entry in self.entries)
