"""The README's settings tables are generated from `--about`, and must be current."""

from __future__ import annotations

from scripts import readme_settings


def test_readme_settings_tables_match_about_output() -> None:
    current = readme_settings.README.read_text()
    assert readme_settings.render(current) == current, (
        "README.md settings tables are stale: run `python scripts/readme_settings.py`"
    )
