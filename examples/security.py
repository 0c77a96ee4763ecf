"""What every web example sets up against other sites and published keys:
a secret key that is never a fixed one, and CSRF tokens on every form that
posts. (The examples also set ``SESSION_COOKIE_SAMESITE = "Lax"``: the
browser then sends the session cookie with no other site's form.)
"""

from __future__ import annotations

import secrets

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def protect(app: Flask) -> None:
    """Finish the security settings of ``app`` once its config is complete.

    -   Without ``SECRET_KEY``, generate a random key for this run and log
        so: sessions then end when the server restarts, and several worker
        processes would not share it. A fixed key in published code would
        let anyone sign a session cookie.
    -   CSRF tokens (Flask-WTF): a ``POST`` without the session's token is
        refused with 400, so another site cannot begin, change or end a
        user's conversations.

    :param app: the application, configured.
    """
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        app.logger.warning(
            "SECRET_KEY is not set: generated a random one for this run. Sessions end"
            " when the server restarts; set SECRET_KEY to keep them, and whenever"
            " several processes serve the app."
        )
    csrf.init_app(app)
