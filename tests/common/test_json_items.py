"""A top-level array's items decoded one at a time: the same JSON as decoding the body whole."""

from __future__ import annotations

import json
import random
import typing as t

import orjson
import pytest

from taps_common.json_items import SplitBody, split_top_level_array


def split_as_whole(body: bytes, key: str) -> tuple[dict[str, t.Any], list[t.Any]]:
    """The shell and items a split must give: the body decoded whole, its array taken out."""
    whole = orjson.loads(body)
    items = whole[key]
    whole[key] = []
    return whole, items


def test_a_docs_shaped_body_splits_into_its_status_and_its_days() -> None:
    days = [{"Safari": 9, "date": "2014-10-17", "MSIE": 3}, {"Safari": 12, "date": "2014-10-20", "Flash": 0}]
    body = orjson.dumps({"status": "Ok", "stats": days})
    split = split_top_level_array(body, "stats")
    assert isinstance(split, SplitBody)
    assert split.shell == {"status": "Ok", "stats": []}
    assert len(split) == 2
    items = iter(split)
    assert next(items) == days[0]  # one at a time
    assert list(items) == days[1:]


@pytest.mark.parametrize("indent", [None, 0, 2, "\t"])
def test_whitespace_anywhere_json_allows_is_read(indent: int | str | None) -> None:
    value = {"a": [1, 2], "stats": [{"x": 1, "y": "z"}, {"x": 2}], "status": "Ok"}
    body = json.dumps(value, indent=indent).encode()
    split = split_top_level_array(b"\r\n " + body + b" \n", "stats")
    assert split is not None
    assert (split.shell, list(split)) == split_as_whole(body, "stats")


def test_an_empty_array_gives_no_items() -> None:
    split = split_top_level_array(b'{"stats": [ ], "status": "Ok"}', "stats")
    assert split is not None and len(split) == 0 and list(split) == []
    assert split.shell == {"stats": [], "status": "Ok"}


@pytest.mark.parametrize(
    "item",
    [
        {"name with } brace": 1, "date": "2014-10-17"},
        {"name with { brace": 1},
        {"a [bracket] name": 2},
        {"a \"quoted\" name": 3, "back\\slash": 4},
        {"nested array": [1, 2, 3]},
        {"nested": {"object": {"deeper": "}"}}, "after": 1},
        {"list of objects": [{"b": "]"}, {"c": [{}]}]},
        {"unicode é 名前": 5, "escaped \u0001": 6},
    ],
)
def test_items_with_nesting_braces_quotes_or_escapes_are_read_exactly(item: dict[str, t.Any]) -> None:
    body = orjson.dumps({"status": "Ok", "stats": [item, {"date": "2014-10-18"}, item]})
    split = split_top_level_array(body, "stats")
    assert split is not None
    assert (split.shell, list(split)) == split_as_whole(body, "stats")


@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "Ok"}',  # no such array
        b'{"stats": {"2014-10-17": {"Flash": 1}}}',  # days keyed by date: not an array
        b'{"stats": [1, 2, 3]}',  # items that are not objects
        b'{"stats": [{"a": 1}, 2]}',
        b'{"stats": [{"a": 1}',  # cut short
        b'{"stats": [{"a": 1},]}',  # a trailing comma
        b'{"stats": [{"a": 1}] "status": "Ok"}',  # no comma after the array
        b'{"stats": [{"a": 1} {"a": 2}]}',  # no comma between items
        b'[{"stats": [{"a": 1}]}]',  # not an object at the top
    ],
)
def test_what_is_not_an_array_of_objects_is_left_to_a_whole_decode(body: bytes) -> None:
    assert split_top_level_array(body, "stats") is None


def test_the_key_inside_a_string_or_a_nested_object_is_not_the_array() -> None:
    body = orjson.dumps(
        {
            "note": 'looks like "stats": [{"a": 1}]',
            "inner": {"stats": [{"wrong": 1}]},
            "stats": [{"right": 1}],
        }
    )
    split = split_top_level_array(body, "stats")
    assert split is not None
    assert list(split) == [{"right": 1}]
    assert split.shell["inner"] == {"stats": [{"wrong": 1}]}


def test_an_item_that_is_not_json_is_found_when_it_is_reached() -> None:
    split = split_top_level_array(b'{"stats": [{"a": 1}, {"a": tru}]}', "stats")
    assert split is not None  # its bytes hold together: only decoding it shows the fault
    items = iter(split)
    assert next(items) == {"a": 1}
    with pytest.raises(ValueError, match=r"an item that is not valid JSON \('\{\"a\": tru\}'\)"):
        next(items)


def _random_text(chance: random.Random) -> str:
    alphabet = 'ab z{}[]":,\\\n\té名'
    return "".join(chance.choice(alphabet) for _ in range(chance.randint(0, 8)))


def _random_value(chance: random.Random, depth: int) -> t.Any:  # noqa: ANN401
    kind = chance.randint(0, 7 if depth < 2 else 4)  # nothing nested below depth 2
    if kind == 0:
        return chance.randint(-(10**12), 10**12)
    if kind == 1:
        return chance.random() * 1000
    if kind == 2:
        return _random_text(chance)
    if kind == 3:
        return chance.choice([True, False, None])
    if kind == 4:
        return chance.randint(0, 100)
    if kind in (5, 6):
        return {_random_text(chance): _random_value(chance, depth + 1) for _ in range(chance.randint(0, 3))}
    return [_random_value(chance, depth + 1) for _ in range(chance.randint(0, 3))]


def test_random_bodies_split_into_exactly_what_a_whole_decode_gives() -> None:
    chance = random.Random(20261126)
    split_count = 0
    for _ in range(3000):
        start_depth = chance.choice([0, 2])  # 2: flat items (the fast path); 0: objects and arrays inside
        items: list[t.Any] = [
            {_random_text(chance): _random_value(chance, start_depth) for _ in range(chance.randint(0, 5))}
            for _ in range(chance.randint(0, 6))
        ]
        if chance.random() < 0.1:
            items.insert(chance.randint(0, len(items)), _random_value(chance, 2))  # an item not an object
        value = {"status": _random_text(chance), "stats": items, _random_text(chance): _random_value(chance, 0)}
        indent = chance.choice([None, 1, "  "])
        separators = chance.choice([(",", ":"), (", ", ": "), (" ,", " : ")])
        body = json.dumps(value, indent=indent, separators=separators, ensure_ascii=chance.random() < 0.5).encode()
        split = split_top_level_array(body, "stats")
        whole = orjson.loads(body)
        if split is None:
            # Only an array with an item that is not an object is left to a whole decode.
            assert not all(isinstance(item, dict) for item in whole["stats"])
            continue
        split_count += 1
        assert (split.shell, list(split)) == split_as_whole(body, "stats")
    assert split_count > 2500  # the shortcut is taken for the bodies it can take
