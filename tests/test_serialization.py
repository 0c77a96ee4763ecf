"""The serializer's shortcuts for plain JSON data give what Flask's tagged
JSON would.
"""

from __future__ import annotations

import json

import pytest


def test_plain_data_shortcut_serializes_like_tagging() -> None:
    import datetime
    import uuid

    from markupsafe import Markup

    from flask_conversation.serialization import ConversationSerializer

    serializer = ConversationSerializer()

    def tagged(value: object) -> str:
        return json.dumps(
            serializer.tag(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )

    values = [
        1, "é", None, True, 1.5, [1, "a", [None]], {"a": {"b": [1]}},
        {" t": [1]}, {" di": {"x": 1}}, {"x": [{" u": "y"}]}, {" di": 1, "b": 2},
        (1, 2), b"ab", Markup("<b>"), uuid.UUID(int=5),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
        {1: "a"}, {"a": {2: 3}}, float("nan"), [float("inf")], {"a": set()},
    ]  # fmt: skip
    for value in values:
        try:
            expected = tagged(value)
        except (TypeError, ValueError) as e:
            with pytest.raises(type(e)):
                serializer.dumps(value)
        else:
            assert serializer.dumps(value) == expected


def test_plain_text_shortcut_loads_like_untagging() -> None:
    """Text in which no string starts with a space holds no tag: loading it
    skips the untagging walk and gives what the walk gives.
    """
    import datetime
    import random
    import uuid

    from markupsafe import Markup

    from flask_conversation.serialization import ConversationSerializer

    serializer = ConversationSerializer()
    values: list[object] = [
        1, "é", None, [1, "a", [None]], {"a": {"b": [1]}}, {" t": [1]}, {" di": {"x": 1}},
        {"x": [{" u": "y"}]}, (1, 2), b"ab", Markup("<b>"), uuid.UUID(int=5),
        datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc), {"a": ' "x'},
    ]  # fmt: skip
    texts = [serializer.dumps(v) for v in values]
    # Written by hand: escapes a dumps never produces.
    texts += ['{"\\u0020t":[1,2]}', '{"a":{"\\u0020u":"0000000000000000000000000000000a"}}']
    rng = random.Random(6)
    pieces = ["a", " ", "t", '"', "\\", "{", "é"]
    for _ in range(300):
        key = "".join(rng.choices(pieces, k=rng.randint(1, 3)))
        inner: object = rng.choice([1, "x", [1], (1,), b"z"])
        texts.append(serializer.dumps({key: inner} if rng.random() < 0.5 else [{key: inner}]))
    for text in texts:
        expected = serializer._untag_scan(json.loads(text))
        assert serializer.loads(text) == expected
        assert type(serializer.loads(text)) is type(expected)
