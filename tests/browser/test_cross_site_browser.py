"""Another site posts to the booking example from the user's own browser
(issue of forged begins: before, 32 of them evicted a user's booking).
Chromium does not send the ``SameSite=Lax`` session cookie with another
site's form, and the form has no CSRF token: the post is refused and the
user's booking is untouched.
"""

from __future__ import annotations

import typing as t

from flask import Flask
from playwright.sync_api import BrowserContext
from playwright.sync_api import expect

from examples.booking import create_app


def evil_site(target: str) -> Flask:
    """A page on another site that posts to ``target`` as soon as it loads."""
    app = Flask(__name__)

    @app.get("/")
    def page() -> str:
        return (
            f'<form id="f" method="post" action="{target}"></form>'
            "<script>document.getElementById('f').submit()</script>"
        )

    return app


def test_forged_post_from_another_site_is_refused(
    context: BrowserContext, serve: t.Callable[[Flask], str], store_config: dict[str, t.Any]
) -> None:
    site = serve(create_app({**store_config, "SECRET_KEY": "browser-tests"}))
    # "localhost" and "127.0.0.1" are different sites to the browser.
    evil = serve(evil_site(f"{site}/hotels/2/book")).replace("127.0.0.1", "localhost")

    user = context.new_page()
    user.goto(f"{site}/hotels/1")
    user.get_by_role("button", name="Book").click()
    expect(user.get_by_role("heading", level=1)).to_contain_text("When are you coming")
    booking_url = user.url

    attacked = context.new_page()
    responses = []
    attacked.on("response", lambda r: responses.append((r.request.method, r.url, r.status)))
    attacked.goto(evil)
    expect(attacked.get_by_role("heading", level=1)).to_have_text("Bad Request")
    expect(attacked.locator("body")).to_contain_text("CSRF")
    assert ("POST", f"{site}/hotels/2/book", 400) in responses

    user.goto(site + "/")
    sidebar = user.locator(".open-bookings")
    expect(sidebar).to_contain_text("Booking: Harbour View")
    expect(sidebar).not_to_contain_text("Alpine Lodge")
    user.goto(booking_url)
    expect(user.get_by_role("heading", level=1)).to_contain_text("When are you coming")
