"""Read-only pages. Thin: they load data and call runs.reporting / runs.analysis for every
judgement; every role may read them."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from dashboard.forms import NoteForm, RunFilterForm, new_request_key, note_draft_key
from runs import history, roles
from runs.analysis.categories import most_failing
from runs.analysis.comparison import compare_runs
from runs.analysis.facts import FAILING, PASSED, SKIPPED
from runs.analysis.flakiness import flip_rate, is_flaky
from runs.analysis.shown import Shown, listed, top
from runs.exporters.formats import FORMATS, export_run
from runs.exporters.formats import filename as export_filename
from runs.models import Environment, Result, Run, TestCase
from runs.notes import notes_with_history
from runs.overview import SPARKLINE_RUNS, overview_rows
from runs.reporting import build_report, compared_results, metric_facts
from runs.services import not_runnable_reason

RUNS_PER_PAGE = 25
CASE_HISTORY_RUNS = 50
# However many results a run holds, its page lists at most this many per section and the
# category table this many rows; "and N more" leads to the run's results, a page at a time.
RESULTS_SHOWN = 50
RUN_CATEGORIES = 25
RESULTS_PER_PAGE = 50
RESULT_FILTERS = {"failing": FAILING, "passed": (PASSED,), "skipped": (SKIPPED,)}


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "dashboard/overview.html",
        {"rows": overview_rows(), "request_key": new_request_key(), "sparkline_runs": SPARKLINE_RUNS},
    )


@login_required
def runs_list(request: HttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET or None)
    runs = form.apply(Run.objects.for_lists())
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "runs/list.html", {"page": page, "form": form, "query": query.urlencode()})


def _run_or_404(run_id: int) -> Run:
    related = ("environment", "suite", "version", "parent", "triggered_by")
    return get_object_or_404(Run.objects.select_related(*related), pk=run_id)


@login_required
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(run_id)
    notes = notes_with_history(run)
    not_runnable = not_runnable_reason(run.suite)
    report = build_report(run)
    category_rows, more_categories = most_failing(report.categories, RUN_CATEGORIES)
    return render(
        request,
        "runs/detail.html",
        {
            "run": run,
            "report": report,
            "standing": report.standing,
            "category_rows": category_rows,
            "more_categories": more_categories,
            "progress": _progress(report.results),
            "failing": top(report.failing, RESULTS_SHOWN),
            "passing": top(report.passing, RESULTS_SHOWN),
            "flagged": top(report.flagged_results, RESULTS_SHOWN),
            "notes": notes,
            "editable_notes": {note.pk for note in notes if roles.may_edit_note(request.user, note)},
            "note_form": NoteForm(initial={"body": request.session.pop(note_draft_key(run.pk), "")}),
            "reruns": run.reruns.order_by("-pk")[:10],
            "categories": run.suite.categories.filter(name__in=[row.name for row in category_rows]),
            "request_key": new_request_key(),
            "can_rerun": roles.can(request.user, roles.RERUN) and not_runnable is None,
            "not_runnable": not_runnable,
            "can_write_notes": roles.can(request.user, roles.NOTES),
        },
    )


@login_required
def run_results(request: HttpRequest, run_id: int) -> HttpResponse:
    """A run's results a page at a time, all or by outcome: where the run page's "and N
    more" leads."""
    run = _run_or_404(run_id)
    outcome = request.GET.get("outcome", "")
    results = run.results.select_related("test_case__category")
    if outcome in RESULT_FILTERS:
        results = results.filter(outcome__in=RESULT_FILTERS[outcome])
    page = Paginator(results, RESULTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "run": run,
        "page": page,
        "outcome": outcome if outcome in RESULT_FILTERS else "",
        "outcome_choices": [("", "all"), *((name, name) for name in RESULT_FILTERS)],
        "query": query.urlencode(),
        "flaky": history.flaky_test_cases(run, test_case_ids={r.test_case_id for r in page}) if run.is_done else {},
        "request_key": new_request_key(),
        "can_rerun": roles.can(request.user, roles.RERUN) and not_runnable_reason(run.suite) is None,
    }
    return render(request, "runs/results.html", context)


@login_required
def run_progress(request: HttpRequest, run_id: int) -> HttpResponse:
    """The live part of a run page, polled while the run is queued or running."""
    run = _run_or_404(run_id)
    results = run.results.select_related("test_case__category").order_by("finished_at", "pk")
    return render(request, "runs/_progress.html", {"run": run, "results": _progress(list(results))})


def _progress(results: list[Result]) -> Shown[Result]:
    """What the live list shows of a run's results: the failing ones first, then the rest."""
    return top(results, RESULTS_SHOWN, rank=lambda result: result.outcome in FAILING)


@roles.permission_required(roles.EXPORT)
def run_export(request: HttpRequest, run_id: int, fmt: str) -> HttpResponse:
    run = _run_or_404(run_id)
    if fmt not in FORMATS:
        raise Http404(f"Unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.")
    text, export_format = export_run(run, fmt)
    response = HttpResponse(text, content_type=export_format.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export_filename(run, export_format)}"'
    return response


@login_required
def compare(request: HttpRequest) -> HttpResponse:
    recent = Run.objects.select_related("environment", "suite").order_by("-pk")[:50]
    context: dict[str, Any] = {"recent": recent, "a": request.GET.get("a", ""), "b": request.GET.get("b", "")}

    if context["a"] and context["b"]:
        try:
            before, after = (_run_or_404(int(context[k])) for k in ("a", "b"))
        except ValueError:
            raise Http404("Run ids are numbers.") from None
        comparison = compare_runs(
            compared_results(before),
            compared_results(after),
            [metric_facts(m) for m in before.measurements.all()],
            [metric_facts(m) for m in after.measurements.all()],
        )
        context.update(
            before=before,
            after=after,
            comparison=comparison,
            new_failures=top(comparison.new_failures, RESULTS_SHOWN),
            fixed=top(comparison.fixed, RESULTS_SHOWN),
            still_failing=top(comparison.still_failing, RESULTS_SHOWN),
            added=listed(comparison.added),
            removed=listed(comparison.removed),
        )
    return render(request, "dashboard/compare.html", context)


@login_required
def test_case_history(request: HttpRequest, test_case_id: int) -> HttpResponse:
    test_cases = TestCase.objects.select_related("suite__current_version", "category")
    test_case = get_object_or_404(test_cases, pk=test_case_id)
    environment = request.GET.get("environment", "")
    recent = history.recent_results(test_case, CASE_HISTORY_RUNS, environment)
    outcomes = [r.outcome for r in recent]
    definition: dict[str, Any] = next(
        (c for c in test_case.suite.definition.get("checks", []) if c["id"] == test_case.node_id), {}
    )
    return render(
        request,
        "dashboard/test_case.html",
        {
            "test_case": test_case,
            "results": recent,
            "environment": environment,
            "environments": Environment.objects.values_list("name", flat=True),
            "flip_rate": flip_rate(outcomes),
            "flaky": is_flaky(outcomes),
            "classes": Counter(r.failure_class for r in recent if r.failure_class).most_common(),
            "timeout_s": definition.get("timeout_s"),
            "durations": [{"run": r.run_id, "duration_s": r.duration_s, "outcome": r.outcome} for r in recent],
        },
    )


@login_required
def api_tokens(request: roles.LoggedInRequest) -> HttpResponse:
    return render(request, "dashboard/tokens.html", {"tokens": request.user.api_tokens.all()})
