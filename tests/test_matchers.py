"""Matchers and JSONPath (pure units): what the suite format promises about each operator."""

import pytest

from probes.matchers import (
    MISSING,
    MatcherError,
    compile_document_matcher,
    compile_matcher,
    compile_path,
    flow,
    parse_json,
)


@pytest.mark.parametrize(
    ("spec", "value", "matches"),
    [
        ("python3", "python3", True),
        ("python3", "python2", False),
        (1, 1.0, True),
        (1, True, False),  # true is not 1
        (True, 1, False),
        ({"chat": True}, {"chat": True, "agents": False}, True),  # a mapping literal is a subset
        ({"chat": True}, {"chat": False}, False),
        ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, True),
        ([1, {"x": 1}], [1, {"x": 1, "y": 2}], True),
        ([1, 2], [1, 2, 3], False),
        ({"eq": 3}, 3, True),
        ({"ne": 3}, 4, True),
        ({"ne": 3}, 3, False),
        ({"lt": 300}, 299.9, True),
        ({"lt": 300}, 300, False),
        ({"le": 300}, 300, True),
        ({"gt": 0, "lt": 10}, 5, True),
        ({"gt": 0, "lt": 10}, 10, False),
        ({"ge": 1}, "2", False),  # not a number
        ({"in": [200, 204]}, 204, True),
        ({"in": [200, 204]}, 500, False),
        ({"contains": "json"}, "application/json; charset=utf-8", True),
        ({"contains": "json"}, "text/html", False),
        ({"contains": {"id": 3}}, [{"id": 1}, {"id": 3, "x": 0}], True),
        ({"matches": r"^\d+\.\d+$"}, "3.14", True),
        ({"matches": r"^\d+$"}, "3.14", False),
        ({"exists": True}, "anything", True),
        ({"exists": True}, MISSING, False),
        ({"exists": False}, MISSING, True),
        ({"type": "integer"}, 3, True),
        ({"type": "number"}, 3, True),
        ({"type": "integer"}, 3.5, False),
        ({"type": "string"}, "x", True),
        ({"type": "boolean"}, 0, False),
        ({"type": "null"}, None, True),
        ({"type": "array"}, [], True),
        ({"type": "object"}, {}, True),
        ({"length": 3}, [1, 2, 3], True),
        ({"length": {"gt": 2}}, "ab", False),
        ({"not": {"in": ["error", "failed"]}}, "ok", True),
        ({"not": "ok"}, "ok", False),
        ({"type": "subscribed"}, {"type": "subscribed"}, True),  # not a type name: a literal
        ({"price": {"ge": 0}, "symbol": "ACME"}, {"price": 3, "symbol": "ACME", "seq": 1}, True),  # operators inside
        ({"price": {"ge": 0}, "symbol": "ACME"}, {"price": -1, "symbol": "ACME"}, False),
        ({"quote": {"price": {"lt": 5}, "tags": ["a"]}}, {"quote": {"price": 3, "tags": ["a"]}}, True),
        ({"quote": {"price": {"lt": 5}}}, {"quote": 3}, False),
    ],
)
def test_a_matcher_matches_as_the_format_says(spec, value, matches):
    assert (compile_matcher(spec).check(value) is None) is matches


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"matches": "("}, "not a valid regular expression"),
        ({"lt": "soon"}, "takes a number"),
        ({"in": 3}, "takes a list"),
        ({"exists": "yes"}, "takes true or false"),
    ],
)
def test_a_bad_operator_is_refused_at_load(spec, error):
    with pytest.raises(MatcherError, match=error):
        compile_matcher(spec)


def test_a_mismatch_says_where_what_was_expected_and_what_was_seen():
    matcher = compile_document_matcher({"$.id": {"exists": True}, "$.name": "python3", "$.features": {"chat": True}})
    assert matcher.check({"id": 1, "name": "python3", "features": {"chat": False}}) == (
        "$.features.chat: expected true, got false"
    )
    assert matcher.check({"name": "python3"}) == "$.id: expected present"
    assert matcher.check({"id": 1, "name": "python2", "features": {}}) == "$.name: expected python3, got python2"


def test_jsonpath_is_rfc_9535():
    assert compile_path("$.a.b").get({"a": {"b": 1}}) == 1
    assert compile_path("$['parent_header'].msg_id").get({"parent_header": {"msg_id": "m"}}) == "m"
    assert compile_path("$.items[*].id").get({"items": [{"id": 1}, {"id": 2}]}) == [1, 2]  # not singular: a list
    assert compile_path("$.items[?@.x > 1].x").get({"items": [{"x": 1}, {"x": 2}]}) == [2]
    assert compile_path("$.a").get({"b": 1}) is MISSING
    with pytest.raises(MatcherError, match="is not a JSONPath"):
        compile_path("$.a[")


def test_text_matches_the_raw_text_of_a_frame():
    matcher = compile_document_matcher({"text": {"matches": "^pong"}})
    assert matcher.check(MISSING, "pong 42") is None
    assert matcher.check(MISSING, "ping") == "text: expected to match /^pong/, got ping"


def test_a_document_matcher_knows_what_container_its_paths_expect():
    assert compile_document_matcher({"$.type": "x"}).expects is dict
    assert compile_document_matcher({"$[3]": "x"}).expects is list
    assert compile_document_matcher({"$..type": "x"}).expects is None


def test_values_are_written_back_as_in_a_suite_file():
    assert (
        flow({"$.msg_type": "execute_result", "$.n": 3, "$.ok": True})
        == "{$.msg_type: execute_result, $.n: 3, $.ok: true}"
    )
    assert flow({"$.text": "42\n"}) == '{$.text: "42\\n"}'


def test_a_filter_that_selects_nothing_is_missing_so_exists_false_holds():
    document = {"items": [{"x": 2}]}
    assert compile_document_matcher({"$.items[?@.x == 1]": {"exists": False}}).check(document) is None
    assert compile_document_matcher({"$.items[?@.x == 1]": {"exists": True}}).check(document) == (
        "$.items[?@.x == 1]: expected present"
    )


def test_a_backtracking_pattern_fails_its_value_instead_of_stalling_the_probe():
    problem = compile_matcher({"matches": "^(a|a)*$"}).check("a" * 64 + "!")
    assert problem is not None and "backtracking" in problem


def test_json_deeper_than_python_follows_is_not_json():
    assert parse_json("[" * 200_000 + "]" * 200_000) is MISSING
    assert parse_json(b"\xff") is MISSING
