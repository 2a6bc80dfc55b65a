"""Suite files: validated before anything runs (errors name file, line and key path), and
stored as immutable versions."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from probes.suite.loader import SuiteFileError, load_suite_file, parse_suite
from runs.models import ImpactTag, Result, Suite
from runs.reporting import build_report
from runs.suites import SuiteRefused, load_suite_path, load_suite_text, run_model
from tests.factories import ResultFactory, RunFactory, SuiteFactory

GOLDEN = settings.GOLDPATH_SUITES_DIR / "golden-path.yaml"
MINIMAL = """\
name: s
categories: [{name: A}]
checks:
  - id: one
    name: One
    category: A
    steps:
      - request: {path: /health}
"""


def errors(text: str, name: str = "suite.yaml", base_dir: Path | None = None) -> list[str]:
    with pytest.raises(SuiteFileError) as caught:
        parse_suite(text, name, base_dir)
    return caught.value.lines


def test_the_golden_path_loads_with_12_checks_in_5_categories():
    model = load_suite_file(GOLDEN).model
    assert len(model.checks) == 12
    assert [c.name for c in model.categories] == [
        "Priority 1 Critical",
        "WebSocket Events",
        "Message Flow",
        "Critical Path",
        "Connectivity",
    ]
    counts = {c.name: sum(1 for check in model.checks if check.category == c.name) for c in model.categories}
    assert counts == {
        "Priority 1 Critical": 1,
        "WebSocket Events": 1,
        "Message Flow": 3,
        "Critical Path": 6,
        "Connectivity": 1,
    }


def test_an_unknown_key_is_named_with_file_line_and_key_path():
    text = MINIMAL.replace("{path: /health}", "{path: /health, expect_staus: 200}")
    assert errors(text, "golden-path.yaml") == [
        "golden-path.yaml line 8: checks[0].steps[0].request: unknown key 'expect_staus'"
    ]


def test_a_typo_of_a_known_key_gets_a_suggestion():
    text = MINIMAL.replace(
        "      - request: {path: /health}\n", "      - request: {path: /health}\n        expcet: {}\n"
    )
    [line] = errors(text)
    assert line == "suite.yaml line 9: checks[0].steps[0]: unknown key 'expcet' (did you mean 'expect'?)"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("    category: A\n", ""), "line 4: checks[0]: missing key 'category'"),
        (("name: s\n", "name: Not A Slug\n"), "line 1: name: string should match pattern"),
        (
            ("{path: /health}", "{path: /health, method: 3}"),
            "checks[0].steps[0].request.method: input should be a valid string",
        ),
        (
            ("{path: /health}", "{}"),
            "checks[0].steps[0].request: give exactly one of path (joined to the base URL) and url",
        ),
        (
            ("      - request: {path: /health}\n", "      - telepathy: {}\n"),
            "checks[0].steps[0]: a step needs one of: request",
        ),
        (
            ("      - request: {path: /health}\n", "      - {request: {path: /}, sleep: {ms: 1}}\n"),
            "a step has one kind; this one has request and sleep",
        ),
        (
            ("    category: A\n", "    category: B\n"),
            "line 6: checks[0].category: unknown category 'B' (categories: A)",
        ),
        (
            ("{path: /health}", "{path: /health, auth: sso}"),
            "checks[0].steps[0].request.auth: unknown auth profile 'sso'",
        ),
        (("{path: /health}", '{path: "/x/${kernel}"}'), "unknown template name ${kernel}"),
        (("{path: /health}", '{path: "/x/${not a name}"}'), "is not a template name"),
        (
            ("    category: A\n", "    category: A\n    kind: http\n"),
            "checks[0]: unknown key 'kind'; checks no longer have kinds",
        ),
    ],
)
def test_it_refuses_an_inconsistent_suite(change, expected):
    old, new = change
    text = MINIMAL.replace(old, new)
    assert text != MINIMAL
    found = "\n".join(errors(text))
    assert expected in found, found


def test_an_unknown_auth_type_lists_the_known_ones():
    [line] = errors(MINIMAL + "auth:\n  default: {type: kerberos}\n")
    assert line == (
        "suite.yaml line 10: auth.default: unknown auth type 'kerberos' "
        "(types: bearer, header, query, basic, oauth2_client_credentials, login)"
    )


def test_a_metric_naming_a_mark_no_step_sets_is_refused():
    text = MINIMAL + "    metrics: [{name: Latency, of: health, target_ms: 100}]\n"
    [line] = errors(text)
    assert "checks[0].metrics[0]: metric 'Latency' names mark 'health', which no step of the check sets" in line


def test_a_connection_must_be_opened_by_an_earlier_step():
    text = MINIMAL.replace(
        "      - request: {path: /health}\n",
        "      - send: {text: hi, on: feed}\n      - connect: {path: /ws, as: feed}\n",
    )
    [line] = errors(text)
    assert "checks[0].steps[0].send.on: no earlier step opens a connection named 'feed'" in line


def test_a_websocket_step_on_an_event_stream_is_refused():
    steps = "      - stream: {path: /events, as: feed}\n      - ping: {on: feed}\n"
    [line] = errors(MINIMAL.replace("      - request: {path: /health}\n", steps))
    assert "'feed' is an event stream; ping needs a WebSocket" in line


def test_values_saved_by_a_step_are_known_only_to_later_steps():
    steps = (
        '      - request: {path: "/k/${kernel}"}\n'
        "      - request: {path: /k}\n"
        "        save: {kernel: $.id}\n"
        '      - request: {path: "/k/${kernel}"}\n'
    )
    found = errors(MINIMAL.replace("      - request: {path: /health}\n", steps))
    assert len(found) == 1 and "checks[0].steps[0].request.path: unknown template name ${kernel}" in found[0]


def test_yaml_on_and_no_are_text_not_booleans():
    steps = "      - connect: {path: /ws, as: feed}\n      - send: {text: no, on: feed}\n"
    model = parse_suite(MINIMAL.replace("      - request: {path: /health}\n", steps)).model
    assert model.checks[0].steps[1].options.on == "feed" and model.checks[0].steps[1].options.text == "no"


def test_yaml_numbers_are_yaml_1_2():
    """010 is ten (YAML 1.1 read octal eight) and 12:30 is text (1.1 read 750 seconds)."""
    text = MINIMAL.replace(
        "      - request: {path: /health}\n", "      - send: {json: {a: 010, b: 12:30, c: 1e3, d: 0x1F}}\n"
    )
    text = text.replace("    steps:\n", "    steps:\n      - connect: {path: /ws}\n")
    json_sent = parse_suite(text).model.checks[0].steps[1].options.json_
    assert json_sent == {"a": 10, "b": "12:30", "c": 1000.0, "d": 31}


def test_a_file_nested_too_deep_is_refused_before_it_is_composed():
    deep = "[" * 5000 + "]" * 5000
    [line] = errors(MINIMAL + f"vars: {{deep: {deep}}}\n")
    assert "nested deeper than 64 levels" in line


def test_a_key_written_twice_is_refused():
    [line] = errors(MINIMAL.replace("    name: One\n", "    name: One\n    name: Two\n"))
    assert line.startswith("suite.yaml line 6: invalid YAML: key 'name' appears twice")


def test_invalid_yaml_names_its_line():
    [line] = errors("name: s\ncategories: [{name: A}\nchecks: []\n")
    assert line.startswith("suite.yaml line 3: invalid YAML")


def test_a_yaml_alias_bomb_is_refused_without_expanding_it():
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        lines.append(
            f"{'abcdefghij'[n]}: &{'abcdefghij'[n]} [*{'abcdefghij'[n - 1]}, *{'abcdefghij'[n - 1]}, "
            f"*{'abcdefghij'[n - 1]}, *{'abcdefghij'[n - 1]}, *{'abcdefghij'[n - 1]}, *{'abcdefghij'[n - 1]}, "
            f"*{'abcdefghij'[n - 1]}, *{'abcdefghij'[n - 1]}, *{'abcdefghij'[n - 1]}, *{'abcdefghij'[n - 1]}]"
        )
    [line] = errors("\n".join(lines) + "\n")
    assert "expands to more than" in line


def test_a_file_that_is_not_a_mapping_or_not_utf8_is_refused(tmp_path):
    assert errors("- just\n- a list\n") == ["suite.yaml: a suite file is a mapping with name, categories and checks"]
    path = tmp_path / "suite.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(SuiteFileError, match="cannot read"):
        load_suite_file(path)


def test_a_schema_file_is_embedded_and_validated(tmp_path):
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "kernel.json").write_text(json.dumps({"type": "object", "required": ["id"]}))
    text = MINIMAL.replace("{path: /health}", "{path: /health}\n        expect: {schema: schemas/kernel.json}")
    loaded = parse_suite(text, "s.yaml", tmp_path)
    assert loaded.definition["checks"][0]["steps"][0]["expect"]["schema"] == {"type": "object", "required": ["id"]}
    assert "no schema file 'schemas/other.json'" in errors(text.replace("kernel", "other"), base_dir=tmp_path)[0]
    (tmp_path / "schemas" / "kernel.json").write_text(json.dumps({"type": "no-such-type"}))
    assert "not a valid JSON Schema" in errors(text, base_dir=tmp_path)[0]
    outside = text.replace("schemas/kernel.json", "../../etc/passwd")
    assert "no schema file" in errors(outside, base_dir=tmp_path)[0]


def test_every_problem_is_reported_at_once():
    text = MINIMAL.replace("    category: A\n", "    category: B\n    impact: [Ghost]\n")
    assert len(errors(text)) == 2


# -- versions in the database ---------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_it_loads_the_golden_path_with_its_checks_and_tags(golden_path):
    assert golden_path.test_cases.count() == 12
    assert golden_path.current_version.number == 1
    assert golden_path.impact_tags.get(name="Chat").mrr == 200_000
    send = golden_path.test_cases.get(node_id="websocket_message_send")
    assert set(send.impact_tags.values_list("name", flat=True)) == {"Chat", "WebSocket Events"}
    assert send.declares == "ws"
    assert golden_path.test_cases.get(node_id="websocket_connection").declares == "auth ws"


def test_a_changed_file_makes_a_new_version_and_old_runs_keep_theirs(db, tmp_path):
    suite = load_suite_path(write(tmp_path, MINIMAL))
    first = suite.current_version
    run = RunFactory(suite=suite)
    two = MINIMAL + "  - {id: two, name: Two, category: A, steps: [{request: {path: /}}]}\n"
    suite = load_suite_path(write(tmp_path, two))
    assert suite.current_version.number == 2
    run.refresh_from_db()
    assert run.version == first and [c.id for c in run_model(run).checks] == ["one"]
    assert load_suite_path(write(tmp_path, two)).current_version.number == 2  # unchanged: same version
    suite = load_suite_path(write(tmp_path, MINIMAL))  # back to the first content: that version again
    assert suite.current_version == first
    assert list(suite.test_cases.filter(active=True).values_list("node_id", flat=True)) == ["one"]


def test_a_runs_report_keeps_the_mrr_and_categories_of_the_version_it_ran(db, tmp_path):
    tagged = MINIMAL.replace("categories: [{name: A}]\n", "categories: [{name: A}, {name: B, critical: true}]\n")
    tagged += "impact_tags: [{name: Billing, mrr: 1000}]\n"
    tagged = tagged.replace("    category: A\n", "    category: A\n    impact: [Billing]\n")
    suite = load_suite_path(write(tmp_path, tagged))
    run = RunFactory(suite=suite)
    ResultFactory(run=run, test_case=suite.test_cases.get(node_id="one"), outcome=Result.Outcome.FAILED)
    load_suite_path(write(tmp_path, tagged.replace("mrr: 1000", "mrr: 5000").replace("category: A\n", "category: B\n")))
    report = build_report(run)
    assert report.mrr.total == 1000
    assert [(row.name, row.failed, row.critical) for row in report.categories] == [("A", 1, False)]


def test_a_stored_version_keeps_the_files_key_order(db, tmp_path):
    """PostgreSQL's jsonb sorts keys shortest first; bodies and matcher messages keep the file's order."""
    ordered = MINIMAL.replace(
        "      - request: {path: /health}\n",
        "      - request: {method: POST, path: /, json: {zeta_last: 1, a: 2}}\n"
        "        expect: {json: {$.event: x, $.seq: 1}}\n",
    )
    suite = load_suite_path(write(tmp_path, ordered))
    stored = type(suite.current_version).objects.get(pk=suite.current_version.pk).definition
    step = stored["checks"][0]["steps"][0]
    assert list(step["request"]["json"]) == ["zeta_last", "a"]
    assert list(step["expect"]["json"]) == ["$.event", "$.seq"]


def test_a_file_that_does_not_validate_leaves_the_current_version(db, tmp_path):
    suite = load_suite_path(write(tmp_path, MINIMAL))
    with pytest.raises(SuiteFileError):
        load_suite_path(write(tmp_path, MINIMAL.replace("request", "reqest")))
    suite.refresh_from_db()
    assert suite.current_version.number == 1 and suite.versions.count() == 1


def test_impact_tags_belong_to_their_suite(db):
    tags = "impact_tags: [{name: Chat, mrr: 1000}]\n"
    first = load_suite_text(MINIMAL.replace("name: s\n", "name: first\n" + tags), "first.yaml")
    second = load_suite_text(MINIMAL.replace("name: s\n", "name: second\n" + tags.replace("1000", "5")), "b.yaml")
    assert first.impact_tags.get(name="Chat").mrr == 1000
    assert second.impact_tags.get(name="Chat").mrr == 5
    assert ImpactTag.objects.filter(name="Chat").count() == 2


def test_a_suite_file_cannot_take_the_name_of_an_import_suite(db):
    SuiteFactory(name="s", origin=Suite.Origin.IMPORT)
    with pytest.raises(SuiteRefused, match="holds imported CI results"):
        load_suite_text(MINIMAL, "s.yaml")
