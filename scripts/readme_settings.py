"""Write each tap's `--about --format=markdown` settings table into README.md.

A tap's table goes between `<!-- settings:tap-x -->` and `<!-- /settings:tap-x -->`.

The tables are generated, never typed: `python scripts/readme_settings.py`
rewrites the part between the markers; the tests check it is current.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: Where the SDK's built-in settings start in `--about` (stream maps, flattening, batch).
SDK_BUILTIN_ROWS = ("| stream_maps",)


def settings_table(executable: str) -> str:
    """The `## Settings` section of `--about --format=markdown`, as a table only."""
    about = subprocess.run(  # noqa: S603
        [str(Path(sys.executable).parent / executable), "--about", "--format=markdown"],
        capture_output=True, text=True, check=True,
    ).stdout
    section = about.split("## Settings", 1)[1]
    lines = []
    for line in section.splitlines():
        if line.startswith(SDK_BUILTIN_ROWS):
            break  # the SDK's own settings follow; `--about` lists them
        if line.startswith("|"):
            lines.append(line)
    return "\n".join(lines)


def render(readme: str) -> str:
    """README text with every tap's table replaced by a fresh one."""
    for tap in re.findall(r"<!-- settings:([\w-]+) -->", readme):
        pattern = re.compile(
            rf"(<!-- settings:{tap} -->\n)(?:.*?\n)?(<!-- /settings:{tap} -->)", re.DOTALL
        )
        if not pattern.search(readme):
            msg = f"README.md has no closing <!-- /settings:{tap} --> marker"
            raise SystemExit(msg)
        table = settings_table(tap)
        readme = pattern.sub(lambda match: match.group(1) + table + "\n" + match.group(2), readme)
    return readme


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
