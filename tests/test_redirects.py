"""The URL work of the redirect rules (SPEC 3.2, 7.1 and 9): which URLs a
response redirects to, which cids they carry, and removing a cid pair
without touching any other byte.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.wrappers import Response

from flask_conversation.redirects import redirect_urls
from flask_conversation.redirects import replace_redirect_url
from flask_conversation.redirects import strip_cids
from flask_conversation.redirects import url_cids

ENDED = {"abc"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # The cases a rewriting parser breaks: bytes that are not UTF-8, a
        # ';' inside a value, a parameter without '=', a fragment.
        ("/confirm?x=%FF%FE&cid=abc", "/confirm?x=%FF%FE"),
        ("/confirm?cid=abc&x=%FF%FE", "/confirm?x=%FF%FE"),
        ("/confirm?a=1;b=2&cid=abc", "/confirm?a=1;b=2"),
        ("/confirm?flag&cid=abc", "/confirm?flag"),
        ("/confirm?cid=abc&flag", "/confirm?flag"),
        ("/confirm?cid=abc#receipt", "/confirm#receipt"),
        ("/confirm?x=1&cid=abc#top?cid=abc", "/confirm?x=1#top?cid=abc"),
        # An emptied query loses its '?'.
        ("/confirm?cid=abc", "/confirm"),
        ("/confirm?cid=abc&cid=abc", "/confirm"),
        ("/confirm?&cid=abc&", "/confirm"),
        # Only the pairs of the parameter with an ended cid go.
        ("/c?a=1&cid=abc&b=2", "/c?a=1&b=2"),
        ("/c?cid=other&cid=abc", "/c?cid=other"),
        ("/c?next=abc&cid=abc", "/c?next=abc"),
        ("/c?xcid=abc&cid=abc", "/c?xcid=abc"),
        ("/c?cid=abc;x=1", "/c?cid=abc;x=1"),
        ("/c?cid=", "/c?cid="),
        # The server decodes names and values: so does the match.
        ("/c?c%69d=abc&x=+", "/c?x=+"),
        ("/c?cid=%61bc", "/c"),
        # Absolute URLs, spaces, non-ASCII as written.
        ("https://shop.example/r?sig=a%2Fb%3D&cid=abc", "https://shop.example/r?sig=a%2Fb%3D"),
        ("/r?q=caf%C3%A9+au+lait&cid=abc", "/r?q=caf%C3%A9+au+lait"),
        ("/r?q=café&cid=abc", "/r?q=café"),
        # Nothing to remove: the very same string.
        ("/r", "/r"),
        ("/r?", "/r?"),
        ("/r#cid=abc", "/r#cid=abc"),
        ("", ""),
    ],
)
def test_strip_cids_touches_only_the_cid_pairs(url: str, expected: str) -> None:
    assert strip_cids(url, "cid", ENDED) == expected


def test_strip_cids_uses_the_configured_parameter() -> None:
    assert strip_cids("/r?cid=abc&conv=abc", "conv", ENDED) == "/r?cid=abc"


def test_url_cids() -> None:
    assert url_cids("/r?cid=a&x=1&cid=b#cid=c", "cid") == ["a", "b"]
    assert url_cids("/r?c%69d=%61", "cid") == ["a"]
    assert url_cids("/r", "cid") == []
    assert url_cids("/r?flag", "flag") == [""]


# Query pairs as a view might write them: any text, percent-encoded or not.
_pair = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="&#"), max_size=12),
    st.binary(max_size=6).map(lambda b: "x=" + quote(b, safe="")),
)


@given(
    before=st.lists(_pair, max_size=5),
    after=st.lists(_pair, max_size=5),
    fragment=st.one_of(st.none(), st.text(max_size=8)),
)
def test_strip_cids_keeps_every_other_pair(
    before: list[str], after: list[str], fragment: str | None
) -> None:
    others = [p for p in before + after if "abc" not in url_cids("/?" + p, "cid")]
    tail = "" if fragment is None else "#" + fragment
    url = "/r?" + "&".join([*others[:2], "cid=abc", *others[2:]]) + tail
    expected_query = "&".join(others)
    expected = ("/r?" + expected_query if expected_query.strip("&") else "/r") + tail
    assert strip_cids(url, "cid", ENDED) == expected


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (302, {"Location": "/a?cid=1"}, {"Location": "/a?cid=1"}),
        (303, {"Location": "/a", "HX-Redirect": "/b"}, {"Location": "/a"}),
        (200, {"HX-Redirect": "/b?cid=1"}, {"HX-Redirect": "/b?cid=1"}),
        (204, {"HX-Location": "/c?cid=1"}, {"HX-Location": "/c?cid=1"}),
        (
            200,
            {"HX-Location": '{"path": "/c?cid=1", "target": "#main"}'},
            {"HX-Location": "/c?cid=1"},
        ),
        (200, {"HX-Location": ' {"path": "/c"}'}, {"HX-Location": "/c"}),
        (200, {"HX-Location": '{"target": "#main"}'}, {}),
        (200, {"HX-Location": '{"path": 3}'}, {}),
        (200, {"HX-Location": "{not json"}, {}),
        (200, {"Location": "/a"}, {}),
        (404, {"HX-Redirect": "/b"}, {}),
        (500, {"Location": "/a"}, {}),
        (
            200,
            {"HX-Redirect": "/b", "HX-Location": "/c"},
            {"HX-Redirect": "/b", "HX-Location": "/c"},
        ),
    ],
)
def test_redirect_urls(status: int, headers: dict[str, str], expected: dict[str, str]) -> None:
    assert redirect_urls(Response(status=status, headers=headers)) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"path": "/r?cid=abc", "target": "#main"}', '{"path": "/r", "target": "#main"}'),
        (
            '{ "target":"#main" ,"path":"/r?cid=abc&x=%FF" }',
            '{ "target":"#main" ,"path":"/r?x=%FF" }',
        ),
        ('{"path": "/caf\\u00e9?cid=abc"}', '{"path": "/caf\\u00e9"}'),
        ('{"path": "/café?cid=abc"}', '{"path": "/café"}'),
    ],
)
def test_replace_json_location_keeps_its_spelling(value: str, expected: str) -> None:
    response = Response(headers={"HX-Location": value})
    [url] = redirect_urls(response).values()
    replace_redirect_url(response, "HX-Location", strip_cids(url, "cid", ENDED))
    assert response.headers["HX-Location"] == expected


def test_replace_json_location_spelled_otherwise() -> None:
    # An encoder that escapes '/' (or repeats the path): written anew, with
    # the same members in the same order.
    value = '{"path": "\\/r?cid=abc", "source": "\\/r?cid=abc", "swap": "outerHTML"}'
    response = Response(headers={"HX-Location": value})
    replace_redirect_url(response, "HX-Location", "/r")
    assert json.loads(response.headers["HX-Location"]) == {
        "path": "/r",
        "source": "/r?cid=abc",
        "swap": "outerHTML",
    }
    assert list(json.loads(response.headers["HX-Location"])) == ["path", "source", "swap"]


def test_replace_plain_headers() -> None:
    response = Response(status=200, headers={"HX-Redirect": "/a?cid=abc", "HX-Location": "/b"})
    replace_redirect_url(response, "HX-Redirect", "/a")
    replace_redirect_url(response, "HX-Location", "/c")
    assert response.headers["HX-Redirect"] == "/a"
    assert response.headers["HX-Location"] == "/c"
