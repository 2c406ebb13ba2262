"""Alembic environment for the catalog.

At runtime :meth:`policy.catalog.SqlCatalog.start` runs the upgrade with a Config built in
code and hands over an open connection (``config.attributes["connection"]``) inside a
transaction that already holds the migration lock; the whole upgrade then commits or rolls
back as one. Run by hand (``alembic -x url=... upgrade head`` with a Config pointing here),
it connects to ``sqlalchemy.url`` or the ``url`` -x argument itself.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from policy.catalog_schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError("no catalog URL: pass -x url=... or set sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


_main()
