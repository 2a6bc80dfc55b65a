"""The authoring loop as a user runs it, in child processes: check_suite, try_suite,
suite_schema, load_suites and run_suite --var."""

import json

import pytest
from django.conf import settings

from runs.models import Environment, Suite
from tests.conftest import manage, subprocess_env

GOLDEN = str(settings.GOLDPATH_SUITES_DIR / "golden-path.yaml")
BROKEN = """\
name: broken
categories: [{name: A}]
checks:
  - id: one
    name: One
    category: A
    steps:
      - request: {path: /health, expect_staus: 200}
"""


def test_check_suite_says_ok_with_what_the_file_holds():
    process = manage("check_suite", GOLDEN)
    assert process.returncode == 0, process.stderr
    assert "golden-path.yaml: ok — suite 'golden-path', 12 checks" in process.stdout


def test_check_suite_names_file_line_and_key_and_exits_1(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    process = manage("check_suite", GOLDEN, str(path))
    assert process.returncode == 1
    assert f"{path} line 8: checks[0].steps[0].request: unknown key 'expect_staus'" in process.stderr
    assert "1 of 2 suite files do not validate" in process.stderr


def test_suite_schema_prints_the_shipped_schema():
    process = manage("suite_schema")
    assert process.returncode == 0
    shipped = json.loads((settings.BASE_DIR / "docs" / "suite.schema.json").read_text())
    assert json.loads(process.stdout) == shipped


def test_try_suite_traces_each_step_and_stores_nothing(target_factory):
    server = target_factory(["close-after-send"])
    process = manage(
        "try_suite",
        GOLDEN,
        "--base-url",
        server.base_url,
        "--check",
        "agent_execution_flow",
        "--check",
        "backend_health",
    )
    assert process.returncode == 1  # a check failed
    out = process.stdout
    assert "✗ agent_execution_flow — Agent Execution Flow" in out
    assert "✓  1 connect      connected as 'ws'" in out
    assert "✗  3 receive      connection 'ws' closed by the server with code 1000 (main cleanup)" in out
    assert "code ws.closed (close_code=1000" in out
    assert "✓ backend_health — Backend Health Check" in out
    assert "1 of 2 checks passed" in out and "(nothing was stored)" in out
    assert "demo-secret" not in out


def test_try_suite_passes_against_a_healthy_target_and_prints_json(target):
    process = manage("try_suite", GOLDEN, "--base-url", target.base_url, "--check", "backend_health", "--json")
    assert process.returncode == 0, process.stdout + process.stderr
    [outcome] = json.loads(process.stdout)
    assert (outcome["check"], outcome["outcome"]) == ("backend_health", "passed")
    assert outcome["evidence"]["requests"][0]["status"] == 200


def test_try_suite_obeys_the_allowlist(target):
    suite = (
        "name: t\ncategories: [{name: A}]\n"
        "checks:\n  - {id: c, name: C, category: A, steps: [{request: {url: 'http://10.11.12.13/'}}]}\n"
    )
    process = manage("try_suite", "/dev/stdin", "--base-url", target.base_url, input_text=suite)
    assert process.returncode == 1
    assert "host '10.11.12.13' is not in this environment's allowed hosts (127.0.0.1)" in process.stdout


def test_try_suite_refuses_an_unknown_check_and_a_broken_file(tmp_path, target):
    unknown = manage("try_suite", GOLDEN, "--base-url", target.base_url, "--check", "nope")
    assert unknown.returncode == 1 and "no check nope in" in unknown.stderr and "backend_health" in unknown.stderr
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    broken = manage("try_suite", str(path), "--base-url", target.base_url)
    assert broken.returncode == 1 and "unknown key 'expect_staus'" in broken.stderr


def test_try_suite_variables_override_the_suites(target):
    process = manage(
        "try_suite", GOLDEN, "--base-url", target.base_url, "--check", "critical_endpoints", "--var", "client_id=nobody"
    )
    assert process.returncode == 1
    assert "auth profile 'default' (login): POST" in process.stdout and "answered 401" in process.stdout


@pytest.mark.django_db(transaction=True)
def test_load_suites_reports_a_broken_file_and_keeps_the_others(tmp_path):
    (tmp_path / "golden-path.yaml").write_text((settings.GOLDPATH_SUITES_DIR / "golden-path.yaml").read_text())
    (tmp_path / "broken.yaml").write_text(BROKEN)
    process = manage("load_suites", env=subprocess_env(GOLDPATH_SUITES_DIR=str(tmp_path)))
    assert process.returncode == 1
    assert "Loaded golden-path version 1" in process.stdout
    assert "Not loaded: " in process.stderr and "unknown key 'expect_staus'" in process.stderr
    assert list(Suite.objects.values_list("name", flat=True)) == ["golden-path"]


@pytest.mark.django_db(transaction=True)
def test_run_suite_sets_environment_variables_and_refuses_a_template_value(unconsumed_broker):
    unconsumed_queue_env = subprocess_env(**unconsumed_broker)
    process = manage(
        "run_suite",
        "golden-path",
        "--env",
        "staging",
        "--base-url",
        "http://127.0.0.1:9",
        "--var",
        "client_id=staging-client",
        "--var",
        "client_secret=${env.STAGING_SECRET}",
        env=unconsumed_queue_env,
    )
    assert process.returncode == 0, process.stderr
    assert Environment.objects.get(name="staging").variables == {
        "client_id": "staging-client",
        "client_secret": "${env.STAGING_SECRET}",
    }
    bad = manage("run_suite", "golden-path", "--env", "staging", "--var", "token=${uuid}", env=unconsumed_queue_env)
    assert bad.returncode == 1 and "only ${env.NAME} references may appear in a value" in bad.stderr
