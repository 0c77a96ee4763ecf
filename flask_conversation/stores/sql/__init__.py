"""A store for applications that run only a SQL database:
:class:`SQLAlchemyStore`, on SQLAlchemy Core (the optional extra ``sql``).

The modules, one concern each: :mod:`.tables` (the tables and namespace
keys), :mod:`.statements` (every statement, built once), :mod:`.database`
(short transactions and their errors), :mod:`.leases` (stack locks as
leases), :mod:`.rows` (rows to records), :mod:`.commit` (one request's
commit), :mod:`.purge` (removing what expired) and :mod:`.store` (the
store).
"""

from __future__ import annotations

from .store import SQLAlchemyStore as SQLAlchemyStore
