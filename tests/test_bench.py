"""The benchmark command runs on tiny inputs and prints its table. No
timing is asserted: the figures are only meaningful from a full run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(tmp_path: Path, *args: str) -> tuple[str, dict[str, object]]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--rounds",
            "1",
            "--batch-seconds",
            "0.002",
            "--json",
            str(results),
            "--plot",
            str(tmp_path / "plot.png"),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(results.read_text())


def test_in_process_figures(tmp_path: Path) -> None:
    out, results = run_bench(tmp_path, "--figures", "1,2,3,4,5,7", "--counts", "1,3")
    assert "| what" in out and "| result" in out
    rows = results["rows"]
    assert isinstance(rows, list)
    figures = [row["figure"] for row in rows]
    assert sorted(set(figures)) == ["1", "2", "3", "4", "5", "7"]
    # Redis is real here: nothing may have been skipped.
    assert not [row for row in rows if row["result"].startswith("skipped")], out
    for row in rows:
        assert f"| {row['what']}" in out
    # Two stores times two counts, each with its ratio to one conversation.
    assert sorted(
        (r["extra"]["store"], r["extra"]["live"]) for r in rows if r["figure"] == "4"
    ) == [
        ("MemoryStore", 1),
        ("MemoryStore", 3),
        ("RedisStore", 1),
        ("RedisStore", 3),
    ]
    # A conversation in use costs round trips; an untouched one none.
    trips = {row["what"]: row["value"] for row in rows if row["figure"] == "5"}
    assert trips["Redis round trips per request, use"] > 0
    assert trips["Redis round trips per request, no use (names a cid)"] == 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out
    else:
        assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_http_figure(tmp_path: Path) -> None:
    out, results = run_bench(
        tmp_path, "--figures", "6", "--http-rounds", "1", "--http-seconds", "1"
    )
    (row,) = results["rows"]
    assert row["figure"] == "6"
    assert row["value"] > 0, out
    if row["extra"]["module"] == "bench.example":
        # The page without conversation code sends the same HTML.
        sizes = row["extra"]["page_bytes"]
        assert sizes["baseline"] == sizes["subject"]


# The shortcuts taken for speed must not change what the code does.


def test_memory_store_shortcut_commits_like_plan_commit() -> None:
    import random

    from flask_conversation.stores.base import CommitBatch
    from flask_conversation.stores.base import ConversationRecord
    from flask_conversation.stores.base import ConversationStore
    from flask_conversation.stores.memory import MemoryStore

    class Reference(MemoryStore):
        def commit(self, namespace: str, batch: CommitBatch) -> list[tuple[str, str]]:
            return ConversationStore.commit(self, namespace, batch)

    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    rng = random.Random(1)
    ids = [f"c{i}" for i in range(12)]
    for _ in range(100):
        clock = Clock()
        size = rng.choice([5, 50, 1000])
        fast, reference = MemoryStore(size, clock=clock), Reference(size, clock=clock)
        for _ in range(40):
            clock.now += rng.choice([0, 1, 5, 30])
            saves = []
            for cid in rng.sample(ids, rng.randint(0, 3)):
                parent = rng.choice([None, None, rng.choice(ids)])
                parent = None if parent == cid else parent
                saves.append(
                    ConversationRecord(
                        id=cid,
                        namespace="n",
                        parent_id=parent,
                        root_id=parent or cid,
                        depth=1 if parent else 0,
                        data="{}",
                        description=None,
                        timeout=rng.choice([10, 60]),
                        created_at=clock.now,
                        last_access=clock.now,
                        ended=rng.random() < 0.1,
                    )
                )
            deletes = {cid: "ended" for cid in rng.sample(ids, rng.choice([0, 0, 0, 1]))}
            limit = rng.choice([3, 6, 32])
            results = [
                store.commit(
                    "n", CommitBatch(saves=list(saves), deletes=dict(deletes), max_count=limit)
                )
                for store in (fast, reference)
            ]
            assert sorted(results[0]) == sorted(results[1])
            kept = [
                sorted((r.id, r.last_access, r.ended) for r in store.list_namespace("n"))
                for store in (fast, reference)
            ]
            assert kept[0] == kept[1]


def test_redis_store_shortcut_commits_like_plan_commit(redis_client: t.Any) -> None:
    """The commit script saves a batch directly when nothing can have
    expired and the namespace fits: the same result as its full rules,
    which the reference always runs (its index never knows its earliest
    expiry).
    """
    import random

    from flask_conversation.stores.base import CommitBatch
    from flask_conversation.stores.base import ConversationRecord
    from flask_conversation.stores.redis import RedisStore

    class Reference(RedisStore):
        def commit(self, namespace: str, batch: CommitBatch) -> list[tuple[str, str]]:
            self.client.hdel(self.index_key(namespace), "~e")
            return super().commit(namespace, batch)

    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    rng = random.Random(2)
    ids = [f"c{i}" for i in range(12)]
    for run in range(40):
        clock = Clock()
        fast = RedisStore(redis_client, prefix=f"eq{run}:", clock=clock)
        reference = Reference(redis_client, prefix=f"ref{run}:", clock=clock)
        for step in range(40):
            clock.now += rng.choice([0, 0.25, 1, 5, 30])
            saves = []
            for cid in rng.sample(ids, rng.randint(0, 3)):
                parent = rng.choice([None, None, rng.choice(ids)])
                parent = None if parent == cid else parent
                saves.append(
                    ConversationRecord(
                        id=cid,
                        namespace="n",
                        parent_id=parent,
                        root_id=parent or cid,
                        depth=1 if parent else 0,
                        data="{}",
                        description=None,
                        timeout=rng.choice([10, 60, 0.5]),
                        created_at=clock.now,
                        last_access=clock.now,
                        ended=rng.random() < 0.1,
                    )
                )
            deletes = {cid: "ended" for cid in rng.sample(ids, rng.choice([0, 0, 0, 1]))}
            limit = rng.choice([3, 6, 32])
            if saves and rng.random() < 0.1:
                # The primitives keep the earliest expiry too.
                for store in (fast, reference):
                    store.save(saves[0])
                continue
            results = [
                store.commit(
                    "n", CommitBatch(saves=list(saves), deletes=dict(deletes), max_count=limit)
                )
                for store in (fast, reference)
            ]
            assert sorted(results[0]) == sorted(results[1]), (run, step)
            kept = [
                sorted(
                    (r.id, r.last_access, r.ended)
                    for r in store.list_namespace("n")
                    if r.expires_at > clock.now
                )
                for store in (fast, reference)
            ]
            assert kept[0] == kept[1], (run, step)


def test_redis_listing_with_the_lock_lists_like_list_namespace(redis_client: t.Any) -> None:
    """A request that holds a stack lists its namespace from the index the
    lock came with, in the same round trip: the same summaries as from
    ``list_namespace``, which a store without that listing uses.
    """
    import random

    from conftest import FakeClock
    from flask import Flask
    from flask import request

    from flask_conversation import conversation
    from flask_conversation import ConversationScope
    from flask_conversation.extension import conversations
    from flask_conversation.stores.redis import RedisStore
    from flask_conversation.testing import ConversationClient

    class Unlisted(RedisStore):
        listing_limit = -1

    clock = FakeClock()
    listed = {}
    stores = [
        RedisStore(redis_client, clock=clock, prefix="listed:"),
        Unlisted(redis_client, clock=clock, prefix="unlisted:"),
    ]
    for store in stores:
        app = Flask(__name__)
        app.config.update(SECRET_KEY="test", CONVERSATION_MAX_COUNT=6)
        ConversationScope(app, store=store)

        @app.post("/begin")
        def begin() -> dict[str, t.Any]:
            conversation.begin(
                id=request.args["id"],
                nested=bool(request.args.get("nested")),
                description=request.args.get("d"),
                timeout=float(request.args.get("timeout", 60)),
            )
            conversation["v"] = "x" * int(request.args.get("size", 1))
            return {"id": conversation.id}

        @app.post("/end")
        def end() -> str:
            conversation.end(before_redirect=False)
            return ""

        @app.get("/list")
        def listing() -> list[t.Any]:
            return [repr(i) for i in conversations()]

        rng = random.Random(3)
        clock.now = 1_700_000_000.0
        api = ConversationClient(app)
        tabs = [api.new_tab() for _ in range(4)]
        seen = []
        for step in range(60):
            tab = rng.choice(tabs)
            clock.advance(rng.choice([0, 1, 20, 45]))
            action = rng.random()
            if action < 0.35 or tab.cid is None:
                nested = "1" if tab.cid and rng.random() < 0.5 else ""
                tab.post(
                    f"/begin?id=c{step}&nested={nested}&d=t{rng.randint(0, 9)}"
                    f"&timeout={rng.choice([30, 60])}&size={rng.randint(1, 40)}"
                )
            elif action < 0.45:
                tab.post("/end")
            else:
                rv = tab.get("/list")
                if rv.status_code == 200:
                    seen.append(rv.json)
                else:
                    seen.append(rv.status_code)
                    tab.cid = None
        listed[type(store).__name__] = seen
    assert listed["RedisStore"] == listed["Unlisted"]
    assert any(isinstance(page, list) and len(page) > 2 for page in listed["RedisStore"])


def test_plain_data_shortcut_serializes_like_tagging() -> None:
    import datetime
    import json
    import uuid

    from markupsafe import Markup

    from flask_conversation.serialization import ConversationSerializer

    serializer = ConversationSerializer()

    def tagged(value: object) -> str:
        return json.dumps(
            serializer.tag(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )

    values = [
        1, "é", None, True, 1.5, [1, "a", [None]], {"a": {"b": [1]}},
        {" t": [1]}, {" di": {"x": 1}}, {"x": [{" u": "y"}]}, {" di": 1, "b": 2},
        (1, 2), b"ab", Markup("<b>"), uuid.UUID(int=5),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        {1: "a"}, {"a": {2: 3}}, float("nan"), [float("inf")], {"a": set()},
    ]  # fmt: skip
    for value in values:
        try:
            expected = tagged(value)
        except (TypeError, ValueError) as e:
            with pytest.raises(type(e)):
                serializer.dumps(value)
        else:
            assert serializer.dumps(value) == expected


def test_plain_text_shortcut_loads_like_untagging() -> None:
    """Text in which no string starts with a space holds no tag: loading it
    skips the untagging walk and gives what the walk gives.
    """
    import datetime
    import json
    import random
    import uuid

    from markupsafe import Markup

    from flask_conversation.serialization import ConversationSerializer

    serializer = ConversationSerializer()
    values: list[object] = [
        1, "é", None, [1, "a", [None]], {"a": {"b": [1]}}, {" t": [1]}, {" di": {"x": 1}},
        {"x": [{" u": "y"}]}, (1, 2), b"ab", Markup("<b>"), uuid.UUID(int=5),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), {"a": ' "x'},
    ]  # fmt: skip
    texts = [serializer.dumps(v) for v in values]
    # Written by hand: escapes a dumps never produces.
    texts += ['{"\\u0020t":[1,2]}', '{"a":{"\\u0020u":"0000000000000000000000000000000a"}}']
    rng = random.Random(6)
    pieces = ["a", " ", "t", '"', "\\", "{", "é"]
    for _ in range(300):
        key = "".join(rng.choices(pieces, k=rng.randint(1, 3)))
        inner: object = rng.choice([1, "x", [1], (1,), b"z"])
        texts.append(serializer.dumps({key: inner} if rng.random() < 0.5 else [{key: inner}]))
    for text in texts:
        expected = serializer._untag_scan(json.loads(text))
        assert serializer.loads(text) == expected
        assert type(serializer.loads(text)) is type(expected)
