"""Hostile cids as raw bytes on a real socket, against gunicorn on Redis.

The test client builds well-formed requests; a real attacker does not. These
requests carry what only a raw socket can: bytes outside ASCII in a header,
the header twice, invalid percent-escapes, overlong UTF-8, odd charsets and
chunked bodies, request lines and headers past the server's limits. None may
answer with a 5xx or show the other user's data.
"""

from __future__ import annotations

import socket
import typing as t
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.hardening.processes import Gunicorn
from tests.hardening.processes import RedisProcess


def raw(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is and read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1])
    return status, answer


@pytest.fixture
def server(tmp_path: Path, fast_redis: RedisProcess) -> t.Iterator[Gunicorn]:
    env = {"FC_REDIS_URL": fast_redis.url, "FC_LOCK_TIMEOUT": "1"}
    with Gunicorn(env, tmp_path / "gunicorn.log", workers=1, threads=2) as server:
        yield server


def test_raw_hostile_requests(server: Gunicorn) -> None:
    victim = requests.Session()
    rv = victim.post(server.url + "/begin", data={"owner": "victim-secret"})
    foreign = rv.json()["id"]
    attacker = requests.Session()
    rv = attacker.post(server.url + "/begin", data={"owner": "attacker"})
    own = rv.json()["id"]
    cookie = "; ".join(f"{c.name}={c.value}" for c in attacker.cookies).encode()

    def request(
        target: bytes,
        headers: t.Sequence[bytes] = (),
        body: bytes = b"",
        method: bytes = b"POST",
    ) -> bytes:
        lines = [
            method + b" " + target + b" HTTP/1.1",
            b"Host: 127.0.0.1",
            b"Cookie: " + cookie,
            b"Connection: close",
            *headers,
        ]
        if body and not any(h.lower().startswith(b"transfer-encoding") for h in headers):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    o, f = own.encode(), foreign.encode()
    form = b"Content-Type: application/x-www-form-urlencoded"
    cases = {
        "latin-1 bytes in the header": request(b"/state", [b"X-Conversation-Id: \xff\xfe" + o]),
        "control bytes in the header": request(b"/state", [b"X-Conversation-Id: " + o + b"\x01"]),
        "header twice, foreign first": request(
            b"/state", [b"X-Conversation-Id: " + f, b"X-Conversation-Id: " + o]
        ),
        "header twice, own first": request(
            b"/state", [b"X-Conversation-Id: " + o, b"X-Conversation-Id: " + f]
        ),
        "header with underscores": request(b"/state", [b"X_Conversation_Id: " + f]),
        "padded header": request(b"/state", [b"X-Conversation-Id: \t " + o + b" \t"]),
        "invalid percent escape": request(b"/state?cid=%ZZ" + o),
        "percent-encoded NUL": request(b"/state?cid=" + o + b"%00"),
        "overlong UTF-8 dots": request(b"/state?cid=%C0%AE%C0%AE"),
        "raw UTF-8 in the target": request(b"/state?cid=\xc3\xbc" + o),
        "raw high bytes in the target": request(b"/state?cid=\xff" + o),
        "foreign in query, own in header": request(
            b"/state?cid=" + f, [b"X-Conversation-Id: " + o]
        ),
        "empty query, foreign form": request(b"/state?cid=", [form], b"cid=" + f),
        "utf-16 form": request(
            b"/state",
            [b"Content-Type: application/x-www-form-urlencoded; charset=utf-16"],
            ("cid=" + foreign).encode("utf-16"),
        ),
        "chunked form": request(
            b"/state",
            [form, b"Transfer-Encoding: chunked"],
            b"%x\r\ncid=%s\r\n0\r\n\r\n" % (len(f) + 4, f),
        ),
        "multipart with a file named cid": request(
            b"/state",
            [b"Content-Type: multipart/form-data; boundary=XyZ"],
            b'--XyZ\r\nContent-Disposition: form-data; name="cid"; filename="cid"\r\n\r\n'
            + f
            + b"\r\n--XyZ--\r\n",
        ),
        "request line past the limit": request(b"/state?cid=" + b"a" * 5000),
        "header past the limit": request(b"/state", [b"X-Conversation-Id: " + b"a" * 9000]),
        "glob and key syntax": request(b"/state?cid=" + quote("*:{" + foreign + "}:l:*").encode()),
    }
    statuses = {}
    for name, data in cases.items():
        status, answer = raw(server.port, data)
        statuses[name] = status
        assert status < 500, (name, answer[:300])
        assert b"victim-secret" not in answer, name
    # The padded header is the attacker's own cid: a real answer, so the
    # requests above did reach the application.
    assert statuses["padded header"] == 200, statuses
    assert statuses["header twice, foreign first"] == 404, statuses
    rv = victim.post(server.url + "/state", params={"cid": foreign})
    assert rv.json()["data"]["owner"] == "victim-secret"
    victim.close()
    attacker.close()
