"""The ``flask conversation`` commands: look at what a store holds and
remove what has expired.

.. code-block:: text

    $ flask conversation list
    $ flask conversation list --namespace NS
    $ flask conversation show NS CID
    $ flask conversation purge

The commands work on the store of the application that ``flask`` loads, as
returned by :meth:`~flask_conversation.ConversationScope.get_store`.
"""

from __future__ import annotations

import json
import typing as t
import uuid
from datetime import date
from datetime import datetime

import click
from flask.cli import AppGroup

from .errors import ConversationStoreError
from .extension import ConversationScope
from .stores.base import ConversationStore
from .stores.records import ConversationRecord
from .stores.session import SessionStore
from .unreadable import load_data
from .unreadable import UnreadableData

conversation_cli = AppGroup("conversation", help="Inspect and maintain stored conversations.")


def _store() -> ConversationStore:
    try:
        return ConversationScope.get_store()
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None


def _cannot_list(store: ConversationStore) -> click.ClickException:
    name = type(store).__name__
    if isinstance(store, SessionStore):
        return click.ClickException(
            f"{name} keeps each user's conversations inside that user's session,"
            " where no command can reach them: there is nothing to list, show or"
            ' purge. Set CONVERSATION_STORE = "redis" (or "memory") to keep them'
            " in a store that can be inspected."
        )
    return click.ClickException(f"{name} cannot list its namespaces.")


def _namespaces(store: ConversationStore) -> dict[str, int]:
    if isinstance(store, SessionStore):
        raise _cannot_list(store)
    try:
        return store.namespaces()
    except NotImplementedError:
        raise _cannot_list(store) from None


def _duration(seconds: float) -> str:
    """A short human duration: ``42s``, ``5m03s``, ``2h05m``, ``3d04h``."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{sign}{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{sign}{s // 86400}d{s % 86400 // 3600:02d}h"


def _table(header: tuple[str, ...], rows: t.Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        # The last column (a description) is not padded.
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


def _describe(record: ConversationRecord, now: float) -> tuple[str, ...]:
    left = record.expires_at - now
    if record.ended:
        expiry = "ended"
    elif left <= 0:
        expiry = "expired"
    else:
        expiry = _duration(left)
    return (
        record.id,
        record.parent_id or "-",
        str(record.depth),
        _duration(now - record.created_at),
        _duration(now - record.last_access),
        expiry,
        str(len(record.data.encode())),
        record.description or "",
    )


@conversation_cli.command("list")
@click.option(
    "--namespace",
    "-n",
    metavar="NS",
    help="List the conversations of this namespace instead of the namespaces.",
)
def list_command(namespace: str | None) -> None:
    """List the namespaces with their number of conversations, or the
    conversations of one namespace with their age, expiry, size and depth.
    """
    store = _store()
    try:
        if namespace is None:
            counts = _namespaces(store)
            if not counts:
                click.echo("No conversations.")
                return
            rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
            _table(("NAMESPACE", "CONVERSATIONS"), [(ns, str(n)) for ns, n in rows])
            return

        if isinstance(store, SessionStore):
            raise _cannot_list(store)
        try:
            records = store.list_namespace(namespace)
        except NotImplementedError:
            raise _cannot_list(store) from None
    except ConversationStoreError as e:
        raise click.ClickException(f"The store failed: {e}") from None

    if not records:
        click.echo(f"No conversations in namespace {namespace!r}.")
        return
    now = store.clock()
    # Most recently used first; a stack used together lists root first.
    records.sort(key=lambda r: (-r.last_access, r.depth, r.id))
    _table(
        ("ID", "PARENT", "DEPTH", "AGE", "IDLE", "EXPIRES IN", "SIZE", "DESCRIPTION"),
        [_describe(r, now) for r in records],
    )


def _jsonable(value: t.Any) -> t.Any:
    # The serializer restores a few types that JSON cannot print as such.
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return repr(value)


# Generated namespaces and ids may begin with "-": read them as arguments,
# not as unknown options.
@conversation_cli.command("show", context_settings={"ignore_unknown_options": True})
@click.argument("namespace")
@click.argument("cid")
def show_command(namespace: str, cid: str) -> None:
    """Print the data of conversation CID of NAMESPACE as JSON."""
    store = _store()
    if isinstance(store, SessionStore):
        raise _cannot_list(store)
    try:
        record = store.load(namespace, cid)
    except NotImplementedError:
        raise _cannot_list(store) from None
    except ConversationStoreError as e:
        raise click.ClickException(f"The store failed: {e}") from None
    if record is None:
        raise click.ClickException(f"No conversation {cid!r} in namespace {namespace!r}.")
    if record.expires_at <= store.clock():
        click.echo(f"Conversation {cid!r} has expired; it is kept until purged.", err=True)
    try:
        data = load_data(store.serializer, record)
    except UnreadableData as e:
        raise click.ClickException(
            f"Conversation {cid!r} holds data that the store's serializer cannot"
            f" read ({e.reason}). Requests for it are answered as for an unknown"
            " cid; the record is left as it is until it expires."
        ) from None
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=_jsonable))


@conversation_cli.command("purge")
def purge_command() -> None:
    """Remove the expired conversations of every namespace, for stores
    that do not expire records by themselves.
    """
    store = _store()
    if isinstance(store, SessionStore):
        raise _cannot_list(store)
    try:
        removed = store.purge()
    except NotImplementedError:
        raise _cannot_list(store) from None
    except ConversationStoreError as e:
        raise click.ClickException(f"The store failed: {e}") from None
    name = type(store).__name__
    if removed is None:
        click.echo(f"{name} expires conversations by itself: nothing to purge.")
    else:
        noun = "conversation" if removed == 1 else "conversations"
        click.echo(f"Removed {removed} expired {noun} from {name}.")
