"""Run the Python of the documentation, so that it cannot rot.

Each page's ``.. code-block:: python`` and ``.. hidden-code::`` blocks run
in order, in one namespace per page, in a temporary directory: the shown
examples, and the hidden checks that they do what the text says.
``.. code-block:: html+jinja`` blocks whose caption is ``templates/NAME`` are
collected into the page's ``templates`` mapping (for a ``DictLoader``).

A page whose examples need an optional package that is not installed (the
Redis client, RedisStore, Flask-DebugToolbar) stops there and is skipped,
saying which; ``redis://localhost:6379/0`` and
``postgresql+psycopg://localhost/app`` in the examples are replaced with
throwaway servers started for the test.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import textwrap
import typing as t
from pathlib import Path

import pytest

import flask_conversation
from flask_conversation.config import DEFAULTS

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p for p in DOCS.glob("*.rst"))
OPTIONAL = {
    "redis",
    "flask_debugtoolbar",
    "flask_conversation.stores.redis",
    "sqlalchemy",
    "flask_sqlalchemy",
    "alembic",
    "psycopg",
}
EXAMPLE_REDIS_URL = "redis://localhost:6379/0"
EXAMPLE_POSTGRES_URL = "postgresql+psycopg://localhost/app"

DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. (?P<name>code-block|hidden-code)::\s*(?P<arg>\S*)\s*$")


@dataclasses.dataclass
class Block:
    kind: str  # "python" or "template"
    line: int
    code: str
    caption: str | None = None


def parse(path: Path) -> list[Block]:
    """The Python and template blocks of a page, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        i += 1
        if m is None:
            continue
        indent = len(m["indent"])
        options: dict[str, str] = {}
        while i < len(lines) and re.match(rf"^ {{{indent + 1},}}:\w+:", lines[i]):
            key, _, value = lines[i].strip()[1:].partition(":")
            options[key] = value.strip()
            i += 1
        start = i
        body: list[str] = []
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
        ):
            body.append(lines[i])
            i += 1
        code = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
        name, arg = m["name"], m["arg"]
        if name == "hidden-code" or arg in ("python", "python3", "py"):
            blocks.append(Block("python", start + 1, code, options.get("caption")))
        elif arg == "html+jinja" and options.get("caption", "").startswith("templates/"):
            blocks.append(Block("template", start + 1, code, options["caption"][10:]))
    return blocks


RUNNABLE = [p for p in PAGES if any(b.kind == "python" for b in parse(p))]


def test_every_page_is_found() -> None:
    names = {p.stem for p in PAGES}
    assert {"index", "quickstart", "custom-store", "config", "api", "cli"} <= names
    assert sum(len([b for b in parse(p) if b.kind == "python"]) for p in PAGES) > 40


@pytest.mark.parametrize("page", RUNNABLE, ids=[p.stem for p in RUNNABLE])
def test_page_examples_run(
    page: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    blocks = parse(page)
    monkeypatch.chdir(tmp_path)
    templates: dict[str, str] = {}
    namespace: dict[str, t.Any] = {"__name__": f"docs_{page.stem}", "templates": templates}
    for block in blocks:
        if block.kind == "template":
            assert block.caption is not None
            templates[block.caption] = block.code
            continue
        code = block.code
        if EXAMPLE_REDIS_URL in code:
            code = code.replace(EXAMPLE_REDIS_URL, _redis_url(request))
        if EXAMPLE_POSTGRES_URL in code:
            code = code.replace(EXAMPLE_POSTGRES_URL, str(request.getfixturevalue("postgres_url")))
        try:
            exec(compile(code, f"{page.name}:{block.line}", "exec"), namespace)
        except ModuleNotFoundError as e:
            if e.name in OPTIONAL:
                pytest.skip(f"{page.name}:{block.line} needs {e.name}")
            raise


def _redis_url(request: pytest.FixtureRequest) -> str:
    pytest.importorskip("redis")
    pytest.importorskip("flask_conversation.stores.redis")
    return str(request.getfixturevalue("redis_url"))


# -- the reference covers everything ---------------------------------------------------


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "config.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. py:data:: (CONVERSATION_\w+)$", text, re.M))
    assert documented == set(DEFAULTS)


def test_every_public_name_is_documented() -> None:
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. (?:auto\w+|data):: (\w+)", text, re.M))
    assert set(flask_conversation.__all__) - documented == set()
    assert {
        "ConversationStore",
        "ConversationRecord",
        "SessionStore",
        "MemoryStore",
        "RedisStore",
        "SQLAlchemyStore",
        "ConversationClient",
    } <= documented


def test_installation_matches_setup_cfg() -> None:
    """The installation page names the versions ``setup.cfg`` requires and
    explains every extra it defines.
    """
    import configparser

    setup = configparser.ConfigParser()
    setup.read(DOCS.parent / "setup.cfg", encoding="utf-8")
    text = (DOCS / "installation.rst").read_text(encoding="utf-8")
    python = setup["options"]["python_requires"].removeprefix(">=")
    flask = re.search(r"^flask>=([\d.]+)$", setup["options"]["install_requires"], re.M)
    assert flask is not None
    assert f"Python {python} or newer and Flask {flask[1]} or newer" in " ".join(text.split())
    extras = [name for name in setup["options.extras_require"]]
    documented = re.findall(r"^    \*   - ``([\w-]+)``$", text, re.M)
    assert documented == extras
    # Not on the package index: every pip command names a checkout or the repository.
    for command in re.findall(r"\$ pip install (.*)", text):
        assert command.startswith(("-e ", '"flask-conversation')), command
        assert "-e " in command or "git+" in command, command


def test_project_links_exist() -> None:
    """The sidebar links only to pages that exist: the package is not on
    the package index.
    """
    import importlib.util

    pytest.importorskip("pallets_sphinx_themes")
    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    assert spec is not None and spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    urls = [link.url for link in conf.html_context["project_links"]]
    assert urls == ["https://flask.palletsprojects.com/"]


def test_docs_build_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("pallets_sphinx_themes")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "html" / "index.html").exists()


def test_pictures_are_up_to_date(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_diagrams", DOCS / "diagrams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path in module.draw_all(tmp_path):
        committed = DOCS / "_static" / path.name
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} is stale: run python docs/diagrams.py"
        )
    # Every picture is shown somewhere.
    text = "".join(p.read_text(encoding="utf-8") for p in PAGES)
    for name in module.PICTURES:
        assert f"_static/{name}" in text
