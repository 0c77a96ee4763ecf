"""Sphinx configuration of the Flask-Conversation documentation."""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

from pallets_sphinx_themes import get_version
from pallets_sphinx_themes import ProjectLink

DOCS = Path(__file__).parent
sys.path.insert(0, str(DOCS.parent))
sys.path.insert(0, str(DOCS / "_ext"))

# Project --------------------------------------------------------------

project = "Flask-Conversation"
copyright = "2026, the Flask-Conversation contributors"
author = "the Flask-Conversation contributors"
release, version = get_version("Flask-Conversation")

# General --------------------------------------------------------------

default_role = "code"
extensions = [
    "sphinx.ext.autodoc",
    "pallets_sphinx_themes",
    "hidden_code",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
# Literal blocks (``::``) are plain text; Python is always an explicit
# ``code-block:: python``, which the test suite runs.
highlight_language = "text"
exclude_patterns = ["_build"]
nitpicky = False

# HTML -----------------------------------------------------------------

html_theme = "flask"
html_theme_options = {"index_sidebar_logo": False}
html_context = {
    "project_links": [
        ProjectLink("Flask Documentation", "https://flask.palletsprojects.com/"),
    ]
}
html_sidebars = {
    "index": ["project.html", "localtoc.html", "searchbox.html", "ethicalads.html"],
    "**": ["localtoc.html", "relations.html", "searchbox.html", "ethicalads.html"],
}
singlehtml_sidebars = {"index": ["project.html", "localtoc.html", "ethicalads.html"]}
html_static_path = ["_static"]
html_css_files = ["conversation.css"]
html_title = f"Flask-Conversation Documentation ({version})"
html_show_sourcelink = False


# RedisStore needs the optional ``redis`` package: without it (or before the
# store exists), describe it from its contract instead of failing the build.
REDIS_AUTODOC = ".. autoclass:: RedisStore\n    :members:\n"
REDIS_FALLBACK = """\
.. class:: RedisStore(client, prefix="conversation:")

    Keeps each conversation under its own Redis key with native expiry,
    locks stacks across processes, and hash-tags keys by namespace for
    Redis Cluster. Needs the ``redis`` extra (see Installation).

    :param client: a ``redis.Redis`` or ``redis.cluster.RedisCluster`` client.
    :param prefix: the prefix of every key.
"""


def _redis_fallback(app: object, docname: str, source: list[str]) -> None:
    if docname != "api" or REDIS_AUTODOC not in source[0]:
        return
    try:
        import flask_conversation.stores.redis  # noqa: F401
    except ImportError:
        source[0] = source[0].replace(REDIS_AUTODOC, REDIS_FALLBACK)


def setup(app: t.Any) -> None:
    app.connect("source-read", _redis_fallback)
