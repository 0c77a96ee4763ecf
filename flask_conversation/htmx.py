"""htmx and JavaScript: the page's side of propagation.

A page updated in fragments sends the cid with its htmx and ``fetch()``
requests instead of in links and forms. Two template helpers do it:
:func:`conversation_hx_headers` for ``hx-headers``, and
:func:`conversation_script` for a small script, shipped with the package
and served by the extension, that also follows the cid a fragment's response
announces.
"""

from __future__ import annotations

import json

from flask import Blueprint
from flask import current_app
from flask import url_for
from markupsafe import escape
from markupsafe import Markup

from .propagation import current_cid

#: Serves ``static/conversation.js`` under a path of its own; registered by
#: :meth:`~flask_conversation.ConversationScope.init_app`.
blueprint = Blueprint(
    "flask_conversation",
    __name__,
    static_folder="static",
    static_url_path="/_flask_conversation/static",
)

#: The script :func:`conversation_script` loads, in :data:`blueprint`'s
#: static folder.
SCRIPT = "conversation.js"


class _AttributeJSON(str):
    """JSON text that escapes itself for an HTML attribute when a template
    outputs it, so it works between double quotes as between single ones,
    and stays plain JSON everywhere else.
    """

    __slots__ = ()

    def __html__(self) -> str:
        return str(escape(str(self)))


def conversation_hx_headers() -> str:
    """The JSON text of ``{CONVERSATION_HEADER: cid}`` for the cid to
    propagate, or ``{}`` when there is none. A Jinja global, for htmx's
    ``hx-headers``; a template escapes it for the attribute it is in:

    .. code-block:: html+jinja

        <body hx-headers="{{ conversation_hx_headers() }}">

    htmx 2 passes ``hx-headers`` down to every element inside; htmx 4 only
    when written ``hx-headers:inherited``.

    .. versionadded:: 0.1
    """
    cid = current_cid()
    if cid is None:
        return _AttributeJSON("{}")
    header = current_app.config["CONVERSATION_HEADER"]
    return _AttributeJSON(json.dumps({header: cid}))


def conversation_script(nonce: str | None = None) -> Markup:
    """The ``<script>`` tag of the package's page script. A Jinja global;
    include it once per page, before the scripts that make requests:

    .. code-block:: html+jinja

        <head>
          {{ conversation_script(nonce=csp_nonce) }}
          <script src="https://unpkg.com/htmx.org@2"></script>
        </head>

    For the htmx and ``fetch()`` requests of the page to its own origin, the
    script sends the cid the page was rendered with, in the
    ``CONVERSATION_HEADER`` header. It then follows the server: after a
    response that names another cid (a conversation begun, nested or ended
    back to its parent in a fragment) it sends that one, and after a
    successful response without the header to a request that carried the
    cid (the conversation ended) it sends none. Its state lives in the page,
    so every tab has its own. A request that names a cid itself (in its URL
    or a form field, or a ``fetch()`` with the header set) is left as it is.

    :param nonce: the nonce of the page's Content Security Policy, if it
        allows scripts by nonce.

    .. versionadded:: 0.1
    """
    config = current_app.config
    attributes = {
        "src": url_for(f"{blueprint.name}.static", filename=SCRIPT),
        "data-header": config["CONVERSATION_HEADER"],
        "data-param": config["CONVERSATION_PARAM"],
    }
    cid = current_cid()
    if cid is not None:
        attributes["data-cid"] = cid
    if nonce:
        attributes["nonce"] = nonce
    rendered = Markup("").join(Markup(' {}="{}"').format(k, v) for k, v in attributes.items())
    return Markup("<script{}></script>").format(rendered)
