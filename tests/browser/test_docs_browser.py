"""The documentation in a real browser: the quickstart's ``app.py``, as a
newcomer pastes it, clicked through in two tabs; and every page on a
phone-sized screen.
"""

from __future__ import annotations

import re
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect
from playwright.sync_api import Page

from tests.browser.conftest import ARTIFACTS
from tests.test_docs import DOCS
from tests.test_docs import parse

PHONE = {"width": 390, "height": 844}


def quickstart_app() -> Flask:
    """The application of the quickstart's ``app.py`` block, run as
    ``flask --app app run`` would import it.
    """
    [block] = [b for b in parse(DOCS / "quickstart.rst") if b.caption == "app.py"]
    namespace: dict[str, t.Any] = {"__name__": "app"}
    exec(compile(block.code, "app.py", "exec"), namespace)
    return t.cast(Flask, namespace["app"])


def heading(page: Page) -> t.Any:
    return expect(page.get_by_role("heading", level=1))


def book(page: Page, site: str, hotel: str) -> None:
    page.goto(f"{site}/")
    heading(page).to_have_text("Hotels")
    page.locator("form", has_text=hotel).get_by_role("button", name="Book").click()
    heading(page).to_have_text(hotel)


def guests(page: Page, number: int) -> None:
    page.get_by_label("Guests").fill(str(number))
    page.get_by_role("button", name="Next").click()
    heading(page).to_have_text("Confirm")


def test_quickstart_in_two_tabs(
    context: BrowserContext, serve: t.Callable[[Flask], str], tmp_path: Path
) -> None:
    site = serve(quickstart_app())
    lisbon, innsbruck = context.new_page(), context.new_page()

    book(lisbon, site, "Harbour View, Lisbon")
    book(innsbruck, site, "Alpine Lodge, Innsbruck")
    assert "cid=" in lisbon.url and lisbon.url != innsbruck.url
    guests(lisbon, 2)
    guests(innsbruck, 3)
    expect(lisbon.get_by_text("Harbour View, Lisbon, 2 guests.")).to_be_visible()
    expect(innsbruck.get_by_text("Alpine Lodge, Innsbruck, 3 guests.")).to_be_visible()

    # Back one step by the link, and on with another number.
    lisbon.get_by_role("link", name="Change the guests").click()
    heading(lisbon).to_have_text("Harbour View, Lisbon")
    guests(lisbon, 4)
    lisbon.screenshot(path=str(ARTIFACTS / "quickstart-confirm.png"))

    innsbruck.get_by_role("button", name="Confirm").click()
    heading(innsbruck).to_have_text("Booked")
    expect(innsbruck.get_by_text("Alpine Lodge, Innsbruck, 3 guests.")).to_be_visible()
    lisbon.reload()
    lisbon.get_by_role("button", name="Confirm").click()
    heading(lisbon).to_have_text("Booked")
    expect(lisbon.get_by_text("Harbour View, Lisbon, 4 guests.")).to_be_visible()
    lisbon.screenshot(path=str(ARTIFACTS / "quickstart-booked.png"))

    # The confirmation shows once; then the way back is the link to /.
    response = innsbruck.reload()
    assert response is not None and response.status == 404
    lisbon.get_by_role("link", name="Book another hotel").click()
    heading(lisbon).to_have_text("Hotels")


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sphinx")
    pytest.importorskip("pallets_sphinx_themes")
    html = tmp_path_factory.mktemp("docs") / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(DOCS), str(html)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return html


@pytest.fixture
def phone(browser: Browser) -> t.Iterator[Page]:
    context = browser.new_context(viewport=PHONE)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_docs_fit_a_phone(built_docs: Path, phone: Page) -> None:
    """No page is wider than a 390 px screen: long names wrap, a wide table
    scrolls inside its own box, and the store comparison fits as it is.
    """
    too_wide = {}
    for page in sorted(p.stem for p in DOCS.glob("*.rst")):
        phone.goto((built_docs / f"{page}.html").as_uri())
        width = phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[page] = width
    assert too_wide == {}

    phone.goto((built_docs / "stores.html").as_uri())
    table = phone.locator("table.comparison")
    box = table.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert table.evaluate("t => t.scrollWidth <= t.clientWidth")
    expect(table.locator("tbody th.stub").first).to_have_text("where the data is")
    expect(table.locator("tbody th.stub").first).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    table.screenshot(path=str(ARTIFACTS / "docs-stores-table-390px.png"))
    assert re.search(r"69 of 80", table.inner_text())
