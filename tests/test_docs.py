"""The documentation stays true: every suite example loads, the shipped JSON Schema is the
format's, and the project never points outside itself."""

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from probes.suite.loader import parse_suite
from probes.suite.schema import suite_json_schema

BASE_DIR = Path(__file__).resolve().parent.parent
DOCS = BASE_DIR / "docs"
YAML_BLOCK = re.compile(r"^( *)```yaml\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def yaml_examples(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    examples = []
    for match in YAML_BLOCK.finditer(text):
        indent = len(match.group(1))
        block = "\n".join(line[indent:] for line in match.group(2).splitlines())
        examples.append((text[: match.start()].count("\n") + 2, block + "\n"))
    return examples


SUITE_EXAMPLES = yaml_examples(DOCS / "suites.md")


def test_the_suite_docs_have_examples():
    assert len(SUITE_EXAMPLES) >= 10


@pytest.mark.parametrize(("line", "text"), SUITE_EXAMPLES, ids=[f"line {line}" for line, _ in SUITE_EXAMPLES])
def test_every_example_in_the_suite_docs_loads(line, text):
    loaded = parse_suite(text, f"docs/suites.md line {line}", DOCS)
    schema = suite_json_schema()
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(loaded.definition)]
    assert errors == []


def test_the_shipped_json_schema_is_the_formats():
    shipped = json.loads((DOCS / "suite.schema.json").read_text())
    assert shipped == suite_json_schema()
    jsonschema.Draft202012Validator.check_schema(shipped)


def test_nothing_in_the_repository_points_outside_it():
    """Users clone only this repository: no file may lean on the workplace's shared folder."""
    outside = "../" + "shared"
    files = subprocess.run(["git", "ls-files"], cwd=BASE_DIR, capture_output=True, text=True, check=True).stdout
    offenders = []
    for name in files.split():
        path = BASE_DIR / name
        if path.suffix in {".png", ".svg", ".ico"} or not path.is_file() or name.startswith("static/vendor/"):
            continue
        if outside in path.read_text(errors="replace"):
            offenders.append(name)
    assert offenders == []
