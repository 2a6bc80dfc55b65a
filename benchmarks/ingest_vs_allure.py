"""Importing a large JUnit XML file: Goldpath's ``import_results`` against Allure's report generator.

    .venv/bin/python benchmarks/ingest_vs_allure.py                # 100,000 and 10,000 cases, SQLite
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/goldpath_bench_ingest \\
        .venv/bin/python benchmarks/ingest_vs_allure.py --allure none

Generates a realistic JUnit XML file (``--cases``, default 100,000; a second one of
``--small`` cases, default 10,000): a <testsuites> root holding one <testsuite> per module,
~5 % failures and ~1 % errors with a message and a stack trace, ~3 % skipped, system-out on
~10 %. Both Allure versions read only the <testcase> elements directly under a top-level
<testsuite> (a <testsuite> nested in a <testsuite> is ignored by them), so the file uses that
layout and the script checks that every tool saw all the cases.

Goldpath: ``import_results`` in a child process on a throwaway database (a temporary
GOLDPATH_DATA_DIR with SQLite, or DATABASE_URL), migrated first. The large file is imported
twice: first creating its test cases (the figure the goal is judged on), then again as the
next run of the same suite (what a nightly CI upload costs). Allure: ``allure generate``
of a results directory holding the same file, from the npm registry, installed under
benchmarks/.allure/ (Allure 2 = ``allure-commandline``, needs Java; Allure 3 = ``allure``).
Each child runs under a small wrapper that reports its wall time and peak RSS
(``getrusage(RUSAGE_CHILDREN).ru_maxrss`` once it exited: the child and its descendants).
Goldpath's child also reports the time of ``import_results`` itself and its memory growth
(peak RSS minus RSS before the import). Goals: 10,000 cases under 2 s, 100,000 cases with
under 200 MB of memory growth, and 10x faster than Allure.

``--huge 1000000`` also imports a file of that many cases with Goldpath alone (Allure 2 runs
out of memory near 800,000), once, after the large file: goals peak RSS under 400 MB and
under 12x the large file's import time. Its child may read a file past
GOLDPATH_IMPORT_MAX_BYTES (a 1,000,000-case file is ~400 MB).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import BASE_DIR, PYTHON, describe_backends, load_line, manage, throwaway_env  # noqa: E402

ALLURE_DIR = BASE_DIR / "benchmarks" / ".allure"
ALLURES = {  # name: (npm package, version, directory under .allure, summary reader)
    "Allure 2": ("allure-commandline", "2.46.1", "v2"),
    "Allure 3": ("allure", "3.18.0", "v3"),
}
TRACE = "\n".join(
    f'  File "/builds/app/src/shop/{m}.py", line {n}, in {f}\n    {c}'
    for m, n, f, c in [
        ("api/views", 212, "checkout", "order = service.place_order(cart, user=request.user)"),
        ("services/orders", 88, "place_order", "payment = gateway.charge(order.total, token=cart.payment_token)"),
        ("payments/gateway", 141, "charge", "response.raise_for_status()"),
        ("tests/test_checkout", 57, "test_checkout", "assert response.status_code == 200, response.text"),
    ]
)


def generate_junit(path: Path, cases: int, seed: int = 1) -> dict[str, int]:
    """Write a JUnit XML file of ``cases`` test cases; return the count of each outcome."""
    rng = random.Random(seed)
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    per_module = 50
    with path.open("w", encoding="utf-8") as out:
        out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="nightly" tests="{cases}">\n')
        for start in range(0, cases, per_module):
            package, module = f"pkg{start // 5000}", f"test_module_{start // per_module}"
            n = min(per_module, cases - start)
            out.write(f'  <testsuite name="{package}.{module}" tests="{n}" timestamp="2026-11-25T10:00:00" ')
            out.write(
                'hostname="ci-runner-3">\n    <properties><property name="python" value="3.11.7"/></properties>\n'
            )
            for i in range(start, start + n):
                classname = f"{package}.{module}.Test{['Checkout', 'Cart', 'Login', 'Search'][i % 4]}"
                name = f"test_case_{i}[param-{i % 7}]"
                head = f'    <testcase classname="{classname}" name="{name}" time="{rng.random():.3f}"'
                roll = rng.random()
                # Each failure's text names its own test (as pytest's do): no two are the same.
                own_frame = f'\n  File "/builds/app/tests/{module}.py", line {20 + i % 400}, in test_case_{i}'
                if roll < 0.05:
                    counts["failed"] += 1
                    body = (
                        f'<failure message="AssertionError: expected 200, got {500 + i % 4}" type="AssertionError">'
                        f"Traceback (most recent call last):{own_frame}\n{TRACE}\nAssertionError: expected 200, got "
                        f"{500 + i % 4} &lt;html&gt;upstream error&lt;/html&gt;</failure>"
                    )
                elif roll < 0.06:
                    counts["error"] += 1
                    message = "ConnectionError: [Errno 111] Connection refused"
                    body = f'<error message="{message}" type="ConnectionError">{own_frame}\n{TRACE}</error>'
                elif roll < 0.09:
                    counts["skipped"] += 1
                    body = '<skipped message="requires the payments sandbox" type="pytest.skip"/>'
                else:
                    counts["passed"] += 1
                    body = ""
                if rng.random() < 0.10:
                    body += (
                        "<system-out>"
                        + "".join(f"INFO step {s}: ok (took {s * 3} ms)\n" for s in range(6))
                        + "</system-out>"
                    )
                out.write(f"{head}>{body}</testcase>\n" if body else f"{head}/>\n")
            out.write("  </testsuite>\n")
        out.write("</testsuites>\n")
    return counts


def measured(cmd: list[str], env: dict | None = None, cwd: Path | None = None, timeout: float = 900) -> dict:
    """Run ``cmd`` under a wrapper; return wall seconds, peak RSS (MB) and its output."""
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); rc = subprocess.call(sys.argv[1:])\n"
        "wall = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(f'@@measured {rc} {wall:.3f} {rss}', file=sys.stderr)\n"
    )
    done = subprocess.run(
        [PYTHON, "-c", wrapper, *cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    line = next(line for line in done.stderr.splitlines() if line.startswith("@@measured"))
    rc, wall, rss_kb = line.split()[1:]
    return {"rc": int(rc), "wall_s": float(wall), "peak_mb": int(rss_kb) / 1024, "out": done.stdout, "err": done.stderr}


def child_import(path: str, suite: str) -> None:
    """In the child: set Django up, then import ``path`` and print figures as JSON.

    The import's steps are timed by wrapping them (behaviour unchanged). It parses and
    stores batch by batch, so each step's time is summed over the batches: parsing, matching
    and creating the test cases, storing the results, ``finish_run`` (the run's analysis),
    the commit, and the rest (the facts each result is analysed by, the tally)."""
    import django

    django.setup()
    import runs.importers.service as importers
    from runs.importers.store import ImportWriter

    def peak_mb() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return peak_mb()

    spent = dict.fromkeys(["parse", "test cases", "results", "finish_run"], 0.0)

    def timed(label: str, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[label] += time.perf_counter() - started

        return wrapper

    parse = importers.PARSERS["junit"]

    def parse_timed(stream):
        cases = parse(stream)
        while True:
            started = time.perf_counter()
            case = next(cases, None)
            spent["parse"] += time.perf_counter() - started
            if case is None:
                return
            yield case

    importers.PARSERS["junit"] = parse_timed
    ImportWriter.test_cases = timed("test cases", ImportWriter.test_cases)
    ImportWriter.results = timed("results", ImportWriter.results)
    finished: list[float] = []
    finish_run = timed("finish_run", importers.finish_imported_run)

    def finish_run_marked(*args, **kwargs) -> None:
        finish_run(*args, **kwargs)
        finished.append(time.perf_counter())

    importers.finish_imported_run = finish_run_marked
    before = rss_mb()
    started = time.perf_counter()
    with open(path, "rb") as stream:
        run = importers.import_results(stream, suite_name=suite, environment_name="ci")
    import_s = time.perf_counter() - started
    # On PostgreSQL the commit runs its deferred foreign-key checks, one per stored reference.
    spent["commit"] = started + import_s - finished[0]
    spent["the rest"] = import_s - sum(spent.values())
    figures = {"import_s": import_s, "rss_before_mb": before, "peak_mb": peak_mb(), "growth_mb": peak_mb() - before}
    print(json.dumps({**figures, "phases": list(spent.items()), "total": run.total, "verdict": run.verdict}))


def goldpath(env: dict, path: Path, suite: str) -> dict:
    result = measured([PYTHON, __file__, "--child", str(path), suite], env=env, cwd=BASE_DIR)
    if result["rc"]:
        raise RuntimeError(f"Goldpath import failed:\n{result['out']}\n{result['err'][-3000:]}")
    return {**result, **json.loads(result["out"].strip().splitlines()[-1])}


def steps(figures: dict) -> str:
    return ", ".join(f"{label} {seconds:.1f} s" for label, seconds in figures["phases"])


def install_allure(name: str) -> tuple[Path | None, str]:
    """Install ``name`` under benchmarks/.allure/ (once); return its executable or why not."""
    package, version, sub = ALLURES[name]
    directory = ALLURE_DIR / sub
    executable = directory / "node_modules" / ".bin" / "allure"
    if not executable.exists():
        if not shutil.which("npm"):
            return None, "npm is not installed"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "package.json").write_text(json.dumps({"name": f"allure-bench-{sub}", "private": True}))
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"{package}@{version}"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode or not executable.exists():
            return None, f"npm install {package}@{version} failed: {done.stderr.strip()[-500:]}"
    if sub == "v2" and not shutil.which("java"):
        return None, "Allure 2 needs Java (java is not on PATH)"
    return executable, ""


def allure_total(name: str, report: Path) -> int | None:
    try:
        if name == "Allure 2":
            return json.loads((report / "widgets" / "summary.json").read_text())["statistic"]["total"]
        return json.loads((report / "summary.json").read_text())["stats"]["total"]
    except (OSError, KeyError, ValueError):
        return None


def allure(name: str, executable: Path, results_dir: Path, work: Path, timeout: float) -> dict:
    report = work / f"report-{name.replace(' ', '')}-{results_dir.name}"
    args = ["generate", str(results_dir), "-o", str(report)] + (["--clean"] if name == "Allure 2" else [])
    try:
        result = measured([str(executable), *args], cwd=work, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish within {timeout:g} s"}
    if result["rc"]:
        return {"error": f"exit status {result['rc']}: {(result['out'] + result['err'])[-500:]}"}
    total = allure_total(name, report)
    shutil.rmtree(report, ignore_errors=True)
    return {**result, "total": total}


def print_import(cases: int, figures: dict) -> None:
    """One first import's figures and the time of each of its steps."""
    print(
        f"Goldpath {cases:,}: import_results {figures['import_s']:.2f} s, process {figures['wall_s']:.2f} s, "
        f"peak RSS {figures['peak_mb']:.0f} MB (growth during the import {figures['growth_mb']:.0f} MB), "
        f"stored {figures['total']:,} results, verdict {figures['verdict']}"
    )
    print("  its steps: " + steps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="test cases in the large file (100000)")
    parser.add_argument("--small", type=int, default=10_000, help="test cases in the small file (10000)")
    parser.add_argument("--huge", type=int, default=0, help="also import this many cases, Goldpath only (off)")
    parser.add_argument("--repeat-small", type=int, default=3, help="Goldpath imports of the small file (3)")
    parser.add_argument("--allure", choices=["2", "3", "both", "none"], default="both")
    parser.add_argument("--allure-timeout", type=float, default=900, help="seconds per Allure report (900)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_import(*args.child)

    work = Path(tempfile.mkdtemp(prefix="goldpath-ingest-bench-"))
    files = {}
    for label, n in (("large", args.cases), ("small", args.small), ("huge", args.huge)):
        if not n:
            continue
        (work / f"results-{n}").mkdir()
        path = work / f"results-{n}" / "junit.xml"
        counts = generate_junit(path, n)
        files[label] = (path, n)
        print(
            f"{label}: {n:,} cases, {path.stat().st_size / 1e6:.1f} MB "
            f"({', '.join(f'{k} {v}' for k, v in counts.items())})"
        )

    env = throwaway_env("ingest")
    manage(env, "migrate", "--noinput")
    print(f"Goldpath on {describe_backends(env)}; {load_line()}")

    small_path, small_n = files["small"]
    # Suite names new to the database (a PostgreSQL one is kept between invocations), so the
    # first import of each file really creates its test cases.
    tag = time.strftime("%Y%m%d-%H%M%S")
    small_runs = [goldpath(env, small_path, f"bench-small-{tag}") for _ in range(args.repeat_small)]
    for i, r in enumerate(small_runs):
        kind = "new test cases" if i == 0 else "re-import, history continues"
        print(f"Goldpath {small_n:,}: import_results {r['import_s']:.2f} s, process {r['wall_s']:.2f} s ({kind})")
    small_median = statistics.median(r["import_s"] for r in small_runs)
    large_path, large_n = files["large"]
    large = goldpath(env, large_path, f"bench-large-{tag}")
    print_import(large_n, large)
    again = goldpath(env, large_path, f"bench-large-{tag}")
    print(
        f"Goldpath {large_n:,}: import_results {again['import_s']:.2f} s, process {again['wall_s']:.2f} s "
        "(re-import, history continues: what a nightly CI upload costs)"
    )

    huge = None
    if args.huge:
        huge_path, huge_n = files["huge"]
        env_huge = {**env, "GOLDPATH_IMPORT_MAX_BYTES": str(huge_path.stat().st_size + 1)}
        huge = goldpath(env_huge, huge_path, f"bench-huge-{tag}")
        print_import(huge_n, huge)

    wanted = {"2": ["Allure 2"], "3": ["Allure 3"], "both": list(ALLURES), "none": []}[args.allure]
    allure_figures = {}
    for name in wanted:
        executable, why = install_allure(name)
        if executable is None:
            print(f"{name}: not measured: {why}")
            continue
        version = subprocess.run([str(executable), "--version"], capture_output=True, text=True).stdout.strip()
        figures = {}
        for label in ("small", "large"):
            path, n = files[label]
            r = allure(name, executable, path.parent, work, args.allure_timeout)
            if "error" in r:
                print(f"{name} {version} {n:,}: not measured: {r['error']}")
                continue
            figures[label] = r
            seen = "all cases read" if r["total"] == n else f"WARNING: its report holds {r['total']} of {n} cases"
            print(
                f"{name} {version} {n:,}: allure generate {r['wall_s']:.2f} s, peak RSS {r['peak_mb']:.0f} MB ({seen})"
            )
        allure_figures[f"{name} {version}"] = figures

    print("\n=== Summary (same files, same machine, same run) ===")
    met = "met" if small_median < 2 else f"MISSED by {small_median - 2:.2f} s ({small_median / 2:.2f}x)"
    print(f"Goldpath {small_n:,} cases: import_results median {small_median:.2f} s (goal < 2 s: {met})")
    met = (
        "met"
        if large["growth_mb"] < 200
        else f"MISSED by {large['growth_mb'] - 200:.0f} MB ({large['growth_mb'] / 200:.1f}x)"
    )
    print(
        f"Goldpath {large_n:,} cases: memory growth {large['growth_mb']:.0f} MB, peak RSS {large['peak_mb']:.0f} MB "
        f"(goal growth < 200 MB: {met})"
    )
    if huge:
        ratio = huge["import_s"] / large["import_s"]
        print(
            f"Goldpath {files['huge'][1]:,} cases: peak RSS {huge['peak_mb']:.0f} MB "
            f"(goal < 400 MB: {'met' if huge['peak_mb'] < 400 else 'MISSED'}), import_results {ratio:.1f}x the "
            f"{large_n:,}-case time (goal < 12x: {'met' if ratio < 12 else 'MISSED'})"
        )
    goldpath_runs = {"small": small_runs[0], "large": large}
    rows = [("Goldpath (process)", label, r["wall_s"], r["peak_mb"]) for label, r in goldpath_runs.items()]
    rows += [
        (name, label, r["wall_s"], r["peak_mb"])
        for name, figures in allure_figures.items()
        for label, r in figures.items()
    ]
    print(f"{'':24} {'cases':>8} {'wall s':>8} {'peak MB':>8} {'time vs Goldpath':>17}")
    for name, label, wall, peak in rows:
        ratio = "" if name.startswith("Goldpath") else f"{wall / goldpath_runs[label]['wall_s']:.1f}x"
        print(f"{name:24} {files[label][1]:>8,} {wall:>8.2f} {peak:>8.0f} {ratio:>17}")
    for name, figures in allure_figures.items():
        if "large" not in figures:
            continue
        ratio = figures["large"]["wall_s"] / large["wall_s"]
        in_process = figures["large"]["wall_s"] / large["import_s"]
        met = "met" if ratio >= 10 else "MISSED"
        print(
            f"Goldpath vs {name}, {large_n:,} cases: {ratio:.1f}x as fast process to process "
            f"({in_process:.1f}x against import_results alone; goal 10x: {met}); "
            f"peak RSS {name} {figures['large']['peak_mb']:.0f} MB, Goldpath {large['peak_mb']:.0f} MB; "
            f"re-import {figures['large']['wall_s'] / again['wall_s']:.1f}x"
        )
    print("Process times include interpreter/JVM/Node start-up for every tool (Goldpath: Python + Django set-up).")
    print(f"At the end: {load_line()}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
