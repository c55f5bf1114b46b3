"""The contract's PostgreSQL source server, and connections to it.

A product reads a PostgreSQL table when its contract has a server like

    - server: app-postgres
      type: postgres
      host: db.internal
      port: 5432
      database: app
      schema: public
      customProperties:
        - {property: sourceKind, value: postgres}
        - {property: table, value: users}
        - {property: publication, value: meshkit_customers_users}   # optional
        - {property: slot, value: meshkit_customers_users}          # optional

Credentials never come from the contract: `MESHKIT_POSTGRES_USER` / `MESHKIT_POSTGRES_PASSWORD`, or a
whole libpq DSN in `MESHKIT_POSTGRES_DSN` (its host, port and dbname win over the contract's). libpq's
own variables (`PGPASSWORD`, `PGSSLMODE`, a `.pgpass` file) keep working underneath.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from meshkit.config import Settings
from meshkit.errors import ConfigError, Location
from meshkit.products.model import DataProduct
from meshkit.secrets import POSTGRES_DSN_ENV, POSTGRES_PASSWORD_ENV, POSTGRES_USER_ENV
from pipelines.sources.postgres.values import SESSION_OPTIONS

SOURCE_KIND = "postgres"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class PostgresSource:
    """One table of one database, and the publication and slot that capture its changes."""

    product: str  # <domain>/<product>
    host: str
    port: int
    database: str
    schema: str
    table: str
    publication: str
    slot: str

    @property
    def qualified_table(self) -> str:
        """`"schema"."table"` for SQL (names were checked against the identifier rule)."""
        return f'"{self.schema}"."{self.table}"'

    @property
    def name(self) -> str:
        """How lineage and bus properties name the source: `postgres://host:port/db.schema.table`."""
        return f"postgres://{self.host}:{self.port}/{self.database}.{self.schema}.{self.table}"


def default_object_name(product: DataProduct) -> str:
    """`meshkit_<domain>_<product>`: the publication and slot name unless the contract names them."""
    return f"meshkit_{product.domain}_{product.name}".replace("-", "_")[:63]


def postgres_source(product: DataProduct) -> PostgresSource:
    """The product's PostgreSQL server from its contract, or a `ConfigError` naming what is missing."""
    spec = product.contract.source
    where = Location(str(product.contract_path), field="servers")
    if spec is None or spec.kind != SOURCE_KIND:
        raise ConfigError(
            f"{product.ref} has no PostgreSQL source server",
            location=where,
            hint="Add a server of type postgres with host, port, database, schema and customProperties "
            "sourceKind: postgres and table (docs/postgres.md).",
        )
    missing = [
        name for name, value in (("host", spec.host), ("database", spec.database), ("table", spec.table)) if not value
    ]
    if missing:
        raise ConfigError(
            f"the PostgreSQL server of {product.ref} names no {', '.join(missing)}",
            location=where,
            hint="Set host and database on the server and `- property: table` in its customProperties.",
        )
    default = default_object_name(product)
    names = {
        "schema": spec.schema or "public",
        "table": spec.table or "",
        "publication": spec.publication or default,
        "slot": spec.slot or default,
    }
    for what, value in names.items():
        if not _IDENTIFIER.match(value):
            raise ConfigError(
                f"the PostgreSQL {what} name {value!r} of {product.ref} is not a plain lower-case identifier",
                location=where,
                hint="Use lower-case letters, digits and underscores (at most 63), starting with a letter or _; "
                "slot names allow no other characters.",
            )
    return PostgresSource(
        product=product.ref,
        host=spec.host or "",
        port=spec.port or 5432,
        database=spec.database or "",
        **names,
    )


def connection_dsn(source: PostgresSource, environ: Any = None) -> str:
    """The libpq DSN of the source: the contract's host/port/database plus the credentials from the
    environment. The result holds a password: pass it to the driver, never to a log or an error."""
    from psycopg2.extensions import make_dsn, parse_dsn

    env = os.environ if environ is None else environ
    base = {
        "host": source.host,
        "port": str(source.port),
        "dbname": source.database,
        "application_name": "meshkit-relay",
    }
    dsn_env = env.get(POSTGRES_DSN_ENV)
    if dsn_env:
        try:
            base.update(parse_dsn(dsn_env))
        except Exception:  # the driver's message may quote the DSN (and its password): name the variable instead
            raise ConfigError(
                f"{POSTGRES_DSN_ENV} is not a valid libpq connection string",
                hint="Use `host=... port=... dbname=... user=... password=...` or a postgresql:// URI.",
            ) from None
    if env.get(POSTGRES_USER_ENV):
        base["user"] = env[POSTGRES_USER_ENV]
    if env.get(POSTGRES_PASSWORD_ENV):
        base["password"] = env[POSTGRES_PASSWORD_ENV]
    # deterministic text forms of dates, times and floats in both the snapshot and the stream
    base["options"] = f"{base.get('options', '')} {SESSION_OPTIONS}".strip()
    if "user" not in base:
        raise ConfigError(
            f"no PostgreSQL user for {source.product}: {POSTGRES_USER_ENV} is not set",
            hint=f"Set {POSTGRES_USER_ENV} (and {POSTGRES_PASSWORD_ENV}) to a role with REPLICATION, "
            f"or {POSTGRES_DSN_ENV} to a full connection string.",
        )
    return str(make_dsn(**base))


def describe(source: PostgresSource) -> str:
    """Where the relay connects, for messages: host, port, database, never the credentials."""
    return f"{source.host}:{source.port}/{source.database}"


def connect(settings: Settings, source: PostgresSource, *, replication: bool = False) -> Any:
    """A new connection (autocommit) or a logical replication connection; the caller closes it.
    A refused or unreachable server is a `TransientError` (the relay's retry reads it)."""
    import psycopg2
    import psycopg2.extras

    from meshkit.errors import TransientError

    del settings  # the connection comes from the contract and the environment; kept for a uniform signature
    dsn = connection_dsn(source)
    try:
        if replication:
            return psycopg2.connect(dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        return conn
    except psycopg2.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TransientError(
            f"cannot connect to PostgreSQL at {describe(source)}: {first}",
            hint="Check the server is up and reachable, and the role's credentials "
            f"({POSTGRES_USER_ENV}/{POSTGRES_PASSWORD_ENV} or {POSTGRES_DSN_ENV}).",
        ) from None
