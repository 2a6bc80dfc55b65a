"""Suite files load into the database; bad ones are refused with file and line."""

from pathlib import Path

import pytest
from django.conf import settings

from probes.suite_loader import SuiteFileError, load_suite_file, parse_suite_file
from runs.models import ImpactTag

GOLDEN = settings.GOLDPATH_SUITES_DIR / "golden-path.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_it_loads_the_golden_path_with_12_checks_in_5_categories(golden_path):
    assert golden_path.test_cases.count() == 12
    assert list(golden_path.categories.values_list("name", flat=True)) == [
        "Priority 1 Critical",
        "WebSocket Events",
        "Message Flow",
        "Critical Path",
        "Connectivity",
    ]
    counts = {c.name: c.test_cases.count() for c in golden_path.categories.all()}
    assert counts == {
        "Priority 1 Critical": 1,
        "WebSocket Events": 1,
        "Message Flow": 3,
        "Critical Path": 6,
        "Connectivity": 1,
    }


def test_it_loads_impact_tags_with_their_mrr(golden_path):
    assert ImpactTag.objects.get(name="Chat").mrr == 200_000
    send = golden_path.test_cases.get(node_id="websocket_message_send")
    assert set(send.impact_tags.values_list("name", flat=True)) == {"Chat", "WebSocket Events"}


def test_it_marks_checks_removed_from_the_file_inactive(db, tmp_path):
    base = "name: s\ncategories: [{name: A}]\nchecks:\n"
    one = "  - {id: one, name: One, category: A, kind: http, requests: [{path: /}]}\n"
    two = "  - {id: two, name: Two, category: A, kind: http, requests: [{path: /}]}\n"
    suite = load_suite_file(write(tmp_path, base + one + two))
    first_version = suite.version
    suite = load_suite_file(write(tmp_path, base + one))
    assert suite.version != first_version
    assert list(suite.test_cases.filter(active=True).values_list("node_id", flat=True)) == ["one"]


def test_it_names_file_and_line_of_invalid_yaml(tmp_path):
    path = write(tmp_path, "name: s\ncategories: [{name: A}\nchecks: []\n")
    with pytest.raises(SuiteFileError, match=rf"{path} line \d+: invalid YAML"):
        parse_suite_file(path)


def test_it_names_the_line_of_a_check_with_an_unknown_kind(tmp_path):
    path = write(
        tmp_path,
        "name: s\ncategories: [{name: A}]\nchecks:\n  - id: x\n    name: X\n    category: A\n    kind: telepathy\n",
    )
    with pytest.raises(SuiteFileError, match=r"line 4: check 'x' has unknown kind 'telepathy'"):
        parse_suite_file(path)


@pytest.mark.parametrize(
    ("checks", "error"),
    [
        ("  - {id: x, name: X, category: Nope, kind: http}", "unknown category 'Nope'"),
        ("  - {id: x, name: X, category: A, kind: http, impact: [Ghost]}", "unknown impact tags: Ghost"),
        (
            "  - {id: x, name: X, category: A, kind: http}\n  - {id: x, name: Y, category: A, kind: http}",
            "'x' is used twice",
        ),
        ("  - {name: X, category: A, kind: http}", "missing 'id'"),
        ("  - {id: x, name: X, category: A, kind: http, timeout_s: soon}", "timeout_s must be a number"),
    ],
)
def test_it_refuses_inconsistent_checks(tmp_path, checks, error):
    path = write(tmp_path, f"name: s\ncategories: [{{name: A}}]\nchecks:\n{checks}\n")
    with pytest.raises(SuiteFileError, match=error):
        parse_suite_file(path)


def test_it_refuses_a_file_that_is_not_a_mapping(tmp_path):
    with pytest.raises(SuiteFileError, match="must be a mapping"):
        parse_suite_file(write(tmp_path, "- just\n- a list\n"))


def test_it_refuses_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(SuiteFileError, match="cannot read"):
        parse_suite_file(path)
