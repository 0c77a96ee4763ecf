"""A chat bot webhook, after Bottender's counting and nickname bots.

Every message is a JSON ``POST /webhook`` such as ``{"platform": "console",
"user_id": "42", "text": "Hi"}``, with the webhook's secret in the
``X-Bot-Api-Secret-Token`` header, as a chat platform sends it (Telegram's
``X-Telegram-Bot-Api-Secret-Token``). There are no cookies: the namespace of
the conversation is the chat (``platform:user_id``), and each message joins
the chat's one conversation by its natural id. Quiet chats are forgotten
after ``CONVERSATION_TIMEOUT``.

Run it with ``flask --app examples.bot run`` and talk to it with
``python -m examples.bot.console``. Both read the secret from
``BOT_WEBHOOK_SECRET``; without it, the bot makes one up at start and logs
the console command that sends it.
"""

from __future__ import annotations

import os
import secrets
import typing as t

from flask import Flask

from .views import bp
from .views import scope


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the bot's web application.

    :param test_config: settings that override the defaults, for tests.
    """
    app = Flask(__name__)
    app.config.update(
        # Webhooks carry no cookie, so the session cannot hold the state:
        # keep it in this process, or in Redis when REDIS_URL is set.
        CONVERSATION_STORE="memory",
        CONVERSATION_INITIAL_STATE={"count": 0, "asking": False, "nickname": None},
        # A chat quiet for five minutes starts over, like a person who forgets.
        CONVERSATION_TIMEOUT=5 * 60,
    )
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        app.config.update(CONVERSATION_STORE="redis", CONVERSATION_REDIS=redis_url)
    app.config["BOT_WEBHOOK_SECRET"] = os.environ.get("BOT_WEBHOOK_SECRET")
    if test_config is not None:
        app.config.update(test_config)
    if not app.config["BOT_WEBHOOK_SECRET"]:
        # Never a fixed, published secret: anyone could then speak for any
        # chat. A secret for this run only, shown to whoever started it.
        app.config["BOT_WEBHOOK_SECRET"] = secrets.token_urlsafe(32)
        app.logger.warning(
            "BOT_WEBHOOK_SECRET is not set: generated a webhook secret for this run."
            " Talk to the bot with: BOT_WEBHOOK_SECRET=%s python -m examples.bot.console",
            app.config["BOT_WEBHOOK_SECRET"],
        )
    scope.init_app(app)
    app.register_blueprint(bp)
    return app
