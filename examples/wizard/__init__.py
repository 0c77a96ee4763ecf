"""A multi-step sign-up form: each step is a page, the answers live in one
conversation, and the back links keep them.

Run it with ``flask --app examples.wizard run``.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask

from flask_conversation import ConversationScope

from ..security import protect
from .views import bp

scope = ConversationScope()


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the sign-up site.

    :param test_config: settings that override the defaults, for tests.
    """
    app = Flask(__name__)
    app.config.update(
        # The cookie is signed with this key; without one, a random key is
        # made at start (see examples.security).
        SECRET_KEY=os.environ.get("SECRET_KEY"),
        # The browser sends the session cookie with no other site's form.
        SESSION_COOKIE_SAMESITE="Lax",
        # A sign-up left alone for 15 minutes starts over...
        CONVERSATION_TIMEOUT=15 * 60,
        # ...at step 1, with a message, instead of an error page.
        CONVERSATION_MISSING_REDIRECT="wizard.account",
        CONVERSATION_MISSING_FLASH_MESSAGE=(
            "That sign-up is no longer open: it was finished, or left alone for too"
            " long. Please start again."
        ),
    )
    if test_config is not None:
        app.config.update(test_config)
    protect(app)
    scope.init_app(app)
    app.register_blueprint(bp)
    return app
