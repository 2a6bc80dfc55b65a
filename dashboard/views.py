"""Pages. Thin: they load data and call runs.reporting / runs.analysis for every judgement."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from runs.models import Run
from runs.reporting import build_report

RUNS_PER_PAGE = 25


@login_required
def runs_list(request):
    runs = Run.objects.select_related("environment", "suite")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "runs/list.html", {"page": page})


@login_required
def run_detail(request, run_id: int):
    run = get_object_or_404(Run.objects.select_related("environment", "suite", "parent", "triggered_by"), pk=run_id)
    return render(request, "runs/detail.html", {"run": run, "report": build_report(run)})
