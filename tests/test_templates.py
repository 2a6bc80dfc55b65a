"""Templates (pure units): names found at load, values rendered at run time, secrets reported."""

import pytest

from probes.failures import StepFailed
from probes.templates import TemplateError, Variables, names_in, render


def variables(check=None, suite=None, builtins=None, environ=None):
    secrets: list[str] = []
    found = Variables(
        check or {}, suite or {}, builtins or {"base_url": "http://b"}, secret=secrets.append, environ=environ or {}
    )
    return found, secrets


def test_it_finds_every_name_recursively():
    assert list(names_in({"path": "/k/${kernel}/${ run }", "json": [{"x": "${env.TOKEN}"}], "${key}": 1})) == [
        "kernel",
        "run",
        "env.TOKEN",
        "key",
    ]


def test_a_doubled_dollar_is_a_literal():
    assert list(names_in("cost: $${price}")) == []
    assert render("cost: $${price}", lambda name: "x") == "cost: ${price}"


def test_a_malformed_name_is_an_error():
    with pytest.raises(TemplateError, match="is not a template name"):
        list(names_in("${not a name}"))


def test_a_whole_string_template_keeps_the_values_type():
    found, _ = variables(check={"n": 3, "doc": {"a": 1}})
    assert render({"count": "${n}", "label": "n=${n}", "doc": "${doc}"}, found) == {
        "count": 3,
        "label": "n=3",
        "doc": {"a": 1},
    }


def test_vars_are_rendered_once_per_sample_and_uuid_each_time():
    found, _ = variables(check={"msg": "${uuid}"})
    assert found("msg") == found("msg")
    assert found("uuid") != found("uuid")


def test_lookup_order_is_check_vars_saved_suite_vars_builtins():
    found, _ = variables(check={"a": "check"}, suite={"a": "suite", "b": "suite", "base_url": "mine"})
    found.save("b", "saved")
    assert (found("a"), found("b"), found("base_url")) == ("check", "saved", "mine")


def test_a_check_variable_may_build_on_the_suite_variable_of_its_name():
    found, _ = variables(check={"token": "token ${token}"}, suite={"token": "${env.T}"}, environ={"T": "s3cret"})
    assert found("token") == "token s3cret"


def test_environment_values_are_handed_over_as_secrets():
    found, secrets = variables(suite={"auth": "Bearer ${env.API_TOKEN}"}, environ={"API_TOKEN": "abc123"})
    assert found("auth") == "Bearer abc123" and secrets == ["abc123"]


def test_a_missing_environment_variable_names_it_and_never_a_value():
    found, _ = variables(suite={"token": "${env.JUPYTER_TOKEN}"})
    with pytest.raises(StepFailed) as caught:
        found("token")
    assert caught.value.code == "config.missing_env"
    assert str(caught.value).startswith("environment variable JUPYTER_TOKEN is not set on the worker")


def test_a_variable_that_refers_to_itself_fails_clearly():
    found, _ = variables(suite={"a": "${b}", "b": "${a}"})
    with pytest.raises(StepFailed, match="refers to itself"):
        found("a")
