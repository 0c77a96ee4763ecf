"""Talk to the bot example from a terminal.

Start the bot with ``flask --app examples.bot run``, then, with the same
``BOT_WEBHOOK_SECRET`` (or the one the bot logged at start)::

    $ BOT_WEBHOOK_SECRET=... python -m examples.bot.console
    You > Hi
    Bot > Count: 1
    Bot > Hi, what's your nickname?
    You > /state
    Bot > {"asking": true, "count": 1, "nickname": null}

``/state`` shows the state the server keeps for this chat, ``/reset``
clears it, ``/quit`` (or end of input) leaves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing as t
import urllib.error
import urllib.request

#: Sends one message and returns the bot's replies.
Sender = t.Callable[[str], list[str]]

#: The header the bot checks (``examples.bot.views.SECRET_HEADER``).
SECRET_HEADER = "X-Bot-Api-Secret-Token"


def http_sender(url: str, platform: str, user_id: str, secret: str, timeout: float = 10) -> Sender:
    """A :data:`Sender` that posts each message to the webhook at ``url``.

    :param url: the webhook URL.
    :param platform: the ``platform`` field of every message.
    :param user_id: the ``user_id`` field of every message.
    :param secret: the webhook's secret, sent in :data:`SECRET_HEADER`.
    :param timeout: seconds to wait for each answer.
    """

    def send(text: str) -> list[str]:
        body = json.dumps({"platform": platform, "user_id": user_id, "text": text})
        req = urllib.request.Request(
            url,
            data=body.encode(),
            headers={"Content-Type": "application/json", SECRET_HEADER: secret},
        )
        with urllib.request.urlopen(req, timeout=timeout) as response:
            replies: list[str] = json.load(response)["replies"]
        return replies

    return send


def chat(send: Sender, lines: t.Iterable[str], out: t.TextIO) -> None:
    """Send each line and print the replies, until ``/quit``.

    :param send: delivers a message to the bot.
    :param lines: what the user types, one message a line.
    :param out: where the conversation is printed.
    """
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text == "/quit":
            break
        for reply in send(text):
            print(f"Bot > {reply}", file=out, flush=True)


def _prompted(stdin: t.TextIO, out: t.TextIO) -> t.Iterator[str]:
    while True:
        if stdin.isatty():
            print("You > ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            return
        yield line


def main(
    argv: t.Sequence[str] | None = None,
    stdin: t.TextIO | None = None,
    stdout: t.TextIO | None = None,
) -> int:
    """Run the console.

    :param argv: the command line arguments, without the program name.
    :param stdin: where messages are read, by default :data:`sys.stdin`.
    :param stdout: where replies are printed, by default :data:`sys.stdout`.
    :return: the exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m examples.bot.console", description="Chat with the bot example."
    )
    parser.add_argument("--url", default="http://127.0.0.1:5000/webhook", help="webhook URL")
    parser.add_argument("--user", default="console-user", help="your user id in the chat")
    parser.add_argument(
        "--secret",
        default=os.environ.get("BOT_WEBHOOK_SECRET", ""),
        help="the webhook's secret (default: $BOT_WEBHOOK_SECRET)",
    )
    args = parser.parse_args(argv)
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    send = http_sender(args.url, "console", args.user, args.secret)
    try:
        chat(send, _prompted(stdin, stdout), stdout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code != 403:
            raise
        print(
            "The bot refused the message: set BOT_WEBHOOK_SECRET (or --secret) to the"
            " bot's secret; the bot logs the one it made up when it was started without it.",
            file=sys.stderr,
        )
        return 1
    except (urllib.error.URLError, ConnectionError) as e:
        print(
            f"Cannot reach the bot at {args.url} ({e}). Is `flask --app examples.bot run` running?",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
