"""The embedded set-up's cache: Django's file cache, with counters that count every increment."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache


class LockedFileCache(FileBasedCache):
    """Django's file cache — shared by the processes of one machine, as the login limits
    need (dashboard/login.py counts failures with django_ratelimit) — whose ``add`` and
    ``incr`` hold an exclusive lock on one file in the cache's folder. Django's own are a
    read and then a write, so two processes counting at the same instant would count one
    failure (why django_ratelimit's check E003 refuses the file cache); under the lock each
    counts. One lock for all keys: failed logins are few."""

    def __init__(self, dir: str, params: dict[str, Any]) -> None:
        super().__init__(dir, params)
        self.lock_path = Path(dir).resolve() / "counters.lock"  # not *.djcache: clear() keeps it

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)  # the folder may be deleted at any time
        with self.lock_path.open("ab") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # closing the file releases the lock

    def add(self, key: Any, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        with self.counting():
            return super().add(key, value, timeout, version)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        with self.counting():
            return super().incr(key, delta, version)
