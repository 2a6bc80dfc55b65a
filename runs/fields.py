"""Model fields Django does not ship."""

from __future__ import annotations

import json
from typing import Any

from django.db import models


class OrderedJSONField(models.TextField):
    """JSON stored as its text, so mappings keep the order their author wrote.

    PostgreSQL's ``jsonb`` (Django's JSONField) re-sorts keys shortest first; for a suite
    definition that order is meaning: a request body goes out as written and matchers report
    mismatches, and describe frames, in the file's order. The field is never queried into."""

    description = "JSON, key order kept"
    # The types django-stubs gives the model attribute (any JSON value, as for JSONField).
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else json.loads(value)

    def to_python(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, ensure_ascii=False)

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)
