"""The ``flask conversation`` commands."""

from __future__ import annotations

from flask.cli import AppGroup

conversation_cli = AppGroup("conversation", help="Inspect and maintain stored conversations.")
