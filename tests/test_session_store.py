"""SPEC 3.4 and 4: SessionStore specifics: the cookie guard, and where the
records live.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_conversation import conversation
from flask_conversation import ConversationError
from flask_conversation import ConversationScope
from flask_conversation.stores import SessionStore
from flask_conversation.testing import ConversationClient


@pytest.fixture
def cookie_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True)
    ConversationScope(app)
    app.test_client_class = ConversationClient

    @app.post("/begin")
    def begin() -> str:
        conversation.begin()
        return str(conversation.id)

    @app.post("/fill/<int:size>")
    def fill(size: int) -> str:
        # Random bytes do not compress: the cookie grows with the data.
        import os

        conversation["blob"] = os.urandom(size).hex()
        return "ok"

    @app.get("/size")
    def size() -> str:
        return str(len(conversation.get("blob", "")))

    return app


def test_default_store_is_session_store(cookie_app: Flask) -> None:
    assert isinstance(ConversationScope.get_store(cookie_app), SessionStore)


def test_cookie_guard_refuses_and_keeps_previous_state(cookie_app: Flask) -> None:
    client = cookie_app.test_client()
    client.post("/begin")
    assert client.post("/fill/500").status_code == 200
    with pytest.raises(ConversationError, match='CONVERSATION_STORE = "redis"') as exc:
        client.post("/fill/4000")
    assert "MAX_COOKIE_SIZE" in str(exc.value)
    assert client.get("/size").text == "1000"


def test_cookie_guard_is_500_in_production(cookie_app: Flask) -> None:
    cookie_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = cookie_app.test_client()
    cid = client.post("/begin").text
    client.post("/fill/100")
    assert client.post("/fill/4000").status_code == 500
    assert client.get(f"/size?cid={cid}").text == "200"


def test_cookie_guard_follows_max_cookie_size(cookie_app: Flask) -> None:
    cookie_app.config["MAX_COOKIE_SIZE"] = 600
    client = cookie_app.test_client()
    client.post("/begin")
    with pytest.raises(ConversationError):
        client.post("/fill/400")


def test_records_live_in_the_session(cookie_app: Flask) -> None:
    client = cookie_app.test_client()
    cid = client.post("/begin").text
    with client.session_transaction() as session:
        namespace = session["_conversation_ns"]
        assert list(session["_conversations"][namespace]) == [cid]


def test_namespace_token_only_when_begun(cookie_app: Flask) -> None:
    client = cookie_app.test_client()
    client.get("/size")
    with client.session_transaction() as session:
        assert "_conversation_ns" not in session


def test_cookie_guard_bound_is_never_below_the_real_value() -> None:
    """The guard's cheap bound skips the exact measure only when it is an
    upper bound of the value Flask writes, whatever the session holds.
    """
    import datetime
    import random
    import uuid

    from flask import session

    from flask_conversation.stores.cookie_size import json_bound
    from flask_conversation.stores.cookie_size import value_bound
    from flask_conversation.stores.session import SESSION_KEY

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", SECRET_KEY_FALLBACKS=["old"])
    interface = app.session_interface
    rng = random.Random(5)
    texts = ["", "a", " t", " di", "é", "日本", "\U0001f600", '"\\/', "\n\x00", "<&>"]
    extras: list[t.Any] = [
        (1, 2),
        b"\x00\xff",
        uuid.UUID(int=7),
        datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        {" t": [1]},
        [None, True, 1.5],
    ]
    compared = 0
    for _ in range(300):
        all_ns: dict[str, t.Any] = {}
        for _ in range(rng.randint(0, 3)):
            records = {}
            for _ in range(rng.randint(1, 3)):
                record: dict[str, t.Any] = {
                    "d": rng.choice(texts) * rng.randint(1, 30),
                    "t": rng.choice([1800, 0.5, 1e-7]),
                    "c": 1_700_000_000.123456,
                    "a": 1_700_000_000 + rng.random(),
                }
                if rng.random() < 0.3:
                    record.update(p="x", r="y", h=1, n=rng.choice(texts))
                if rng.random() < 0.2:
                    record["e"] = 1
                # Records as the store writes them (strings), and mappings.
                stored: t.Any = record
                if rng.random() < 0.5:
                    stored = '{"a":1.5,"t":60}' + rng.choice(texts) * rng.randint(1, 30)
                records[rng.choice(texts) + rng.choice(["", str(rng.randint(0, 99))])] = stored
            all_ns[rng.choice(texts + [" t", " di"])] = records
        current: dict[str, t.Any] = {"_conversation_ns": rng.choice(texts)}
        for _ in range(rng.randint(0, 2)):
            current[rng.choice(texts) + "k"] = rng.choice(extras)
        with app.test_request_context():
            session.update(current)
            bound = value_bound(app, interface, session, SESSION_KEY, all_ns)
            serializer = interface.get_signing_serializer(app)
            assert serializer is not None and bound is not None
            candidate = {**current, SESSION_KEY: all_ns}
            real = len(serializer.dumps(candidate))
            bound_of_json = json_bound(app, interface, session, SESSION_KEY, all_ns)
            real_json = len(interface.serializer.dumps(candidate).encode())
        assert real <= bound
        assert bound_of_json is not None and real_json <= bound_of_json
        compared += 1
    assert compared == 300


def test_cookie_guard_strings_bound_is_never_below_the_real_json() -> None:
    """The bound from lengths alone, for a session of strings, is never
    below the JSON Flask's session serializer writes, whatever the strings
    hold (quotes, control characters, text outside the BMP, tag-like keys).
    """
    import random

    from flask.sessions import SecureCookieSessionInterface

    from flask_conversation.stores.cookie_size import strings_bound
    from flask_conversation.stores.session import SESSION_KEY

    serializer = SecureCookieSessionInterface.serializer
    rng = random.Random(8)
    texts = ["", "a", " t", " di", "é", "日本", "\U0001f600", '"\\/', "\n\x00", "<&>", "\x7f"]
    texts += ["\u2028", '{"a":1.5,"t":60}{"k":"v"}']

    def text(most: int) -> str:
        return "".join(rng.choice(texts) for _ in range(rng.randint(0, most)))

    tightest = 0.0
    for _ in range(2000):
        all_ns = {
            text(3): {text(3): text(20) for _ in range(rng.randint(1, 3))}
            for _ in range(rng.randint(0, 3))
        }
        current = {text(2) + "k": text(5) for _ in range(rng.randint(0, 3))}
        bound = strings_bound(current, SESSION_KEY, all_ns)
        real = len(serializer.dumps({**current, SESSION_KEY: all_ns}).encode())
        assert bound is not None and real <= bound, (current, all_ns)
        tightest = max(tightest, real / bound)
    # Not so loose that the exact measure would run on every commit.
    assert tightest > 0.8
    assert strings_bound({"n": 1}, SESSION_KEY, {}) is None
    assert strings_bound({}, SESSION_KEY, {"ns": {"c": {"d": "{}"}}}) is None


def test_cookie_guard_overhead_follows_the_cookie_settings() -> None:
    """The guard's cookie length outside the value, kept per settings, is
    what Flask's Set-Cookie header has around the value, as the settings
    change.
    """
    from datetime import timedelta

    from flask import session

    from flask_conversation.stores.cookie_size import cookie_overhead

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test")
    # One cache through every variant, as a store keeps it.
    cache: dict[t.Any, int] = {}

    @app.get("/")
    def index() -> str:
        session["x"] = "v" * 40
        session.permanent = app.config["TEST_PERMANENT"]
        return str(cookie_overhead(app, app.session_interface, cache))

    variants: list[dict[str, t.Any]] = [
        {"TEST_PERMANENT": False},
        {"TEST_PERMANENT": True},
        {"TEST_PERMANENT": True, "PERMANENT_SESSION_LIFETIME": timedelta(days=400)},
        {"TEST_PERMANENT": False, "SESSION_COOKIE_NAME": "a-much-longer-cookie-name"},
        {"TEST_PERMANENT": False, "SESSION_COOKIE_DOMAIN": "example.org"},
        {"TEST_PERMANENT": False, "SESSION_COOKIE_PATH": "/app/"},
        {"TEST_PERMANENT": False, "APPLICATION_ROOT": "/root/"},
        {"TEST_PERMANENT": False, "SESSION_COOKIE_SECURE": True},
        {"TEST_PERMANENT": False, "SESSION_COOKIE_HTTPONLY": False},
        {"TEST_PERMANENT": False, "SESSION_COOKIE_SAMESITE": "Strict"},
        {"TEST_PERMANENT": False, "SESSION_COOKIE_PARTITIONED": True},
        {"TEST_PERMANENT": False},
    ]
    defaults = {k: app.config.get(k) for v in variants for k in v}
    overheads = set()
    # Each variant right after the defaults: a setting the cache missed
    # would give the defaults' length.
    for variant in [v for changed in variants for v in ({"TEST_PERMANENT": False}, changed)]:
        app.config.update(defaults)
        app.config.update(variant)
        rv = app.test_client().get("/")
        header = rv.headers["Set-Cookie"]
        value = header.partition("=")[2].partition(";")[0]
        assert int(rv.text) == len(header) - len(value), variant
        overheads.add(int(rv.text))
    assert len(overheads) > 5


def test_session_acquire_is_the_default_acquire() -> None:
    """SessionStore's one-read acquire finds the same chain, or none, as
    the default built on ``load_chain`` and ``lock``, for chains with
    expired, missing, ended, cyclic and malformed links.
    """
    import random

    from flask import session

    from flask_conversation.stores import ConversationRecord
    from flask_conversation.stores import ConversationStore
    from flask_conversation.stores.session import SESSION_KEY
    from flask_conversation.stores.session_format import encode

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test")
    now = 1_800_000_000.0
    store = SessionStore(clock=lambda: now)
    rng = random.Random(3)
    ids = ["a", "b", "c", "d", "e"]
    malformed: list[t.Any] = [5, None, "", "{}", '{"a":"x","t":1}{}', "[1]{}", {"a": now}]
    compared = found = 0
    for _ in range(800):
        records: dict[str, t.Any] = {}
        for cid in rng.sample(ids, rng.randint(0, len(ids))):
            parent = rng.choice(ids) if rng.random() < 0.6 else None
            record = ConversationRecord(
                id=cid,
                namespace="ns",
                parent_id=parent,
                root_id=cid if parent is None else rng.choice([parent, "a"]),
                depth=0 if parent is None else rng.randint(1, 3),
                data=rng.choice(['{"k":1}', '{" t":[1,2]}']),
                description=rng.choice([None, "x"]),
                timeout=60.0,
                created_at=now - 100,
                last_access=now - rng.choice([0, 30, 59.5, 60, 61]),
                ended=rng.random() < 0.1,
            )
            records[cid] = encode(record) if rng.random() < 0.9 else rng.choice(malformed)
        cid = rng.choice(ids)
        with app.test_request_context():
            session[SESSION_KEY] = {"ns": records}
            fast = store.acquire("ns", cid, 0)
            if fast is not None:
                store.unlock("ns", fast.root_id, fast.token)
            slow = ConversationStore.acquire(store, "ns", cid, 0)
            if slow is not None:
                store.unlock("ns", slow.root_id, slow.token)
        if fast is None or slow is None:
            assert fast is slow
        else:
            assert (fast.root_id, fast.chain, fast.listing) == (
                slow.root_id,
                slow.chain,
                slow.listing,
            )
            found += 1
        compared += 1
    assert compared == 800 and found > 60


def _records() -> list[t.Any]:
    """Records of every shape, their data written by the default
    serializer from plain and from tagged values.
    """
    import datetime
    import uuid

    from markupsafe import Markup

    from flask_conversation.serialization import ConversationSerializer
    from flask_conversation.stores import ConversationRecord

    serializer = ConversationSerializer()
    datas = [
        {},
        {"hotel": "h-42", "nights": 3, "rate": 99.5, "ok": True, "none": None},
        {"nested": {"list": [1, "two", {"three": 3}]}, "quote": 'say "hi" \\ [x]'},
        {"text": "é日本\U0001f600\n\x00", " t": "a key like a tag"},
        {"tuple": (1, 2)},
        {"bytes": b"\x00\xff", "uuid": uuid.UUID(int=7), "markup": Markup("<b>x</b>")},
        {"when": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)},
        {" t": [1]},
    ]
    descriptions = [None, "", "Booking [2] {x}", 'quo"te', "é日本\n"]
    records = []
    for i, data in enumerate(datas):
        for j, description in enumerate(descriptions):
            child = (i + j) % 2 == 1
            records.append(
                ConversationRecord(
                    id=f"c{i}-{j}",
                    namespace="ns",
                    parent_id="p" if child else None,
                    root_id="r" if child else f"c{i}-{j}",
                    depth=2 if child else 0,
                    data=serializer.dumps(data),
                    description=description,
                    timeout=[1800.0, 0.5, 60][j % 3],
                    created_at=1_700_000_000.123456 + i,
                    last_access=1_700_000_100 + j,
                    ended=j == 3,
                )
            )
    return records


def test_session_format_round_trips_what_the_compact_form_gives() -> None:
    """A record written as the session's string reads back as exactly the
    record the compact mapping gives, for data written from plain and from
    tagged values, also through Flask's signed session cookie.
    """
    from flask.sessions import SecureCookieSessionInterface

    from flask_conversation.serialization import ConversationSerializer
    from flask_conversation.stores import ConversationRecord
    from flask_conversation.stores.session_format import decode
    from flask_conversation.stores.session_format import encode

    app = Flask(__name__)
    app.config.update(SECRET_KEY="test")
    signer = SecureCookieSessionInterface().get_signing_serializer(app)
    assert signer is not None
    serializer = ConversationSerializer()
    records = _records()
    session = {"ns": {r.id: encode(r) for r in records}}
    loaded = signer.loads(signer.dumps(session))["ns"]
    for record in records:
        slow = ConversationRecord.from_dict("ns", record.id, record.to_dict())
        assert decode("ns", record.id, loaded[record.id]) == slow == record
        assert serializer.loads(loaded_data := slow.data) == serializer.loads(record.data)
        assert loaded_data == record.data


def test_malformed_session_values_hold_no_conversation(cookie_app: Flask) -> None:
    """Whatever the session holds under the store's key (other code wrote
    it, or a server-side session was changed), a request finds no
    conversation there and answers as for an unknown cid, never 500; the
    next conversation begins and commits over it.
    """
    from flask_conversation.stores.session import SESSION_KEY

    cookie_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = cookie_app.test_client()
    cid = client.post("/begin").text
    with client.session_transaction() as session:
        namespace = session["_conversation_ns"]
        good = session[SESSION_KEY][namespace][cid]
    values: list[t.Any] = [
        "x",
        [1],
        {namespace: "x"},
        {namespace: [good]},
        {namespace: {cid: 5}},
        {namespace: {cid: None}},
        {namespace: {cid: "garbage"}},
        {namespace: {cid: "{}"}},
        {namespace: {cid: '{"a":"x","t":1}{}'}},
        {namespace: {cid: '{"a":1,"t":1800}{}'}},
        {namespace: {cid: '{"a":1e300,"t":1800,"c":"x"}{}'}},
        {namespace: {cid: '{"a":1e300,"t":1800,"c":1,"p":5,"r":"x","h":1}{}'}},
        {namespace: {cid: '{"a":1e300,"t":1800,"c":1,"n":[1]}{}'}},
        {namespace: {cid: {"d": "{}", "a": 1e300, "t": 1800, "c": 1}}},
    ]
    for value in values:
        with client.session_transaction() as session:
            session[SESSION_KEY] = value
        assert client.get(f"/size?cid={cid}").status_code == 404, value
        assert client.post("/fill/10", query_string={"cid": cid}).status_code == 404, value
        client.cid = None
        other = client.post("/begin")
        assert other.status_code == 200, value
        assert client.post("/fill/10", query_string={"cid": other.text}).status_code == 200
        assert client.get(f"/size?cid={other.text}").text == "20", value
