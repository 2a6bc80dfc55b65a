"""Suites page: every suite with its checks, categories, impact tags and versions, and the
suite files that do not validate (their suites keep their current version). DevOps set a
suite's impact tags here; each save is a new version."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from probes.suite.loader import SuiteFileError, load_suite_file, suite_from_definition
from runs import roles
from runs.models import Category, ImpactTag, Suite, SuiteVersion, TestCase
from runs.suites import TagSetting, declared_name, load_all_suites, retag_suite, suite_files

CATEGORIES_PER_PAGE = 50  # an imported suite may hold thousands


@dataclass
class FileProblem:
    path: str
    suite: str | None
    lines: list[str]


def file_problems() -> list[FileProblem]:
    """The suite files that do not validate, as they are on disk now (nothing is stored)."""
    problems = []
    for path in suite_files():
        try:
            stat = path.stat()
        except OSError:  # removed since the listing: nothing left to report
            continue
        lines = _validation_problems(str(path), stat.st_mtime_ns, stat.st_size)
        if lines is not None:
            problems.append(FileProblem(path.name, declared_name(path), list(lines)))
    return problems


@functools.lru_cache(maxsize=512)
def _validation_problems(path: str, mtime_ns: int, size: int) -> tuple[str, ...] | None:
    """Why the file does not validate, or None. Keyed by the file's modification time and
    size, so the page parses a file again only once it has changed, not on every visit."""
    try:
        load_suite_file(Path(path))
    except SuiteFileError as exc:
        return tuple(exc.lines)
    return None


def _per_suite(rows: QuerySet) -> Coalesce:
    """How many of ``rows`` each suite has, as a subquery: counting three relations over one
    join multiplied them (an imported suite of 10,000 test cases in 10,000 categories: 10^8
    joined rows, five minutes for the page)."""
    counted = rows.filter(suite=OuterRef("pk")).order_by().values("suite").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


@login_required
def suites_page(request: HttpRequest) -> HttpResponse:
    suites = (
        Suite.objects.select_related("current_version")
        .annotate(
            checks=_per_suite(TestCase.objects.filter(active=True)),
            categories_count=_per_suite(Category.objects.all()),
            versions_count=_per_suite(SuiteVersion.objects.all()),
        )
        .order_by("origin", "name")
    )
    mrr = dict(Suite.objects.annotate(mrr=Sum("impact_tags__mrr")).values_list("pk", "mrr"))
    return render(
        request,
        "dashboard/suites.html",
        {
            "suites": suites,
            "mrr": mrr,
            "problems": file_problems(),
            "suites_dir": settings.GOLDPATH_SUITES_DIR,
            "can_configure": roles.can(request.user, roles.CONFIGURE),
        },
    )


@login_required
def suite_page(request: HttpRequest, name: str, number: int | None = None) -> HttpResponse:
    suite = get_object_or_404(Suite.objects.select_related("current_version"), name=name)
    versions = suite.versions.select_related("created_by").annotate(runs_count=Count("runs"))
    shown = get_object_or_404(suite.versions, number=number) if number else suite.current_version
    model = None
    invalid = ""
    if shown is not None:
        try:
            model = suite_from_definition(shown.definition)
        except ValueError as exc:
            invalid = str(exc).splitlines()[0]
    checks = [check.id for check in model.checks] if model else []
    test_cases = {tc.node_id: tc for tc in suite.test_cases.filter(node_id__in=checks)}  # the ones listed
    categories = suite.categories.annotate(checks=Count("test_cases", filter=Q(test_cases__active=True))).order_by(
        "order", "name"
    )
    return render(
        request,
        "dashboard/suite.html",
        {
            "suite": suite,
            "version": shown,
            "versions": versions,
            "model": model,
            "invalid": invalid,
            "test_cases": test_cases,
            "tags": suite.impact_tags.all(),
            "can_edit_tags": roles.can(request.user, roles.CONFIGURE) and suite.current_version is not None,
            "categories": Paginator(categories, CATEGORIES_PER_PAGE).get_page(request.GET.get("page")),
        },
    )


@require_POST
@roles.permission_required(roles.CONFIGURE)
def suites_reload(request: HttpRequest) -> HttpResponse:
    report = load_all_suites()
    for suite in report.suites:
        version = suite.current_version
        assert version is not None, "storing a suite makes a version current"
        messages.success(request, f"{suite.name}: version {version.number} is current.")
    for path, error in report.errors.items():
        messages.error(request, f"{path.name} was not loaded (its suite keeps its current version): {error}")
    return redirect("dashboard-suites")


class TagForm(forms.Form):
    original = forms.CharField(widget=forms.HiddenInput, required=False)
    name = forms.CharField(max_length=100)
    mrr = forms.IntegerField(label="MRR ($ a month)", min_value=0, max_value=2**31 - 1)
    severity = forms.ChoiceField(choices=ImpactTag.Severity.choices, initial=ImpactTag.Severity.MEDIUM)
    description = forms.CharField(required=False)


TagFormSet = forms.formset_factory(TagForm, extra=1, can_delete=True)


@roles.permission_required(roles.CONFIGURE)
def suite_tags(request: roles.LoggedInRequest, name: str) -> HttpResponse:
    suite = get_object_or_404(
        Suite.objects.select_related("current_version"),
        name=name,
        origin=Suite.Origin.PROBE,
        current_version__isnull=False,
    )
    initial = [
        {"original": tag["name"], "severity": "medium", "description": "", **tag}
        for tag in suite.definition.get("impact_tags", [])
    ]
    formset = TagFormSet(request.POST or None, initial=initial)
    problems: list[str] = []
    if request.method == "POST" and formset.is_valid():
        kept = [form.cleaned_data for form in formset if form.cleaned_data and not form.cleaned_data["DELETE"]]
        tags = [TagSetting(**{k: v for k, v in data.items() if k != "DELETE"}) for data in kept]
        try:
            saved = retag_suite(suite, tags, request.user)
        except SuiteFileError as exc:
            problems = exc.lines
        else:
            version = saved.current_version
            assert version is not None, "retagging makes the new version current"
            messages.success(request, f"Impact tags saved: version {version.number} is current.")

            return redirect("dashboard-suite", name=suite.name)
    return render(request, "dashboard/suite_tags.html", {"suite": suite, "formset": formset, "problems": problems})
