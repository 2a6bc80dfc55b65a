"""Verdict and category table: pure functions, no database."""

from runs.analysis.categories import CategoryRow, category_table, most_failing
from runs.analysis.facts import ResultFacts
from runs.analysis.verdict import FAIL, PARTIAL, PASS, compute_verdict


def fact(outcome="passed", category="Message Flow", critical=False, duration=0.1):
    return ResultFacts(name="check", category=category, outcome=outcome, duration_s=duration, critical=critical)


def test_it_passes_when_every_check_passed():
    assert compute_verdict([fact(), fact()]) == PASS


def test_it_is_partial_when_only_noncritical_checks_fail():
    results = [fact()] * 9 + [fact("failed")] * 3
    assert compute_verdict(results) == PARTIAL


def test_it_fails_when_a_critical_category_fails():
    assert compute_verdict([fact(), fact("failed", "Connectivity", critical=True)]) == FAIL


def test_it_fails_below_the_minimum_pass_rate():
    results = [fact()] * 4 + [fact("failed")] * 6
    assert compute_verdict(results, min_pass_rate=0.5) == FAIL


def test_it_counts_an_error_as_failing():
    assert compute_verdict([fact(), fact(), fact("error")]) == PARTIAL


def test_it_ignores_skipped_checks():
    assert compute_verdict([fact(), fact("skipped")]) == PASS


def test_it_fails_when_nothing_ran():
    assert compute_verdict([]) == FAIL
    assert compute_verdict([fact("skipped")]) == FAIL


def test_category_table_keeps_the_suite_order_and_totals():
    results = [fact(category="B"), fact("failed", category="A", duration=0.5), fact(category="A", duration=0.25)]
    rows, total = category_table(results, order=["A", "B", "Unused"])
    assert [(r.name, r.total, r.passed, r.failed) for r in rows] == [("A", 2, 1, 1), ("B", 1, 1, 0)]
    assert rows[0].duration_s == 0.75
    assert rows[0].success_rate == 0.5
    assert (total.total, total.passed, total.failed) == (3, 2, 1)


def test_category_success_rate_is_none_when_all_skipped():
    rows, _ = category_table([fact("skipped")])
    assert rows[0].success_rate is None


def test_the_category_table_keeps_the_most_failing_rows_in_order_and_sums_up_the_rest():
    results = [fact("failed", "A"), fact("passed", "B"), fact("failed", "C"), fact("error", "C"), fact("skipped", "D")]
    rows, _ = category_table(results, order=["D", "C", "B", "A"])
    shown, rest = most_failing(rows, 2)
    assert [row.name for row in shown] == ["C", "A"]
    assert rest == CategoryRow("2 more categories", total=2, passed=1, failed=0, skipped=1, duration_s=0.2)
    assert most_failing(rows, 4) == (rows, None)
