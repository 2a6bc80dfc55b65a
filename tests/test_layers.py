"""Layers point one way: probes ← runs ← dashboard. The engine (probes/, outside its
management commands and Django app config) needs no Django at all."""

import ast
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def python_files(package: str, *, skip: tuple[str, ...] = ()) -> list[Path]:
    root = BASE_DIR / package
    files = sorted(root.rglob("*.py"))
    return [p for p in files if not any(p.relative_to(root).as_posix().startswith(s) for s in skip)]


ENGINE = python_files("probes", skip=("management/", "apps.py", "migrations/"))


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(BASE_DIR)))
def test_the_engine_imports_neither_django_nor_the_apps_above_it(path):
    above = {m for m in imported_modules(path) if m.split(".")[0] in {"django", "runs", "dashboard", "celery"}}
    assert above == set()


@pytest.mark.parametrize("path", python_files("runs"), ids=lambda p: str(p.relative_to(BASE_DIR)))
def test_the_domain_never_imports_the_dashboard(path):
    assert {m for m in imported_modules(path) if m.split(".")[0] == "dashboard"} == set()


def test_the_engine_knows_nothing_of_the_bundled_target():
    """Its protocol lives in probes/target/ and the suite files only."""
    words = ("agent_started", "user_message", "thread_id", "/api/auth/token", "/api/auth/verify", '"/ws"')
    for path in python_files("probes", skip=("target/", "suites/")):
        text = path.read_text()
        assert [w for w in words if w in text] == [], path
