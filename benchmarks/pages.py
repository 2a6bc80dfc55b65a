"""Server time and SQL queries of Goldpath's pages over a generated run history.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/goldpath_bench python benchmarks/pages.py --runs 1000

Use a throwaway database: the script migrates it, fills it with generated runs
(``manage.py generate_history``: environments env-1..env-K) and adds a superuser ``bench``.
A PostgreSQL database named in DATABASE_URL is created if missing. Without DATABASE_URL
it uses SQLite in a new temporary GOLDPATH_DATA_DIR (unless one is set).

Each page is fetched with Django's test client (in-process: server time, no network),
once to warm up, once under CaptureQueriesContext to count its SQL queries, then
``--repeat`` times to time it. Query counts are taken twice: with a small history
(``--small`` runs) and with the full one (``--runs``); a page whose count changes has a
query per row somewhere. Exit status 1 when a page misses the p95 goal or its query count
grows, 0 otherwise.

``--import-suites 10000`` also imports, before the full measurement, two JUnit files of that
many one-case suites (issue 14: 778 KB that once made the trends page 56 MB) through the
real importer, and measures the pages that show them beside the others.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
GENERATED_PREFIX = "env-"
BENCH_USER = "bench"
IMPORTED_SUITE, IMPORTED_ENVIRONMENT = "ci-huge", f"{GENERATED_PREFIX}ci"  # generate_history --clear drops it


@dataclass
class Page:
    name: str
    url: str


@dataclass
class Measure:
    queries: int
    kilobytes: float
    times_ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs in the full history (1000)")
    parser.add_argument("--small", type=int, default=100, help="runs in the small history (100)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page (20)")
    parser.add_argument("--environments", type=int, default=5, help="generated environments (5)")
    parser.add_argument("--goal-ms", type=float, default=150, help="p95 goal per page, in ms (150)")
    parser.add_argument("--page-budget", type=float, default=60, help="stop timing a page after this many s (60)")
    parser.add_argument(
        "--import-suites", type=int, default=0, help="also import two files of N one-case suites (e.g. 10000)"
    )
    parser.add_argument(
        "--fresh", action="store_true", help="delete previously generated runs (env-*) first, to measure both sizes"
    )
    return parser.parse_args()


def prepare_environment() -> None:
    if not os.environ.get("DATABASE_URL") and not os.environ.get("GOLDPATH_DATA_DIR"):
        os.environ["GOLDPATH_DATA_DIR"] = tempfile.mkdtemp(prefix="goldpath-bench-")
        print(f"No DATABASE_URL: SQLite in {os.environ['GOLDPATH_DATA_DIR']}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    os.environ.setdefault("GOLDPATH_LOG_LEVEL", "WARNING")
    # generate_history records real runs of the suite against the bundled target's demo client.
    os.environ.setdefault("GOLDPATH_TARGET_SECRET", "demo-secret")
    sys.path.insert(0, str(BASE_DIR))


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it does not exist."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    if "postgresql" not in config["ENGINE"]:
        return
    params = {
        "host": config.get("HOST") or "127.0.0.1",
        "port": config.get("PORT") or 5432,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            print(f"Created database {config['NAME']}")


def database_description() -> str:
    from django.conf import settings
    from django.db import connection

    connection.ensure_connection()
    if connection.vendor == "postgresql":
        major, minor = divmod(connection.pg_version, 10000)
        version = f"PostgreSQL {major}.{minor}"
    else:
        version = f"{connection.vendor} {getattr(connection.Database, 'sqlite_version', '')}".strip()
    return f"{version}, database {settings.DATABASES['default']['NAME']}"


def generate(runs: int, environments: int, seed: int) -> float:
    from django.core.management import call_command

    started = time.monotonic()
    call_command("generate_history", runs=runs, environments=environments, seed=seed)
    return time.monotonic() - started


def generated_runs() -> int:
    from runs.models import Run

    return Run.objects.filter(environment__name__startswith=GENERATED_PREFIX).count()


def import_one_case_suites(suites: int) -> float:
    """Two imports of ``suites`` one-case suites (one in 7 failing, shifted the second time)."""
    from runs.importers.service import import_results
    from tests.samples import one_case_suites

    started = time.monotonic()
    for shift in (0, 3):
        data = io.BytesIO(one_case_suites(suites, 7, shift))
        import_results(data, suite_name=IMPORTED_SUITE, environment_name=IMPORTED_ENVIRONMENT)
    return time.monotonic() - started


def import_pages() -> list[Page]:
    """The pages that list what the imports stored, when they did."""
    from django.urls import reverse

    from runs.models import Run

    imported = list(Run.objects.filter(suite__name=IMPORTED_SUITE).order_by("-pk")[:2])
    if len(imported) < 2:
        return []
    newest, before = imported
    results = reverse("runs-results", args=[newest.pk])
    return [
        Page("imported run", reverse("runs-detail", args=[newest.pk])),
        Page("imported results p2", f"{results}?outcome=failing&page=2"),
        Page("compare imports", f"{reverse('dashboard-compare')}?a={before.pk}&b={newest.pk}"),
        Page("trends, imports", f"{reverse('dashboard-trends')}?environment={IMPORTED_ENVIRONMENT}"),
        Page("imported suite", reverse("dashboard-suite", args=[IMPORTED_SUITE])),
    ]


def pages() -> list[Page]:
    """The pages to measure, with ids picked from the current history."""
    from django.urls import NoReverseMatch, reverse

    from runs.models import Result, Run, RunStatus, Verdict

    finished = Run.objects.filter(status=RunStatus.FINISHED, environment__name__startswith=GENERATED_PREFIX)
    failing = (
        finished.filter(environment__name=f"{GENERATED_PREFIX}2", verdict=Verdict.PARTIAL).order_by("-pk").first()
        or finished.exclude(verdict=Verdict.PASS).order_by("-pk").first()
    )
    if failing is None:
        raise SystemExit("the generated history has no failing run to look at")
    passes = finished.filter(verdict=Verdict.PASS).order_by("-pk")
    passing = passes.filter(environment_id=failing.environment_id).first() or passes.first()
    if passing is None:
        raise SystemExit("the generated history has no failing or no passing run to look at")
    failing_case = (
        Result.objects.filter(run=failing, outcome__in=["failed", "error"]).order_by("test_case__order").first()
    ).test_case_id
    listed = [
        Page("overview", reverse("dashboard-overview")),
        Page("runs list", reverse("runs-list")),
        Page(
            "runs list, filtered",
            f"{reverse('runs-list')}?environment={GENERATED_PREFIX}2&verdict=PARTIAL+SUCCESS&sort=-duration_s",
        ),
        Page("run detail (failing)", reverse("runs-detail", args=[failing.pk])),
        Page("run progress", reverse("runs-progress", args=[failing.pk])),
        Page("compare", f"{reverse('dashboard-compare')}?a={passing.pk}&b={failing.pk}"),
        Page("test case history", reverse("dashboard-test-case", args=[failing_case])),
    ]
    pages_without_ids = (
        ("trends", "dashboard-trends"),
        ("business", "dashboard-business"),
        # Validates every file in GOLDPATH_SUITES_DIR on each view (benchmarks/suite_load.py
        # times that for a large file).
        ("suites", "dashboard-suites"),
    )
    for name, url_name in pages_without_ids:
        try:
            listed.append(Page(name, reverse(url_name)))
        except NoReverseMatch:
            print(f"(no {url_name} URL: {name} page skipped)")
    return listed + import_pages()


def measure(repeat: int, budget_s: float) -> dict[str, tuple[Page, Measure]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user = get_user_model().objects.filter(username=BENCH_USER).first()
    if user is None:
        user = get_user_model().objects.create_superuser(BENCH_USER, password=os.urandom(16).hex())
    client = Client()
    client.force_login(user)
    measured = {}
    for page in pages():
        response = client.get(page.url)  # warm-up
        if response.status_code != 200:
            raise SystemExit(f"{page.name}: GET {page.url} answered {response.status_code}")
        with CaptureQueriesContext(connection) as captured:
            client.get(page.url)
        result = Measure(queries=len(captured.captured_queries), kilobytes=len(response.content) / 1000)
        deadline = time.monotonic() + budget_s
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(page.url)
            result.times_ms.append((time.perf_counter() - started) * 1000)
            if time.monotonic() > deadline:
                break
        measured[page.name] = (page, result)
    return measured


def report(args, small: dict | None, full: dict, small_runs: int | None, full_runs: int) -> bool:
    """Print the table; return True when every page meets the goal with a constant query count."""
    small_label = f"q@{small_runs}" if small_runs else "q@small"
    header = (
        f"{'page':<22} {'KB':>6} {'median ms':>9} {'p95 ms':>8} {'n':>3} {small_label:>8} {f'q@{full_runs}':>9} "
        f"{'med@' + str(small_runs or '-'):>9} {'growth':>7}  result"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for name, (_page, m) in full.items():
        before = small.get(name, (None, None))[1] if small else None
        verdict = "PASS" if m.p95 <= args.goal_ms else f"FAIL (p95 > {args.goal_ms:g} ms)"
        ok &= m.p95 <= args.goal_ms
        if before is not None and before.queries != m.queries:
            verdict += f"; QUERIES GROW {before.queries} -> {m.queries}"
            ok = False
        print(
            f"{name:<22} {m.kilobytes:>6.0f} {m.median:>9.1f} {m.p95:>8.1f} {len(m.times_ms):>3} "
            f"{before.queries if before else '-':>8} {m.queries:>9} "
            f"{f'{before.median:.1f}' if before else '-':>9} "
            f"{f'x{m.median / before.median:.2f}' if before else '-':>7}  {verdict}"
        )
    print(f"\n{full_runs} generated runs in the full history; URLs measured:")
    for name, (page, _) in full.items():
        print(f"  {name:<22} {page.url}")
    return ok


def main() -> int:
    args = parse_args()
    prepare_environment()
    if os.environ.get("DATABASE_URL"):
        ensure_postgres_database(os.environ["DATABASE_URL"])

    import django

    from dashboard.installation import prepare

    prepare()  # a fresh data directory: its secret key (logins) and broker folders
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from runs.models import Run

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    others = Run.objects.exclude(environment__name__startswith=GENERATED_PREFIX).count()
    if others:
        raise SystemExit(
            f"this database holds {others} runs of environments not made by generate_history: "
            "point DATABASE_URL at a throwaway database"
        )
    if args.fresh:
        call_command("generate_history", runs=0, clear=True)
    print(f"Database: {database_description()}; {os.cpu_count()} CPU cores")

    started = time.monotonic()
    have = generated_runs()
    small = small_runs = None
    if have < args.small < args.runs:
        took = generate(args.small - have, args.environments, seed=1)
        print(f"Generated {args.small - have} runs in {took:.1f} s")
        small_runs = generated_runs()
        small = measure(args.repeat, args.page_budget)
    elif have >= args.small:
        print(
            f"The database already holds {have} generated runs: no small-history query counts "
            "(pass --fresh to measure both sizes)."
        )
    have = generated_runs()
    if have < args.runs:
        took = generate(args.runs - have, args.environments, seed=2)
        print(f"Generated {args.runs - have} runs in {took:.1f} s ({(args.runs - have) / took:,.0f} runs/s)")
    if args.import_suites and not import_pages():
        took = import_one_case_suites(args.import_suites)
        print(f"Imported {args.import_suites:,} one-case suites twice in {took:.1f} s")
    full_runs = generated_runs()
    full = measure(args.repeat, args.page_budget)
    print()
    ok = report(args, small, full, small_runs, full_runs)
    print(f"\nTotal time {time.monotonic() - started:.0f} s. Goal: p95 <= {args.goal_ms:g} ms per page.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
