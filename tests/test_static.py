"""The code as a reviewer reads it: ruff finds no lint, mypy no type error (mypy.ini)."""

import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=BASE_DIR, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_no_type_error():
    result = run("mypy", "--cache-dir", str(BASE_DIR / ".mypy_cache"))
    assert result.returncode == 0, result.stdout + result.stderr
