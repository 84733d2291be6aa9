"""A big JSON answer's top-level array decoded one item at a time (issue 7, memory).

An API that answers a whole date range in one body (WMSPanel: every day of a data slice's
range) makes the decoded body grow with the range: a hundred thousand rows decoded at once
take several times their bytes. When the array's items are objects, each item's bytes are
found (with a few byte searches when it is flat, as such items are) and decoded only when it is
taken, so at most one item's objects live beside the body's bytes.

The rest of the body (its status, say) is decoded at once, the array left empty: the
"shell". Anything else (items that are not objects, bytes that do not hold together) is left
to the caller, who then decodes the body whole: this is a shortcut, never a second
reading of JSON.
"""

from __future__ import annotations

import re
import typing as t

import orjson

if t.TYPE_CHECKING:
    from collections.abc import Iterator

_WHITESPACE = re.compile(rb"[ \t\n\r]*")
#: What follows an item: a comma and the next item, or the end of the array.
_AFTER_ITEM = re.compile(rb"[ \t\n\r]*([,\]])[ \t\n\r]*")
_OPEN_BRACE = 0x7B  # "{"


class SplitBody:
    """A JSON body's shell (its `key` array empty) and the array's items, decoded when taken."""

    __slots__ = ("_body", "_spans", "shell")

    def __init__(self, body: bytes, shell: dict[str, t.Any], spans: list[int]) -> None:
        self._body = body
        #: The body decoded with its array left empty.
        self.shell = shell
        self._spans = spans  # item i is body[spans[2 * i]:spans[2 * i + 1]]

    def __len__(self) -> int:
        return len(self._spans) // 2

    def __iter__(self) -> Iterator[dict[str, t.Any]]:
        """The items in order, each decoded as it is taken.

        Raises:
            ValueError: for an item whose bytes are not valid JSON (found only when it is reached).
        """
        body, spans, loads = self._body, self._spans, orjson.loads
        for index in range(0, len(spans), 2):
            start, end = spans[index], spans[index + 1]
            try:
                yield loads(body[start:end])
            except ValueError:
                excerpt = body[start:end][:120].decode(errors="replace")
                msg = f"an item that is not valid JSON ({excerpt!r})"
                raise ValueError(msg) from None


def split_top_level_array(body: bytes, key: str) -> SplitBody | None:
    """`body` (a JSON object) split into its shell and the items of its top-level `key` array.

    None when the array is missing or its items are not all objects, or the bytes do not hold
    together: the caller decodes the body whole instead (and so reports invalid JSON).
    """
    opening = re.compile(rb'"' + re.escape(key.encode()) + rb'"[ \t\n\r]*:[ \t\n\r]*\[')
    # The key's text may also appear inside a string or a nested object: the shell says which
    # occurrence is the top-level array (decoded with that array emptied, it must show it empty).
    for match in opening.finditer(body):
        found = _object_spans(body, match.end())
        if found is None:
            continue
        spans, closing = found
        try:
            shell = orjson.loads(body[: match.end()] + body[closing:])
        except ValueError:
            continue
        if isinstance(shell, dict) and shell.get(key) == []:
            return SplitBody(body, shell, spans)
    return None


def _object_spans(body: bytes, position: int) -> tuple[list[int], int] | None:
    """Where each item of the array starting at `position` begins and ends, and where `]` is.

    Most items are flat objects, found with byte searches: the item ends at the first `}` after
    its start when the bytes between hold no other `{` (so no `}` closes something inside), and
    an even number of quotes with no escapes (so the `}` is not inside a string). Any other item
    is found by skipping its strings and counting its brackets. Items are not decoded here: one
    that is not valid JSON is found when it is taken. None when an item is not an object, or the
    array does not end.
    """
    position = t.cast("re.Match[bytes]", _WHITESPACE.match(body, position)).end()
    spans: list[int] = []
    if body[position : position + 1] == b"]":
        return spans, position
    find, count, after_item = body.find, body.count, _AFTER_ITEM.match
    while position < len(body) and body[position] == _OPEN_BRACE:
        end = find(b"}", position) + 1
        plain = (
            end > 0
            and find(b"\\", position, end) == -1
            and find(b"{", position + 1, end) == -1
            and count(b'"', position, end) % 2 == 0
        )
        if not plain:
            end = _value_end(body, position)
            if end < 0:
                return None
        spans += (position, end)
        separator = after_item(body, end)
        if separator is None:
            return None
        if separator.group(1) == b"]":
            return spans, separator.start(1)
        position = separator.end()
    return None


#: Up to the next string (skipped whole), opening bracket or closing bracket.
_NEXT_TOKEN = re.compile(rb'[^"{}\[\]]*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([{\[])|([}\]]))', re.DOTALL)


def _value_end(body: bytes, position: int) -> int:
    """Where the object or array opening at `position` closes (just after it); -1 if it does not."""
    depth = 0
    while (token := _NEXT_TOKEN.match(body, position)) is not None:
        position = token.end()
        if token.group(2):
            depth += 1
        elif token.group(3):
            depth -= 1
            if depth == 0:
                return position
    return -1

