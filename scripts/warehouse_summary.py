"""Print every table of the demo's DuckDB warehouse with its row count."""

from __future__ import annotations

import sys

import duckdb


def main(path: str) -> None:
    """Print `schema.table  rows`, one table a line."""
    connection = duckdb.connect(path, read_only=True)
    tables = connection.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema not in ('information_schema', 'pg_catalog') order by 1, 2"
    ).fetchall()
    print(f"warehouse {path}:")
    for schema, table in tables:
        (rows,) = connection.execute(f'select count(*) from "{schema}"."{table}"').fetchone()
        print(f"  {schema}.{table:<28} {rows:>9} rows")
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1])
