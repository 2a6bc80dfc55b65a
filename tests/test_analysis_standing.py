"""How a run reads on summaries, and the business headline: pure functions, no database."""

import pytest

from runs.analysis.classification import BUILTIN_RULES
from runs.analysis.reach import NO_RESPONSE_CLASSES, never_reached
from runs.analysis.standing import (
    NOT_ASSESSED,
    REAL,
    SUSPECT,
    Exposure,
    exposure_order,
    headline,
    realness_of,
    run_standing,
)

REFUSED = ("failed", "connection-refused")
DNS = ("error", "dns-failure")
CLOSED = ("failed", "ws-closed-1000-after-send")


def test_the_no_response_classes_are_names_of_built_in_rules():
    assert NO_RESPONSE_CLASSES <= {rule.name for rule in BUILTIN_RULES}


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([REFUSED, REFUSED, DNS], True),  # every check failed before any response
        ([REFUSED, ("skipped", "")], True),  # skipped checks say nothing
        ([REFUSED, ("passed", "")], False),  # one answer: the service was reached
        ([REFUSED, CLOSED], False),  # a WebSocket closed by the server: it answered
        ([("failed", "")], False),  # unclassified: nothing says no response came
        ([("skipped", "")], False),  # nothing ran
        ([], False),  # no results (pruned, or none yet)
    ],
)
def test_a_run_never_reached_its_service_only_when_every_executed_check_failed_before_a_response(outcomes, expected):
    assert never_reached(outcomes) is expected


@pytest.mark.parametrize(
    ("imported", "score", "mock_count", "expected"),
    [
        (False, 0.9, 0, REAL),
        (False, 0.9, 8, SUSPECT),  # any mock indicator is enough to doubt a pass
        (False, 0.4, 0, SUSPECT),  # under the realness threshold
        (False, None, 0, NOT_ASSESSED),  # never analysed: nothing claimed
        (True, 0.1, 2, NOT_ASSESSED),  # an import never touched the network
    ],
)
def test_realness_is_real_suspect_or_not_assessed(imported, score, mock_count, expected):
    assert realness_of(imported, score, mock_count) == expected


def standing(**fields):
    values = {
        "verdict": "PASS",
        "base_url": "https://staging.example.com",
        "imported": False,
        "outcomes": [("passed", "")],
        "realness_score": 0.9,
        "mock_count": 0,
    }
    return run_standing(**values | fields)


def test_a_real_pass_is_a_clean_pass_with_nothing_more_to_say():
    clean = standing()
    assert (clean.key, clean.label) == ("pass", "PASS")
    assert (clean.mock_note, clean.realness_note, clean.unreachable_note) == ("", "", "")


def test_a_pass_with_mock_indicators_reads_mocked_and_counts_them():
    mocked = standing(mock_count=8)
    assert (mocked.key, mocked.label) == ("pass-mocked", "PASS · mocked?")
    assert mocked.mock_note == "8 mock indicators"
    assert standing(mock_count=1).mock_note == "1 mock indicator"
    assert mocked.realness_note == ""  # the indicators already say why


def test_a_pass_under_the_realness_threshold_reads_mocked_and_says_realness_is_suspect():
    low = standing(realness_score=0.3)
    assert (low.label, low.realness_note) == ("PASS · mocked?", "realness: suspect")


def test_a_failing_run_keeps_its_verdict_and_its_indicators():
    partial = standing(verdict="PARTIAL SUCCESS", outcomes=[CLOSED, ("passed", "")], mock_count=2)
    assert (partial.key, partial.label) == ("partial-success", "PARTIAL SUCCESS")
    assert partial.mock_note == "2 mock indicators"


def test_an_import_is_not_accused_of_being_mocked():
    imported = standing(imported=True, realness_score=0.1, mock_count=2)
    assert (imported.key, imported.label, imported.mock_note) == ("pass", "PASS", "")
    assert imported.realness_note == "realness: not assessed (imported results)"


def test_a_run_that_never_reached_its_service_reads_could_not_reach_and_assesses_no_revenue():
    unreachable = standing(verdict="FAIL", outcomes=[REFUSED, DNS], realness_score=0.0)
    assert (unreachable.reached, unreachable.key, unreachable.label) == (False, "unreachable", "COULD NOT REACH")
    assert unreachable.unreachable_note == (
        "could not reach https://staging.example.com — configuration or outage, revenue not assessed"
    )


def test_only_goldpaths_probes_can_fail_to_reach_a_service():
    """An import's connection errors are its tool's, sent from CI to wherever it pointed."""
    assert standing(verdict="FAIL", imported=True, outcomes=[REFUSED]).reached


def test_the_headline_sums_the_revenue_at_risk_and_counts_the_environments():
    exposures = [Exposure("staging", 550_000, False), Exposure("production", 0, False), Exposure("qa", 80_000, False)]
    assert headline(exposures) == "$630,000 monthly revenue at risk across 2 of 3 environments"
    assert headline(exposures[:1]) == "$550,000 monthly revenue at risk across 1 of 1 environment"


def test_the_headline_says_how_many_environments_could_not_be_reached():
    exposures = [Exposure("staging", 550_000, False), Exposure("typo", 0, True), Exposure("production", 0, False)]
    assert headline(exposures) == (
        "$550,000 monthly revenue at risk across 1 of 3 environments, and 1 environment could not be reached"
    )
    assert headline(exposures[1:]) == (
        "No revenue at risk on the 1 environment reached; 1 environment could not be reached"
    )
    assert headline([Exposure("a", 0, True), Exposure("b", 0, True)]) == (
        "2 environments could not be reached: revenue not assessed"
    )


def test_the_headline_says_when_nothing_is_at_risk():
    assert headline([Exposure("staging", 0, False)]) == "No revenue at risk on any environment"


def test_environments_are_ordered_most_revenue_at_risk_first_then_unreachable_then_the_rest():
    exposures = [
        Exposure("alpha", 0, False),
        Exposure("beta", 80_000, False),
        Exposure("gamma", 0, True),
        Exposure("delta", 550_000, False),
        Exposure("epsilon", 80_000, True),
    ]
    assert [e.name for e in sorted(exposures, key=exposure_order)] == ["delta", "epsilon", "beta", "gamma", "alpha"]
