"""Turning an API's items into records: names a warehouse wants, fields a schema keeps."""

from __future__ import annotations

import re
import typing as t
from functools import cache

if t.TYPE_CHECKING:
    from collections.abc import Mapping


@cache
def snake_case(name: str) -> str:
    """`videoStart` -> `video_start`, `siteID` -> `site_id`, `URLPath` -> `url_path`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return spaced.replace("-", "_").replace(" ", "_").lower()


def split_known_fields(
    item: Mapping[str, t.Any], known: t.Collection[str]
) -> tuple[dict[str, t.Any], dict[str, t.Any] | None]:
    """(the known fields, every other field or None): undocumented fields are kept, not dropped.

    The SDK drops properties a schema does not declare, with a warning per record; a stream
    that puts the rest in one object column keeps them without knowing their names.
    """
    known_fields = {name: value for name, value in item.items() if name in known}
    others = {name: value for name, value in item.items() if name not in known}
    return known_fields, others or None
