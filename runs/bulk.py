"""Inserting many rows without building a model instance for each (imports of 100,000 cases).

``bulk_create`` spends most of its time preparing each instance's values in Python; here
the caller gives rows already in database form, and they go in with PostgreSQL's COPY or,
on other databases, one prepared ``executemany``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connections, models

EMPTY_LIST_JSON = "[]"
EMPTY_OBJECT_JSON = "{}"


def json_value(value: list[Any] | dict[str, Any]) -> str:
    """A JSON field's value as the text both databases take (jsonb parses it on COPY)."""
    if not value:
        return EMPTY_LIST_JSON if isinstance(value, list) else EMPTY_OBJECT_JSON
    return json.dumps(value)


def datetime_value(value: datetime, using: str = "default") -> str | datetime | None:
    """A datetime as the database stores it (SQLite: text in UTC; PostgreSQL: as is)."""
    return connections[using].ops.adapt_datetimefield_value(value)


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """``model``'s field ``name``, which has a column (the fields written and read here)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is a reverse relation, not a column")
    return field


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]], using: str = "default"
) -> None:
    """Insert ``rows`` (tuples of values for ``fields``, in database form) into ``model``'s table.

    No signals, no defaults, no returned ids: read the ids back by a natural key if needed.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(_field(model, name).column) for name in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The driver's own cursor: its errors are turned into Django's (IntegrityError …) here.
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            # The stubs ask for a Sequence; the driver takes any iterable, so the rows stream.
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # type: ignore[arg-type]


def rows_by_key(
    model: type[models.Model],
    scope: tuple[str, int | str],
    key: str,
    keys: Collection[str],
    fields: Sequence[str],
    using: str = "default",
) -> list[tuple[Any, ...]]:
    """``fields`` of the rows of ``model`` whose ``scope`` field has that value and whose
    ``key`` field is one of ``keys`` (a unique pair, such as a suite's test cases by node id).

    On PostgreSQL one index probe per key, whatever the statistics say: given ``key IN (…)``
    the planner, which has not seen the rows the open transaction inserted, read every row
    of the scope and filtered them, and an import of a million new test cases slowed
    quadratically. A LATERAL subquery with LIMIT 1 is not merged into a join, so it can
    only be probed."""
    scope_field, scope_value = scope
    connection = connections[using]
    if connection.vendor != "postgresql":
        matching = model._default_manager.filter(**{scope_field: scope_value, f"{key}__in": keys})
        return list(matching.order_by().values_list(*fields))
    quote = connection.ops.quote_name
    selected = ", ".join(f"t.{quote(_field(model, name).column)}" for name in fields)
    key_column = quote(_field(model, key).column)
    sql = (
        f"SELECT {selected} FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL ("
        f"SELECT * FROM {quote(model._meta.db_table)} WHERE {quote(_field(model, scope_field).column)} = %s "
        f"AND {key_column} = k.key LIMIT 1) AS t"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(keys), scope_value])
        return cursor.fetchall()


def insert_rows_sharing_values(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    shared: Sequence[Any],
    using: str = "default",
) -> None:
    """``insert_rows``, where each row's last value is an index into ``shared``: the values of
    the last field, which many rows repeat. Parsing JSON into jsonb is most of what a bulk
    load costs PostgreSQL; there the shared values go into a temporary table once and the
    rows are inserted joined with them, in order."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        insert_rows(model, fields, ((*row[:-1], shared[row[-1]]) for row in rows), using)
        return
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = [quote(_field(model, name).column) for name in fields]
    others = ", ".join(columns[:-1])
    with connection.cursor() as cursor, connection.wrap_database_errors:
        value_type = _field(model, fields[-1]).db_type(connection)

        cursor.execute(f"CREATE TEMP TABLE bulk_shared (n integer PRIMARY KEY, value {value_type}) ON COMMIT DROP")
        cursor.execute(
            f"CREATE TEMP TABLE bulk_rows ON COMMIT DROP AS "
            f"SELECT {others}, 0 AS shared_n, 0 AS row_n FROM {table} WITH NO DATA"
        )
        with cursor.cursor.copy("COPY bulk_shared (n, value) FROM STDIN") as copy:
            for item in enumerate(shared):
                copy.write_row(item)
        with cursor.cursor.copy(f"COPY bulk_rows ({others}, shared_n, row_n) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                copy.write_row((*row, n))
        selected = ", ".join(f"r.{column}" for column in columns[:-1])
        cursor.execute(
            f"INSERT INTO {table} ({others}, {columns[-1]}) SELECT {selected}, s.value "
            "FROM bulk_rows r JOIN bulk_shared s ON s.n = r.shared_n ORDER BY r.row_n"
        )
        cursor.execute("DROP TABLE bulk_rows, bulk_shared")  # the caller's transaction goes on
