"""The ``hidden-code`` directive: Python that the test suite runs with the
page's examples (setup, or checks that an example does what the text says)
but that the rendered page does not show.

.. code-block:: rst

    .. hidden-code::

        client = app.test_client()
        assert client.get("/").status_code == 200
"""

from __future__ import annotations

import typing as t

from docutils import nodes
from docutils.parsers.rst import Directive


class HiddenCode(Directive):
    has_content = True

    def run(self) -> list[nodes.Node]:
        return []


def setup(app: t.Any) -> dict[str, t.Any]:
    app.add_directive("hidden-code", HiddenCode)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
