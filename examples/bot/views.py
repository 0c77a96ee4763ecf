"""The webhook: one message in, the bot's replies out."""

from __future__ import annotations

import hmac
import json
import typing as t

from flask import abort
from flask import Blueprint
from flask import current_app
from flask import request

from flask_conversation import begin_conversation
from flask_conversation import conversation
from flask_conversation import ConversationScope

scope = ConversationScope()
bp = Blueprint("bot", __name__)

#: The header that carries the webhook's secret, after Telegram's
#: ``X-Telegram-Bot-Api-Secret-Token`` (set with ``setWebhook(secret_token=...)``).
SECRET_HEADER = "X-Bot-Api-Secret-Token"


def verify_secret() -> None:
    """Refuse a request that does not carry the webhook's secret: the body
    names the chat, so without it anyone could read or reset any chat.
    Answers 403.
    """
    given = request.headers.get(SECRET_HEADER, "")
    expected = current_app.config["BOT_WEBHOOK_SECRET"]
    # Constant time, so that the answer's timing does not tell how much of
    # a guess was right.
    if not hmac.compare_digest(given.encode(), expected.encode()):
        abort(403, f"Send the webhook's secret in the {SECRET_HEADER} header.")


def message() -> dict[str, str]:
    """The message of the current request: ``platform``, ``user_id`` and
    ``text``, all strings. Answers 400 when one is missing.
    """
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        abort(400, "Send a JSON object.")
    fields = {}
    for key in ("platform", "user_id", "text"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            abort(400, f"The message needs a non-empty {key!r}.")
        fields[key] = value
    return fields


@scope.namespace_loader
def chat_namespace() -> str:
    """One namespace per chat, like Bottender's session key
    (``telegram:16423...``).
    """
    msg = message()
    return f"{msg['platform']}:{msg['user_id']}"


@bp.before_request
def check_message() -> None:
    """Refuse a message without the secret, then a malformed one, before
    the body is trusted or the conversation touched.
    """
    if request.endpoint == "bot.webhook":
        verify_secret()
        message()


@bp.get("/")
def about() -> dict[str, t.Any]:
    """What to send to the bot."""
    return {
        "webhook": "POST /webhook",
        "example": {"platform": "console", "user_id": "42", "text": "Hi"},
        "header": f"{SECRET_HEADER}: <BOT_WEBHOOK_SECRET>",
        "commands": {"/state": "show the chat's state", "/reset": "start over"},
    }


@bp.post("/webhook")
@begin_conversation(id="chat", join=True, description="Chat")
def webhook() -> dict[str, list[str]]:
    """Answer one message. The chat's conversation begins with the first
    message and every later one joins it, by its natural id ``chat``.
    """
    text = message()["text"].strip()
    if text == "/state":
        # Bottender's console command: the state as JSON.
        return {"replies": [json.dumps(dict(conversation), sort_keys=True)]}
    if text == "/reset":
        conversation.reset()
        return {"replies": ["I forgot everything. Say hi!"]}
    return {"replies": answer(text)}


def answer(text: str) -> list[str]:
    """The counting bot and the nickname bot in one.

    :param text: what the user wrote.
    """
    conversation["count"] += 1
    replies = [f"Count: {conversation['count']}"]
    if conversation["asking"]:
        conversation.update(nickname=text, asking=False)
        replies.append(f"Hello {text}")
    elif conversation["nickname"] is None:
        conversation.update(asking=True)
        replies.append("Hi, what's your nickname?")
    else:
        replies.append(f"Nice to hear from you, {conversation['nickname']}.")
    return replies
