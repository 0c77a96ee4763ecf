"""The tables of :class:`~flask_conversation.stores.SQLAlchemyStore`, and
how a namespace becomes a key in them.

Three tables, named after the store's ``table_prefix``:

``<prefix>records``
    one row per conversation, keyed by ``(namespace, id)``: the record's
    fields, its data as text, its size and its expiry. An index on
    ``(root_id, namespace)`` finds a stack.
``<prefix>leases``
    one row per locked stack, keyed by ``(namespace, root_id)``: the owner's
    token and when the lease runs out.
``<prefix>namespaces``
    one row per namespace that holds records: how many, and a time before
    which none of them expires (a lower bound), so that a commit knows
    without reading the namespace that nothing has expired and everything
    fits.

Keys compare exactly, on every database: on MySQL and MariaDB the key
columns use binary collations (their defaults ignore case and trailing
spaces).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

#: The longest namespace kept as it is; longer ones are keyed by a digest.
NAMESPACE_KEY_LENGTH = 128

#: Starts every digest key; a namespace starting with it is keyed by its
#: digest too, so that no namespace's key is another's digest.
DIGEST_MARK = "~"

_MYSQL = ("mysql", "mariadb")


def _key_type(length: int) -> sa.types.TypeEngine[str]:
    # Unicode, compared by code point (utf8mb4_bin) on MySQL and MariaDB.
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), *_MYSQL
    )


def _id_type() -> sa.types.TypeEngine[str]:
    # Conversation ids are ASCII (the extension checks their shape).
    return sa.String(64).with_variant(
        mysql.VARCHAR(64, charset="ascii", collation="ascii_bin"), *_MYSQL
    )


def _text_type() -> sa.types.TypeEngine[str]:
    # MySQL's TEXT holds 64 KB; conversations may be larger.
    return sa.Text().with_variant(
        mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"), *_MYSQL
    )


def _time_type() -> sa.types.TypeEngine[float]:
    # Seconds since the epoch as a double: times come back exactly as
    # they were written (MySQL's FLOAT would be single precision).
    return sa.Double(asdecimal=False)


@dataclasses.dataclass(frozen=True)
class Tables:
    """The store's tables in their :class:`~sqlalchemy.MetaData`.

    :param metadata: holds the three tables.
    :param records: one row per conversation.
    :param leases: one row per locked stack.
    :param namespaces: one row per namespace that holds records.
    """

    metadata: sa.MetaData
    records: sa.Table
    leases: sa.Table
    namespaces: sa.Table

    @property
    def all(self) -> list[sa.Table]:
        """The three tables."""
        return [self.records, self.leases, self.namespaces]


def build_tables(prefix: str, metadata: sa.MetaData | None = None) -> Tables:
    """Describe the store's tables, named ``<prefix>records``,
    ``<prefix>leases`` and ``<prefix>namespaces``.

    :param prefix: put before each table's name.
    :param metadata: where to define them; a new one by default.
    """
    metadata = sa.MetaData() if metadata is None else metadata
    records = sa.Table(
        f"{prefix}records",
        metadata,
        sa.Column("namespace", _key_type(NAMESPACE_KEY_LENGTH), primary_key=True),
        sa.Column("id", _id_type(), primary_key=True),
        sa.Column("root_id", _id_type(), nullable=False),
        sa.Column("parent_id", _id_type(), nullable=True),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("data", _text_type(), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("description", _text_type(), nullable=True),
        sa.Column("timeout", _time_type(), nullable=False),
        sa.Column("created_at", _time_type(), nullable=False),
        sa.Column("last_access", _time_type(), nullable=False),
        sa.Column("expires_at", _time_type(), nullable=False),
        sa.Column("ended", sa.Boolean, nullable=False),
        # Counts the writes of the row: 0 when it was just inserted, which
        # tells a commit how many conversations it added.
        sa.Column("version", sa.Integer, nullable=False),
        # Root first: a lookup by id can only use the primary key, even
        # before the planner has statistics.
        sa.Index(f"{prefix}records_stack", "root_id", "namespace"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    leases = sa.Table(
        f"{prefix}leases",
        metadata,
        sa.Column("namespace", _key_type(NAMESPACE_KEY_LENGTH), primary_key=True),
        sa.Column("root_id", _id_type(), primary_key=True),
        sa.Column("token", _id_type(), nullable=False),
        sa.Column("expires_at", _time_type(), nullable=False),
        sa.Index(f"{prefix}leases_expiry", "expires_at"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    namespaces = sa.Table(
        f"{prefix}namespaces",
        metadata,
        sa.Column("namespace", _key_type(NAMESPACE_KEY_LENGTH), primary_key=True),
        # The namespace as JSON text, for a namespace keyed by its digest.
        sa.Column("name", _text_type(), nullable=True),
        sa.Column("records", sa.Integer, nullable=False),
        sa.Column("earliest", _time_type(), nullable=False),
        sa.Index(f"{prefix}namespaces_expiry", "earliest"),
        mysql_charset="utf8mb4",
        mysql_engine="InnoDB",
    )
    return Tables(metadata, records, leases, namespaces)


def namespace_key(namespace: str) -> str:
    """The key of ``namespace`` in the tables: the namespace itself when
    every database keeps and compares it exactly (printable, no trailing
    space, at most :data:`NAMESPACE_KEY_LENGTH` characters, not starting
    with :data:`DIGEST_MARK`), else :data:`DIGEST_MARK` and its SHA-256.

    :param namespace: the namespace.
    """
    if (
        len(namespace) <= NAMESPACE_KEY_LENGTH
        and namespace.isprintable()
        and not namespace.endswith(" ")
        and not namespace.startswith(DIGEST_MARK)
    ):
        return namespace
    digest = hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()
    return DIGEST_MARK + digest


def namespace_name(namespace: str) -> str | None:
    """What the ``name`` column holds for ``namespace``: ``None`` when the
    key is the namespace itself, else the namespace as JSON (ASCII, so that
    any string fits any text column).

    :param namespace: the namespace.
    """
    if namespace_key(namespace) == namespace:
        return None
    return json.dumps(namespace)


def namespace_from_row(key: str, name: str | None) -> str:
    """The namespace a key and name column stand for.

    :param key: the ``namespace`` column.
    :param name: the ``name`` column.
    """
    return key if name is None else str(json.loads(name))


def create_tables(
    engine: sa.engine.Engine, metadata: sa.MetaData, tables: list[sa.Table], attempts: int = 5
) -> None:
    """Create the tables, with their indexes, that do not exist yet. Several
    processes may do it at once: one of them creates each table, and the
    others, failing on it, look again.

    :param engine: the database.
    :param metadata: where the tables are defined.
    :param tables: the tables to create (not the others of ``metadata``).
    :param attempts: how often to look again.
    """
    for attempt in range(attempts):
        try:
            metadata.create_all(engine, tables=tables, checkfirst=True)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
