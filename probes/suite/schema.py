"""The JSON Schema of the suite format, for editors (``manage.py suite_schema``)."""

from __future__ import annotations

from typing import Any

from probes.suite.model import Suite

SCHEMA_ID = "https://goldpath.dev/schemas/suite-2.json"


def suite_json_schema() -> dict[str, Any]:
    schema = Suite.model_json_schema(by_alias=True, mode="validation")
    definitions = schema.get("$defs", {})
    # A sequence item may also be written as a bare matcher ({$.type: started}); the models
    # accept both (ReceiveOptions turns the short form into {match: …}), so must the schema.
    sequence = definitions["ReceiveOptions"]["properties"]["sequence"]
    sequence["items"] = {
        "anyOf": [sequence["items"], {"type": "object", "description": "a matcher: JSONPath ($…) or text → value"}]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Goldpath suite (format 2)",
        **schema,
    }
