"""Result files the import tests and benchmarks share: one written by pytest itself, hostile ones."""

import subprocess
import sys
from pathlib import Path


def junit_written_by_pytest(directory: Path, module_source: str, module: str = "test_tiny") -> Path:
    """Run pytest over ``module_source`` in a subprocess and return the JUnit file it wrote."""
    (directory / f"{module}.py").write_text(module_source)
    report = directory / f"{module}.xml"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider", f"--junitxml={report}", "-q"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr  # a test failed; pytest itself ran
    return report


def billion_laughs() -> bytes:
    """The entity-expansion bomb: a few hundred bytes that expand to a billion."""
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE testsuite [\n' + "\n".join(entities) + "\n]>\n"
        '<testsuite name="lolz"><testcase name="&lol9;" time="1"/></testsuite>\n'
    ).encode()


def one_case_suites(suites: int, failing_every: int, shift: int = 0) -> bytes:
    """``<testsuites>`` of ``suites`` suites, each with one case; suite i fails when
    (i + shift) is a multiple of ``failing_every``. Small per byte, heavy for every page
    that lists suites, categories or results (issue 14: 778 KB made a 56 MB trends page)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n']
    for i in range(suites):
        failure = '<failure message="assert 1 == 2"/>' if (i + shift) % failing_every == 0 else ""
        parts.append(
            f'<testsuite name="s{i:05d}"><testcase classname="s{i:05d}" name="t{i}" time="0">{failure}'
            "</testcase></testsuite>\n"
        )
    parts.append("</testsuites>\n")
    return "".join(parts).encode()
