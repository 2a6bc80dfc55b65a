"""Import a CI results file (JUnit XML, pytest-json-report) as a finished run: detect the
format, parse it as a stream, store it batch by batch (runs.importers.store) in one
transaction, and finish the run with the same analysis as a probe run's."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from itertools import islice
from typing import IO, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from probes.gcpause import cyclic_gc_paused
from runs import history, roles
from runs.importers.cases import ByteStream, ImportedCase, ImportFailed, head_encoding
from runs.importers.junit import parse_junit
from runs.importers.pytest_json import parse_pytest_json
from runs.importers.store import BATCH, ImportWriter
from runs.models import Environment, Run, Suite
from runs.services import finish_imported_run, start_imported_run

PARSERS: dict[str, Callable[[ByteStream], Iterator[ImportedCase]]] = {
    "junit": parse_junit,
    "pytest-json": parse_pytest_json,
}


class LimitedReader:
    """A file wrapper that refuses to read past ``limit`` bytes (uploads of unknown size)."""

    def __init__(self, stream: ByteStream, limit: int) -> None:
        self.stream, self.limit, self.read_bytes = stream, limit, 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size if size and size > 0 else self.limit + 1)
        self.read_bytes += len(chunk)
        if self.read_bytes > self.limit:
            raise FileTooLarge(self.limit)
        return chunk


class FileTooLarge(ImportFailed):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the import limit of {limit:,} bytes (GOLDPATH_IMPORT_MAX_BYTES)")
        self.limit = limit


class ImportTooSlow(ImportFailed):
    """The import ran past its time limit (the web's, GOLDPATH_WEB_IMPORT_SECONDS): it stops
    with a reason while the web server would still answer, instead of having its worker
    killed in mid-request (a 500)."""

    def __init__(self, limit_s: float, stored: int) -> None:
        super().__init__(
            f"the import ran past the web's limit of {limit_s:g} s (GOLDPATH_WEB_IMPORT_SECONDS) after "
            f"{stored:,} test cases; import a file this large with manage.py import_results"
        )


def detect_format(stream: IO[bytes]) -> str:
    """JUnit or pytest-json, from the first bytes (the stream is rewound or peeked)."""
    if stream.seekable():
        head = stream.read(64)
        stream.seek(0)
    else:
        head = cast(io.BufferedReader, stream).peek(64)[:64]  # a pipe, which open() gives buffered
    text = head.decode(head_encoding(head), errors="ignore").lstrip("\ufeff \t\r\n")
    if not text:
        raise ImportFailed("the file is empty")
    if text.startswith("<"):
        return "junit"
    if text.startswith("{"):
        return "pytest-json"
    raise ImportFailed("unknown file format: expected JUnit XML (starting with '<') or pytest-json-report JSON")


def stored_names(suite_name: str, environment_name: str) -> tuple[str, str]:
    """The suite and environment names an import of these stores under: ASCII slugs, so a name
    spelt with lookalike letters (a Cyrillic a in "Golden path") is no lookalike once stored."""
    return slugify(suite_name)[:64], slugify(environment_name)[:64]


def may_create_environment(user: User | None) -> bool:
    """Whether an import may name an environment that does not exist yet, and so create it:
    only who may configure environments, and the command line (no user: the operator)."""
    return user is None or roles.can(user, roles.CONFIGURE)


def import_environment(name: str, user: User | None) -> Environment:
    """The environment ``name`` that ``user``'s import goes to; created (with no URL) only if
    they may create one."""
    environment = Environment.objects.filter(name=name).first()
    if environment is not None:
        return environment
    if not may_create_environment(user):
        raise ImportFailed(
            f"no environment named {name!r}: DevOps create it on the Environments page (or import once as DevOps)"
        )
    environment, _ = Environment.objects.get_or_create(name=name, defaults={"base_url": ""})
    return environment


@cyclic_gc_paused()
def import_results(
    stream: IO[bytes],
    *,
    suite_name: str,
    environment_name: str,
    fmt: str = "auto",
    user: User | None = None,
    max_bytes: int | None = None,
    request_key: str | None = None,
    time_limit_s: float | None = None,
) -> Run:
    """Parse ``stream`` and store it as a finished run of ``suite_name`` on ``environment_name``
    (``request_key``: the run's Run.request_key, so a retried upload finds the run it made).
    With ``time_limit_s``, ImportTooSlow once that has passed, checked before each batch
    after the first (a file of one batch always completes)."""
    started = time.monotonic()
    limited = LimitedReader(stream, max_bytes or settings.GOLDPATH_IMPORT_MAX_BYTES)
    if fmt == "auto":
        fmt = detect_format(stream)
    if fmt not in PARSERS:
        raise ImportFailed(f"unknown format {fmt!r}; use one of {', '.join(PARSERS)}")
    suite_slug, env_slug = stored_names(suite_name, environment_name)
    if not suite_slug or not env_slug:
        raise ImportFailed("give a suite and an environment name (letters, digits, hyphens)")
    cases = PARSERS[fmt](limited)
    rules = history.active_rules()
    with transaction.atomic():
        # Titled by its slug, never the text given: no import suite can look like another.
        suite, _ = Suite.objects.get_or_create(
            name=suite_slug, defaults={"title": suite_slug, "origin": Suite.Origin.IMPORT}
        )
        if suite.origin != Suite.Origin.IMPORT:
            raise ImportFailed(
                f"suite {suite.name!r} is a probe suite: its results come only from Goldpath's own workers. "
                f"Import into a suite of its own (for example {suite.name}-ci)"
            )
        # One import of a suite at a time: each reads the suite's test cases, their order and
        # categories, then adds to them, so a second one waits here until the first is
        # committed, then matches what it created (PostgreSQL; SQLite has one writer anyway).
        # NO KEY: rows that merely refer to the suite (its runs) are not held up.
        Suite.objects.select_for_update(no_key=True).filter(pk=suite.pk).values_list("pk").get()
        environment = import_environment(env_slug, user)
        run = start_imported_run(suite, environment, user, request_key)
        writer = ImportWriter(suite, run, rules)
        while batch := list(islice(cases, BATCH)):
            if time_limit_s is not None and writer.tally.total and time.monotonic() - started > time_limit_s:
                raise ImportTooSlow(time_limit_s, writer.tally.total)
            writer.store(batch)
        tally = writer.tally
        if not tally.total:
            raise ImportFailed("the file holds no test cases")
        finish_imported_run(
            run, tally.facts(), tally.flagged, round(tally.duration_s, 3), status_message=writer.regex_budget.note()
        )
    return run
