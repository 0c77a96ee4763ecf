"""Draw the pictures of the documentation as SVG files in ``_static/``.

The SVGs are committed, so building the documentation needs nothing but
Sphinx; run this after changing a picture::

    python docs/diagrams.py

The test suite checks that the committed files are what this script draws.
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

STATIC = Path(__file__).parent / "_static"

FONT = "font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif"
MONO = "font-family:'SFMono-Regular',Consolas,'Liberation Mono',monospace"
INK = "#1f2933"
MUTED = "#616e7c"
BLUE = "#2f6fb0"
BLUE_BG = "#e3eefa"
GREEN = "#2c7a3f"
GREEN_BG = "#e2f4e6"
ORANGE = "#b35c00"
ORANGE_BG = "#fdf0e1"
GREY_BG = "#f3f4f6"
RED = "#b42318"


class Svg:
    """A tiny SVG writer: enough for boxes, arrows and text."""

    def __init__(self, width: int, height: int, title: str) -> None:
        self.width = width
        self.height = height
        self.parts: list[str] = [f"<title>{escape(title)}</title>"]

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        fill: str = "white",
        stroke: str = INK,
        rx: float = 6,
        dash: bool = False,
        width: float = 1.5,
    ) -> None:
        extra = ' stroke-dasharray="6 4"' if dash else ""
        self.parts.append(
            f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{rx:g}"'
            f' fill="{fill}" stroke="{stroke}" stroke-width="{width:g}"{extra}/>'
        )

    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float = 14,
        anchor: str = "middle",
        color: str = INK,
        bold: bool = False,
        mono: bool = False,
        italic: bool = False,
    ) -> None:
        style = MONO if mono else FONT
        weight = ' font-weight="bold"' if bold else ""
        slant = ' font-style="italic"' if italic else ""
        self.parts.append(
            f'<text x="{x:g}" y="{y:g}" font-size="{size:g}" text-anchor="{anchor}"'
            f' fill="{color}" style="{style}"{weight}{slant}>{escape(s)}</text>'
        )

    def line(
        self,
        x1: float,
        y1: float,
        x2: float,
        y2: float,
        color: str = INK,
        arrow: bool = True,
        dash: bool = False,
        width: float = 1.5,
    ) -> None:
        marker = f' marker-end="url(#arrow-{color[1:]})"' if arrow else ""
        extra = ' stroke-dasharray="5 4"' if dash else ""
        self.parts.append(
            f'<line x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}" stroke="{color}"'
            f' stroke-width="{width:g}"{extra}{marker}/>'
        )

    def render(self) -> str:
        colors = sorted({INK, BLUE, GREEN, ORANGE, RED, MUTED})
        markers = "".join(
            f'<marker id="arrow-{c[1:]}" viewBox="0 0 10 10" refX="9" refY="5"'
            f' markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
            f'<path d="M0,0 L10,5 L0,10 z" fill="{c}"/></marker>'
            for c in colors
        )
        body = "\n".join(self.parts)
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}"'
            f' height="{self.height}" viewBox="0 0 {self.width} {self.height}"'
            f' role="img">\n<defs>{markers}</defs>\n'
            f'<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n'
        )


# -- temporary vs long-running ---------------------------------------------------


def temporary_vs_long_running() -> Svg:
    svg = Svg(
        900,
        300,
        "A temporary conversation lives for one request; a long-running one"
        " lives from begin() to end() across requests.",
    )
    xs = [100, 275, 450, 625, 800]
    labels = ["GET /hotels", "POST /book", "POST /guests?cid=K3", "POST /pay?cid=K3", "GET /hotels"]
    svg.text(20, 26, "one browser tab, time →", 13, anchor="start", color=MUTED)
    for x, label in zip(xs, labels, strict=True):
        svg.rect(x - 82, 40, 164, 34, fill=GREY_BG, stroke=MUTED)
        svg.text(x, 62, label, 12, mono=True)

    for x in (xs[0], xs[4]):
        svg.rect(x - 75, 100, 150, 62, fill=ORANGE_BG, stroke=ORANGE)
        svg.text(x, 120, "temporary", 14, bold=True, color=ORANGE)
        svg.text(x, 138, "id is None", 12, mono=True)
        svg.text(x, 154, "gone after the request", 11, color=MUTED)

    svg.rect(xs[1] - 75, 100, xs[3] - xs[1] + 150, 62, fill=BLUE_BG, stroke=BLUE)
    svg.text((xs[1] + xs[3]) / 2, 120, 'long-running, id = "K3"', 14, bold=True, color=BLUE)
    svg.text((xs[1] + xs[3]) / 2, 138, "the same data in every request, kept in the store", 12)
    svg.text((xs[1] + xs[3]) / 2, 154, '{"hotel": 7, "guests": 2}', 12, mono=True)

    svg.line(xs[1], 196, xs[1], 166, color=BLUE)
    svg.text(xs[1], 212, "conversation.begin()", 12, mono=True, color=BLUE, bold=True)
    svg.text(xs[1], 228, "the temporary one is promoted", 11, color=MUTED)
    svg.line(xs[3], 196, xs[3], 166, color=BLUE)
    svg.text(xs[3], 212, "conversation.end()", 12, mono=True, color=BLUE, bold=True)
    svg.text(xs[3], 228, "destroyed after this request", 11, color=MUTED)
    svg.text(
        450,
        275,
        "A request that never begins a conversation stores nothing and touches no store.",
        12,
        color=MUTED,
    )
    return svg


# -- a nested stack ------------------------------------------------------------------


def nested_stack() -> Svg:
    svg = Svg(
        760,
        360,
        "A stack of nested conversations: reads fall through to the"
        " ancestors, writes stay in the current conversation.",
    )
    levels = [
        ("root · depth 0", 'id="booking-7"', ["hotel: 7", "nights: 3", "guests: 2"]),
        ("child · depth 1", 'id="Vq9…"  parent="booking-7"', ['card: "visa"']),
        ("grandchild · depth 2", 'id="Zt2…"  parent="Vq9…"', ["guests: 3  (shadows 2)"]),
    ]
    y = 30
    for i, (title, ident, keys) in enumerate(levels):
        x = 40 + i * 40
        h = 40 + 18 * len(keys)
        current = i == len(levels) - 1
        svg.rect(
            x,
            y,
            380,
            h,
            fill=GREEN_BG if current else BLUE_BG,
            stroke=GREEN if current else BLUE,
            width=2.5 if current else 1.5,
        )
        svg.text(x + 12, y + 20, title, 13, anchor="start", bold=True)
        svg.text(x + 368, y + 20, ident, 11, anchor="end", mono=True, color=MUTED)
        for j, key in enumerate(keys):
            svg.text(x + 24, y + 42 + 18 * j, key, 12, anchor="start", mono=True)
        if i:
            svg.line(x + 20, y, x + 20, y - 10 + 0.01, color=MUTED, arrow=False)
        y += h + 22
    svg.text(240, y + 4, "conversation (current)", 12, color=GREEN, bold=True)

    svg.text(600, 50, 'conversation["hotel"]', 12, mono=True, bold=True)
    svg.text(600, 68, "→ 7, read from the root", 12)
    svg.text(600, 108, 'conversation["guests"]', 12, mono=True, bold=True)
    svg.text(600, 126, "→ 3, the child's own value", 12)
    svg.text(600, 166, 'conversation["x"] = 1', 12, mono=True, bold=True)
    svg.text(600, 184, "→ written to the grandchild;", 12)
    svg.text(600, 200, "ancestors never change", 12)
    svg.text(600, 240, "conversation.stack", 12, mono=True, bold=True)
    svg.text(600, 258, "→ [root, child, grandchild]", 12)
    svg.text(600, 274, "(breadcrumbs)", 12, color=MUTED)
    svg.line(520, 110, 470, 110, color=MUTED, arrow=False, dash=True)
    svg.text(
        380,
        345,
        "Like collections.ChainMap(grandchild, child, root). end() on the"
        " grandchild returns to the child.",
        12,
        color=MUTED,
    )
    return svg


# -- two tabs -----------------------------------------------------------------------------


def two_tabs() -> Svg:
    svg = Svg(
        760,
        360,
        "Two browser tabs of one user: one namespace, two stacks that never see each other.",
    )
    # Browser window with two tabs.
    svg.rect(20, 30, 300, 290, fill=GREY_BG, stroke=MUTED)
    svg.text(170, 52, "one browser, one session cookie", 12, color=MUTED)
    for i, (name, cid, url) in enumerate(
        [("Tab 1 · Paris", "A1", "/guests?cid=A1"), ("Tab 2 · Rome", "B7", "/dates?cid=B7")]
    ):
        y = 70 + i * 125
        svg.rect(40, y, 260, 105, fill="white", stroke=INK)
        svg.text(52, y + 22, name, 14, anchor="start", bold=True)
        svg.rect(52, y + 34, 236, 26, fill=GREY_BG, stroke=MUTED, rx=13)
        svg.text(64, y + 52, url, 12, anchor="start", mono=True)
        svg.text(52, y + 84, f"links and forms carry cid={cid}", 12, anchor="start", color=MUTED)
        svg.line(300, y + 47, 440, y + 47, color=BLUE)

    # The namespace with two stacks.
    svg.rect(430, 30, 310, 290, fill="white", stroke=INK, dash=True)
    svg.text(585, 52, "namespace (a token in the session)", 12, color=MUTED)
    for i, (cid, data) in enumerate([("A1", 'city: "Paris"'), ("B7", 'city: "Rome"')]):
        y = 90 + i * 125
        svg.rect(450, y - 24, 270, 80, fill=BLUE_BG, stroke=BLUE)
        svg.text(462, y - 4, f"stack {cid}", 13, anchor="start", bold=True)
        svg.text(708, y - 4, "own lock", 11, anchor="end", color=MUTED)
        svg.text(462, y + 20, data, 12, anchor="start", mono=True)
        svg.text(462, y + 40, "guests: 2", 12, anchor="start", mono=True)
    svg.text(
        380,
        345,
        "A request of tab 1 never waits for tab 2 and never overwrites"
        " its data (with MemoryStore or RedisStore).",
        12,
        color=MUTED,
    )
    return svg


# -- sequence diagrams ---------------------------------------------------------------------


def _int(v: object) -> int:
    assert isinstance(v, int)
    return v


class Sequence:
    """Participants side by side, messages top to bottom."""

    def __init__(self, title: str, participants: list[str], width: int = 900) -> None:
        self.title = title
        self.participants = participants
        self.width = width
        step = (width - 200) / (len(participants) - 1)
        self.x = {p: 100 + i * step for i, p in enumerate(participants)}
        self.items: list[tuple[str, tuple[object, ...]]] = []

    def msg(self, a: str, b: str, label: str, reply: bool = False, color: str = INK) -> None:
        self.items.append(("msg", (a, b, label, reply, color)))

    def note(self, a: str, label: str, color: str = MUTED, fill: str = GREY_BG) -> None:
        self.items.append(("note", (a, label, color, fill)))

    def gap(self, h: int = 10) -> None:
        self.items.append(("gap", (h,)))

    def draw(self) -> Svg:
        heights = {"msg": 34, "note": 34, "gap": 0}
        total = 80 + sum(heights[k] if k != "gap" else _int(args[0]) for k, args in self.items) + 30
        svg = Svg(self.width, total, self.title)
        for p, x in self.x.items():
            svg.rect(x - 80, 14, 160, 32, fill=BLUE_BG, stroke=BLUE)
            svg.text(x, 35, p, 13, bold=True)
            svg.line(x, 46, x, total - 12, color=MUTED, arrow=False, dash=True, width=1)
        y = 76
        for kind, args in self.items:
            if kind == "gap":
                y += _int(args[0])
                continue
            if kind == "note":
                a, label, color, fill = (str(v) for v in args)
                w = 8 + 6.6 * len(label)
                left = min(max(self.x[a] - w / 2, 4), self.width - 4 - w)
                svg.rect(left, y - 16, w, 24, fill=fill, stroke=color, rx=3)
                svg.text(left + w / 2, y + 1, label, 11.5, color=INK)
                y += 34
                continue
            a, b, label, reply, color = args
            x1, x2 = self.x[str(a)], self.x[str(b)]
            svg.text((x1 + x2) / 2, y - 6, str(label), 12, mono=True, color=str(color))
            svg.line(x1, y, x2 - (6 if x2 > x1 else -6), y, color=str(color), dash=bool(reply))
            y += 34
        return svg


def request_lifecycle() -> Svg:
    seq = Sequence(
        "One request that uses a long-running conversation: lazy resolution,"
        " one commit, the lock always released.",
        ["Browser", "Flask view", "ConversationScope", "Store"],
    )
    seq.msg("Browser", "Flask view", "POST /guests?cid=K3")
    seq.note("ConversationScope", "before_request: nothing yet, no I/O")
    seq.msg("Flask view", "ConversationScope", 'conversation["hotel"]')
    seq.msg("ConversationScope", "Store", 'acquire(ns, "K3")', color=BLUE)
    seq.note("Store", "lock the stack's root, load root..K3")
    seq.msg("Store", "ConversationScope", "the chain of records", reply=True, color=BLUE)
    seq.msg("Flask view", "ConversationScope", 'conversation["guests"] = 2')
    seq.note("ConversationScope", "changes kept in memory, no I/O")
    seq.msg("Flask view", "ConversationScope", "after_request: commit")
    seq.msg("ConversationScope", "Store", "commit(ns, batch)", color=BLUE)
    seq.note("Store", "save, delete, evict, then unlock")
    seq.msg("ConversationScope", "Flask view", "X-Conversation-Id: K3", reply=True)
    seq.msg("Flask view", "Browser", "200 OK, X-Conversation-Id: K3", reply=True)
    seq.note("ConversationScope", "teardown_request: release any lock left")
    return seq.draw()


def end_and_redirect() -> Svg:
    seq = Sequence(
        "Ending, then redirecting with the cid: the ended conversation survives exactly"
        " one more request, read-only.",
        ["Browser", "Flask view", "Store"],
    )
    seq.msg("Browser", "Flask view", "POST /confirm?cid=K3")
    seq.note("Flask view", 'conversation.end(); redirect(url_for_cid("done"))')
    seq.msg("Flask view", "Store", "commit: K3 ended, kept one more request", color=BLUE)
    seq.msg("Flask view", "Browser", "303 Location: /done?cid=K3", reply=True)
    seq.msg("Browser", "Flask view", "GET /done?cid=K3")
    seq.msg("Flask view", "Store", "acquire: the ended K3, then delete it", color=BLUE)
    seq.msg("Flask view", "Browser", "200 confirmation page (temporary, K3's data)", reply=True)
    seq.msg("Browser", "Flask view", "reload: GET /done?cid=K3", color=RED)
    seq.msg(
        "Flask view",
        "Browser",
        "404 NonexistentConversation (or a redirect)",
        reply=True,
        color=RED,
    )
    return seq.draw()


PICTURES = {
    "temporary-vs-long-running.svg": temporary_vs_long_running,
    "nested-stack.svg": nested_stack,
    "two-tabs.svg": two_tabs,
    "request-lifecycle.svg": request_lifecycle,
    "end-and-redirect.svg": end_and_redirect,
}


def draw_all(directory: Path = STATIC) -> list[Path]:
    """Write every picture into ``directory``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in PICTURES.items():
        path = directory / name
        path.write_text(draw().render(), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in draw_all(Path(sys.argv[1]) if len(sys.argv) > 1 else STATIC):
        print(p)
