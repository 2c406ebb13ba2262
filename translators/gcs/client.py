"""Settings and client construction for the Google Cloud Storage translator.

:class:`GCSSettings` is read once from a :class:`~translators.config.BackendSpec` and the
environment; :func:`make_client` builds the (blocking) ``google.cloud.storage`` client on an
HTTP session whose connection pool matches the translator's thread pool (errors are mapped
in :mod:`translators.gcs.errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import google.auth
import google.auth.exceptions
import google.cloud.storage as storage
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from requests.adapters import HTTPAdapter

from translators.config import BackendConfigError, BackendSpec
from translators.proxies import proxies_for

DEFAULT_ENDPOINT: Final = "https://storage.googleapis.com"
_SCOPES: Final = ("https://www.googleapis.com/auth/devstorage.read_write",)
_OPTIONS: Final = ("endpoint", "pool", "create")
#: Project name used with an emulator when none is configured (emulators ignore it).
_EMULATOR_PROJECT: Final = "pagewright-emulator"


@dataclass(frozen=True)
class GCSSettings:
    """Where and how to reach GCS: endpoint, project, credentials source, pool size.

    ``emulator`` means anonymous credentials (STORAGE_EMULATOR_HOST or ``endpoint=``
    pointing at plain http); ``credentials_file`` is GOOGLE_APPLICATION_CREDENTIALS, else
    application default credentials are used. ``proxies`` is the proxy for ``endpoint``,
    decided once from the standard variables (:mod:`translators.proxies`).
    """

    endpoint: str
    emulator: bool
    project: str | None
    credentials_file: str | None
    pool: int
    create: bool
    proxies: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: BackendSpec, environ: Mapping[str, str]) -> GCSSettings:
        """Read options ``endpoint``, ``pool`` (default 32) and ``create`` (default false)."""
        unknown = sorted(set(spec.options) - set(_OPTIONS))
        if unknown:
            raise BackendConfigError(
                f"backend {spec.redacted()}: unknown option(s) {', '.join(unknown)}; "
                f"the gcs translator takes {', '.join(_OPTIONS)}"
            )
        try:
            pool = int(spec.options.get("pool", "32"))
        except ValueError:
            pool = 0
        if pool < 1:
            raise BackendConfigError(f"backend {spec.redacted()}: pool must be a positive integer")
        create = spec.options.get("create", "false").lower()
        if create not in ("true", "false", "1", "0", "yes", "no"):
            raise BackendConfigError(f"backend {spec.redacted()}: create must be true or false")
        emulator_host = environ.get("STORAGE_EMULATOR_HOST", "").strip()
        endpoint = spec.options.get("endpoint", "").strip()
        emulator = False
        if not endpoint and emulator_host:
            endpoint, emulator = emulator_host, True
        if endpoint and "://" not in endpoint:
            endpoint = "http://" + endpoint
        if endpoint.startswith("http://"):
            emulator = True
        endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        return cls(
            endpoint=endpoint,
            emulator=emulator,
            project=environ.get("GOOGLE_CLOUD_PROJECT") or None,
            credentials_file=environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
            pool=pool,
            create=create in ("true", "1", "yes"),
            proxies=proxies_for(endpoint, environ),
        )


def make_client(settings: GCSSettings) -> tuple[Any, AuthorizedSession]:
    """A storage client and its HTTP session (blocking: call from a worker thread)."""
    credentials: Credentials
    project = settings.project
    if settings.emulator:
        credentials = AnonymousCredentials()  # type: ignore[no-untyped-call]
        project = project or _EMULATOR_PROJECT
    elif settings.credentials_file:
        credentials, found = google.auth.load_credentials_from_file(  # type: ignore[no-untyped-call]
            settings.credentials_file, scopes=_SCOPES
        )
        project = project or found
    else:
        credentials, found = google.auth.default(scopes=_SCOPES)
        project = project or found
    session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
    # requests trusting the environment looks the proxy variables and ~/.netrc up again on
    # every request; the proxy is decided once (translators.proxies).
    session.trust_env = False
    session.proxies.update(settings.proxies)
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=settings.pool, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    client = storage.Client(
        project=project,
        credentials=credentials,
        client_options=ClientOptions(api_endpoint=settings.endpoint),
        _http=session,
    )
    return client, session
