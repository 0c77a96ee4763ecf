"""The benchmark command runs on tiny inputs and prints its table. No
timing is asserted: the figures are only meaningful from a full run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
    out, results = run_bench(tmp_path, "--figures", "1,2,3,4,5,7,8,9", "--counts", "1,3")
    assert "| what" in out and "| result" in out
    rows = results["rows"]
    assert isinstance(rows, list)
    figures = [row["figure"] for row in rows]
    assert sorted(set(figures)) == ["1", "2", "3", "4", "5", "7", "8", "9"]
    # Redis is real here: nothing may have been skipped.
    assert not [row for row in rows if row["result"].startswith("skipped")], out
    for row in rows:
        assert f"| {row['what']}" in out
    # Figures 1, 2, 3 and 9 measure their floors in the same run, without a target.
    floors = [row for row in rows if row["what"].startswith("floor:")]
    assert sorted(row["figure"] for row in floors) == ["1", "1", "2", "3", "9"]
    assert all(row["met"] is None and row["value"] > 0 for row in floors)
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
    # The server's time per request, both ways, and the ceiling it gives.
    server = [row for row in rows if row["figure"] == "9"]
    assert len(server) == 4
    assert all(row["value"] > 0 for row in server)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out
    else:
        assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def test_sql_figures(tmp_path: Path) -> None:
    out, results = run_bench(tmp_path, "--figures", "10,11", "--counts", "1,3")
    rows = results["rows"]
    assert isinstance(rows, list)
    # PostgreSQL is real here: nothing may have been skipped.
    assert not [row for row in rows if row["result"].startswith("skipped")], out
    assert sorted({row["figure"] for row in rows}) == ["10", "11"]
    ratios = [row for row in rows if row["figure"] == "10" and "read+write," in row["what"]]
    assert len(ratios) == 2 and all(row["value"] > 0 for row in ratios)
    counts = {row["what"]: row for row in rows if "transactions per" in row["what"]}
    ours = counts["SQL transactions per read+write request, SQLAlchemyStore"]
    assert ours["value"] == 2 and ours["met"], ours
    assert sorted(r["extra"]["live"] for r in rows if r["figure"] == "11") == [1, 3]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_http_figure(tmp_path: Path) -> None:
    out, results = run_bench(
        tmp_path, "--figures", "6", "--http-rounds", "1", "--http-seconds", "1"
    )
    fair, stateless = results["rows"]
    assert "Flask-Session" in fair["baseline"] and fair["target"] == ">= 0.90"
    assert "without state" in stateless["baseline"] and stateless["met"] is None
    for row in (fair, stateless):
        assert row["figure"] == "6"
        assert row["value"] > 0, out
    if fair["extra"]["module"] == "bench.example":
        # The three pages send the same HTML.
        sizes = fair["extra"]["page_bytes"]
        assert sizes["conversation"] == sizes["session"] == sizes["plain"]
