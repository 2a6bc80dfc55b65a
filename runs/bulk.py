"""Inserting many rows without building a model instance for each (imports of 100,000 cases).

``bulk_create`` spends most of its time preparing each instance's values in Python; here
the caller gives rows already in database form, and they go in with PostgreSQL's COPY or,
on other databases, one prepared ``executemany``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connections, models

EMPTY_LIST_JSON = "[]"
EMPTY_OBJECT_JSON = "{}"


def json_value(value) -> str:
    """A JSON field's value as the text both databases take (jsonb parses it on COPY)."""
    if not value:
        return EMPTY_LIST_JSON if isinstance(value, list) else EMPTY_OBJECT_JSON
    return json.dumps(value)


def datetime_value(value: datetime, using: str = "default"):
    """A datetime as the database stores it (SQLite: text in UTC; PostgreSQL: as is)."""
    return connections[using].ops.adapt_datetimefield_value(value)


def insert_rows(
    model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence], using: str = "default"
) -> None:
    """Insert ``rows`` (tuples of values for ``fields``, in database form) into ``model``'s table.

    No signals, no defaults, no returned ids: read the ids back by a natural key if needed.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The driver's own cursor: its errors are turned into Django's (IntegrityError …) here.
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)
