"""The examples of ``docs/htmx.rst`` in a real browser, with the real htmx
(2 and 4): the application the page builds, its templates, and its
JavaScript, run as a reader would run them.
"""

from __future__ import annotations

import json
import re
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from flask import render_template
from flask import render_template_string
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect
from playwright.sync_api import Page

from flask_conversation import conversation
from tests.npm_packages import npm_file
from tests.test_docs import parse

PAGE = Path(__file__).parent.parent.parent / "docs" / "htmx.rst"


@pytest.fixture(params=["2", "4"], ids=["htmx2", "htmx4"])
def htmx_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def docs_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Flask, list[str]]:
    """The page's application, after its examples and checks ran, with a
    view of the tests' own, and the page's JavaScript examples.
    """
    monkeypatch.chdir(tmp_path)
    templates: dict[str, str] = {}
    namespace: dict[str, t.Any] = {"__name__": "docs_htmx", "templates": templates}
    blocks = parse(PAGE)
    # The last block runs the page's checks: the application's setup ends there.
    *setup, checks = blocks
    for block in setup:
        if block.kind == "template":
            templates[t.cast(str, block.caption)] = block.code
        else:
            exec(compile(block.code, f"{PAGE.name}:{block.line}", "exec"), namespace)
    app: Flask = namespace["app"]
    add_static_cid_page(app)
    exec(compile(checks.code, f"{PAGE.name}:{checks.line}", "exec"), namespace)
    text = PAGE.read_text(encoding="utf-8")
    scripts = re.findall(r"\.\. code-block:: javascript\n\n((?:    .*\n|\n)+)", text)
    return app, [re.sub(r"(?m)^    ", "", s).strip() for s in scripts]


def add_static_cid_page(app: Flask) -> None:
    """``POST /static-cid-page``: begins a conversation and answers a whole
    page around the ``<body>`` of ``static-cid.html``, with htmx and
    without the page script.
    """

    @app.post("/static-cid-page")
    def static_cid_page() -> str:
        conversation.begin()
        return render_template_string(
            '<!doctype html><html><head><script src="{{ url }}"></script></head>'
            "{{ body|safe }}"
            '<div><button hx-post="/total" hx-target="#out">Total</button></div>'
            '<pre id="out"></pre></body></html>',
            url=htmx_url(),
            body=render_template("static-cid.html"),
        )


def htmx_url() -> str:
    text = PAGE.read_text(encoding="utf-8")
    found = re.search(r'<script src="(https://[^"]+htmx[^"]+)"', text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def window(context: BrowserContext, htmx_version: str) -> BrowserContext:
    script = npm_file("htmx.org", htmx_version, "dist/htmx.min.js")
    context.route(
        htmx_url(),
        lambda route: route.fulfill(path=str(script), content_type="text/javascript"),
    )
    return context


def open_page(window: BrowserContext, url: str) -> Page:
    page = window.new_page()
    page.goto(url)
    page.wait_for_function("() => window.htmx && window.flaskConversation")
    return page


def add(page: Page, item: str) -> None:
    page.get_by_label("Item").fill(item)
    with page.expect_response(re.compile(r"/items$")):
        page.get_by_role("button", name="Add").click()
    expect(page.locator("#items li").last).to_have_text(item)


def test_page_script_gives_each_tab_its_list(
    window: BrowserContext,
    docs_app: tuple[Flask, list[str]],
    serve: t.Callable[[Flask], str],
) -> None:
    app, scripts = docs_app
    site = serve(app)
    first, second = open_page(window, site), open_page(window, site)
    add(first, "tea")
    add(second, "bread")
    add(first, "milk")
    expect(first.locator("#items li")).to_have_text(["tea", "milk"])
    expect(second.locator("#items li")).to_have_text(["bread"])
    cids = [p.evaluate("() => window.flaskConversation.cid") for p in (first, second)]
    assert None not in cids and cids[0] != cids[1]

    # The page's JavaScript example, as written, carries the tab's cid.
    [fetch_total] = scripts
    for page, items, cid in ((first, 2, cids[0]), (second, 1, cids[1])):
        total = page.evaluate(f"async () => {{ {fetch_total}\n return total; }}")
        assert total == {"items": items, "cid": cid}

    # A reload renders the page without a cid: a new list begins.
    first.reload()
    first.wait_for_function("() => window.flaskConversation")
    assert first.evaluate("() => window.flaskConversation.cid") is None


def test_hx_headers_reach_every_element_in_both_versions(
    window: BrowserContext,
    docs_app: tuple[Flask, list[str]],
    serve: t.Callable[[Flask], str],
) -> None:
    app, _ = docs_app
    site = serve(app)
    page = window.new_page()
    # A page rendered in a conversation, loaded without the page script.
    page.goto(site + "/")
    html = page.evaluate("async () => (await fetch('/static-cid-page', {method: 'POST'})).text()")
    page.set_content(html)
    page.wait_for_function("() => window.htmx")
    page.get_by_role("button", name="Total").click()
    expect(page.locator("#out")).not_to_be_empty()
    answer = json.loads(page.locator("#out").inner_text())
    assert answer["items"] == 0
    assert answer["cid"] is not None
