"""Create .venv and install requirements into it; standard library only (runs before any install)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VENV_DIR = BASE_DIR / ".venv"
VENV_PYTHON = VENV_DIR / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def ensure_venv(requirements: str) -> Path:
    """Make sure .venv exists and has ``requirements`` installed; return its python.

    The install is skipped when the requirement files have not changed since the last one.
    """
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on whatever python3 the user has
        sys.exit(f"Goldpath needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not VENV_PYTHON.exists():
        print(f"Creating a virtual environment in {VENV_DIR} …", flush=True)
        venv.create(VENV_DIR, with_pip=True)
    files = sorted(BASE_DIR.glob("requirements*.txt"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files) + requirements.encode()).hexdigest()
    marker = VENV_DIR / f".installed-{Path(requirements).stem}"
    if not marker.exists() or marker.read_text() != digest:
        print(f"Installing {requirements} …", flush=True)
        pip = [str(VENV_PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        subprocess.run([*pip, "-r", str(BASE_DIR / requirements)], check=True)
        # Packages whose declared requirements conflict with others (the file says why).
        no_deps = BASE_DIR / f"{Path(requirements).stem}-nodeps.txt"
        if no_deps.exists():
            subprocess.run([*pip, "--no-deps", "-r", str(no_deps)], check=True)
        marker.write_text(digest)
    return VENV_PYTHON
