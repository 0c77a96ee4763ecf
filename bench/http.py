"""Figure 6: HTTP throughput of the booking example's busiest page under
gunicorn (two workers), measured with ``wrk`` on 127.0.0.1, with and without
the conversation code. Without the example (``examples/booking``), a small
booking step of the benchmark's own (:mod:`bench.booking`) stands in.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.request
from pathlib import Path

from .apps import merge_cookies
from .redis_server import free_port
from .results import Row
from .results import skipped

ROOT = Path(__file__).resolve().parent.parent
PAGE = "/hotels/42/book"


def target() -> tuple[str, str]:
    """The module serving the page, and how the table names the page."""
    try:
        import examples.booking  # noqa: F401
    except ImportError:
        return "bench.booking", "bench's booking step (no example)"
    return "bench.example", "booking example review page"


class Gunicorn:
    """A gunicorn master with two workers serving one variant of the page.

    :param module: :mod:`bench.example` or :mod:`bench.booking`.
    :param variant: ``"conversation"`` or ``"plain"``.
    :param redis_url: the Redis server for ``RedisStore``.
    """

    def __init__(self, module: str, variant: str, redis_url: str) -> None:
        self.module = module
        self.variant = variant
        self.redis_url = redis_url
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env["BENCH_REDIS_URL"] = self.redis_url
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                f"{self.module}:create_app('{self.variant}')",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"gunicorn exited: {err[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("gunicorn did not start within 30 seconds.")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: t.Any) -> None:
        self.stop()


def _begin(server: Gunicorn, tabs: int) -> list[tuple[str, str]]:
    """Open ``tabs`` bookings on ``server``, each by a different user (its
    own session), and check that the page answers: the ``(path, cookie)``
    of each, for wrk to take in turn.
    """
    if server.module == "bench.example":
        from .example import open_booking
        from .example import open_plain_page
        from .example import PAGE as EXAMPLE_PAGE

        if server.variant == "plain":
            return [(EXAMPLE_PAGE, open_plain_page(server.port))] * tabs
        return [open_booking(server.port) for _ in range(tabs)]
    if server.variant == "plain":
        return [(PAGE, "")] * tabs
    opened = []
    for _ in range(tabs):
        req = urllib.request.Request(server.base + "/hotels/42/begin", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as rv:
            cid = rv.headers["X-Conversation-Id"]
            cookie = merge_cookies("", rv.headers.get_all("Set-Cookie") or ())
        path = f"{PAGE}?cid={cid}"
        check = urllib.request.Request(server.base + path, headers={"Cookie": cookie})
        with urllib.request.urlopen(check, timeout=10) as rv:
            if rv.status != 200 or rv.headers.get("X-Conversation-Id") != cid:
                raise RuntimeError(f"booking page answered {rv.status} without the cid")
        opened.append((path, cookie))
    return opened


def _size(server: Gunicorn, path: str, cookie: str) -> int:
    """The size of the page, to show that both variants send the same."""
    headers = {"Cookie": cookie} if cookie else {}
    req = urllib.request.Request(server.base + path, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as rv:
        return len(rv.read())


def _script(requests: list[tuple[str, str]], directory: Path) -> Path:
    """A wrk script sending the requests in turn: with more bookings than
    connections, requests in flight always belong to different bookings,
    like browser tabs that each wait for their page.
    """
    lines = ["local reqs = {}", "local i = 0", "function init(args)"]
    for path, cookie in requests:
        headers = f'{{["Cookie"] = "{cookie}"}}' if cookie else "{}"
        lines.append(f'  reqs[#reqs + 1] = wrk.format("GET", "{path}", {headers})')
    lines += [
        "end",
        "function request()",
        "  i = i % #reqs + 1",
        "  return reqs[i]",
        "end",
    ]
    path = directory / "requests.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _wrk(base: str, script: Path, seconds: float, connections: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def figure_6(
    redis_url: str | None, rounds: int = 5, seconds: float = 5, connections: int = 8
) -> list[Row]:
    """Requests per second of the booking page, conversation against plain,
    in alternating wrk runs.

    :param redis_url: the throwaway Redis server, ``None`` to skip.
    :param rounds: alternating rounds.
    :param seconds: length of one wrk run.
    :param connections: wrk's open connections.
    """
    module, page = target()
    what = f"HTTP req/s, {page}, gunicorn -w 2, RedisStore"
    if redis_url is None:
        return [skipped("6", what, "no Redis server")]
    if shutil.which("wrk") is None:
        return [skipped("6", what, "wrk not installed (apt-get install wrk)")]
    try:
        import flask_conversation.stores.redis  # noqa: F401
    except ImportError as e:
        return [skipped("6", what, f"RedisStore not importable ({e})")]
    with contextlib.ExitStack() as stack:
        plain = stack.enter_context(Gunicorn(module, "plain", redis_url))
        conv = stack.enter_context(Gunicorn(module, "conversation", redis_url))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-wrk-")))
        (tmp / "plain").mkdir()
        (tmp / "conv").mkdir()
        tabs = connections * 4
        base_reqs = _begin(plain, tabs)
        subj_reqs = _begin(conv, tabs)
        sizes = (_size(plain, *base_reqs[0]), _size(conv, *subj_reqs[0]))
        base_script = _script(base_reqs, tmp / "plain")
        subj_script = _script(subj_reqs, tmp / "conv")
        base_url, subj_url = plain.base, conv.base
        # Warm up the workers (imports, template compilation, connections).
        _wrk(base_url, base_script, 1, connections)
        _wrk(subj_url, subj_script, 1, connections)
        base_rps: list[float] = []
        subj_rps: list[float] = []
        ratios: list[float] = []
        for i in range(rounds):
            if i % 2 == 0:
                b = _wrk(base_url, base_script, seconds, connections)
                s = _wrk(subj_url, subj_script, seconds, connections)
            else:
                s = _wrk(subj_url, subj_script, seconds, connections)
                b = _wrk(base_url, base_script, seconds, connections)
            base_rps.append(b)
            subj_rps.append(s)
            ratios.append(s / b)
    ratio = statistics.median(ratios)
    return [
        Row(
            figure="6",
            what=what,
            baseline="same page, conversation code removed",
            result=f"{ratio:.3f}",
            target=">= 0.85",
            met=ratio >= 0.85,
            absolute=(
                f"{statistics.median(subj_rps):.0f} vs {statistics.median(base_rps):.0f} req/s"
            ),
            value=ratio,
            extra={
                "subject": subj_rps,
                "baseline": base_rps,
                "rounds": ratios,
                "seconds": seconds,
                "connections": connections,
                "page_bytes": {"baseline": sizes[0], "subject": sizes[1]},
                "module": module,
            },
        )
    ]
