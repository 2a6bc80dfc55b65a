"""Suite files into the database. A load that changes a suite makes a new SuiteVersion and
makes it current; a file that does not validate changes nothing (the current version stays)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from probes.suite.loader import LoadedSuite, SuiteFileError, load_suite_file, parse_suite, suite_from_definition
from probes.suite.model import Suite as SuiteModel
from runs.models import Category, ImpactTag, Run, Suite, SuiteVersion, TestCase

SUITE_FILE_PATTERNS = ("*.yaml", "*.yml")


class SuiteRefused(ValueError):
    """A valid suite file that cannot be stored (its name belongs to an import suite)."""


@transaction.atomic
def store_suite(
    loaded: LoadedSuite,
    source_path: str = "",
    user: User | None = None,
    based_on: SuiteVersion | None = None,
) -> Suite:
    """Make ``loaded`` the suite's current version (a new one if its content is new).

    ``based_on`` marks a dashboard edit of that loaded version. Loading the file the edit
    started from, unchanged, keeps the edit current: otherwise every deploy (``load_suites``)
    would quietly undo what DevOps set. Once the file changes, the file wins."""
    model = loaded.model
    suite, _ = Suite.objects.select_for_update().get_or_create(
        name=model.name, defaults={"title": model.title or model.name, "origin": Suite.Origin.PROBE}
    )
    if suite.origin != Suite.Origin.PROBE:
        raise SuiteRefused(
            f"suite {suite.name!r} holds imported CI results; a suite file cannot take its name "
            "(rename the file's suite)"
        )
    current = suite.current_version
    if based_on is None and current is not None and _edit_of(current, loaded.digest):
        model = suite_from_definition(current.definition)
        version: SuiteVersion | None = current
    else:
        version = suite.versions.filter(digest=loaded.digest).first()
    if version is None:
        number = (suite.versions.aggregate(last=Max("number"))["last"] or 0) + 1
        version = SuiteVersion.objects.create(
            suite=suite,
            number=number,
            digest=loaded.digest,
            definition=loaded.definition,
            source=loaded.source,
            source_path=source_path,
            created_by=user,
            based_on=based_on,
        )
    suite.title = model.title or model.name
    suite.description = model.description
    suite.current_version = version
    if based_on is None:  # an edit keeps the file it came from
        suite.source_path = source_path
    suite.loaded_at = timezone.now()
    suite.save()
    _sync_rows(suite, model)
    return suite


def _edit_of(version: SuiteVersion, digest: str) -> bool:
    """Whether ``version`` is a dashboard edit of the content whose digest is ``digest``."""
    return version.based_on is not None and version.based_on.digest == digest


def _sync_rows(suite: Suite, model: SuiteModel) -> None:
    """Categories, impact tags and test cases as the version defines them. Test cases keep
    their identity (history) across versions; those the version lacks become inactive."""
    tags = {}
    for tag in model.impact_tags:
        tags[tag.name], _ = ImpactTag.objects.update_or_create(
            suite=suite,
            name=tag.name,
            defaults={"mrr": tag.mrr, "severity": tag.severity, "description": tag.description},
        )
    suite.impact_tags.exclude(name__in=list(tags)).delete()
    categories = {}
    for order, category in enumerate(model.categories):
        categories[category.name], _ = Category.objects.update_or_create(
            suite=suite, name=category.name, defaults={"order": order, "critical": category.critical}
        )
    for order, check in enumerate(model.checks):
        test_case, _ = TestCase.objects.update_or_create(
            suite=suite,
            node_id=check.id,
            defaults={
                "name": check.name,
                "category": categories[check.category],
                "declares": " ".join(check.declares()),
                "order": order,
                "active": True,
            },
        )
        test_case.impact_tags.set([tags[name] for name in check.impact])
    suite.test_cases.exclude(node_id__in=[c.id for c in model.checks]).update(active=False)


def load_suite_path(path: Path, user: User | None = None) -> Suite:
    """Validate and store one suite file; SuiteFileError names file, line and key path."""
    return store_suite(load_suite_file(path), str(path), user)


def load_suite_text(text: str, source_name: str, user: User | None = None) -> Suite:
    """A suite uploaded as text (the API): validated the same way as a file."""
    return store_suite(parse_suite(text, source_name), source_name, user)


@dataclass(frozen=True)
class TagSetting:
    """An impact tag as DevOps set it; ``original`` is its name in the current version
    (empty for a new tag)."""

    original: str
    name: str
    mrr: int
    severity: str
    description: str = ""


def retag_suite(suite: Suite, tags: list[TagSetting], user: User) -> Suite:
    """Make a version of ``suite`` whose impact tags are ``tags``: a renamed tag stays on its
    checks, a tag left out leaves them. The result is validated as a suite file is
    (SuiteFileError lists the problems) and stored as a new version by ``user``. It stays
    current through loads of the unchanged file; when the file changes, the file's version
    becomes current, so the page shows the edit's source to copy into the file."""
    assert suite.current_version is not None
    definition = copy.deepcopy(suite.current_version.definition)
    before = {tag["name"]: tag for tag in definition.get("impact_tags", [])}
    renamed = {tag.original: tag.name for tag in tags if tag.original in before}
    written = []
    for tag in tags:
        entry = dict(before.get(tag.original, {}), name=tag.name, mrr=tag.mrr)
        if tag.severity != entry.get("severity", "medium"):
            entry["severity"] = tag.severity
        if tag.description != entry.get("description", ""):
            entry["description"] = tag.description
        written.append(entry)
    definition["impact_tags"] = written
    for check in definition.get("checks", []):
        if "impact" in check:
            check["impact"] = [renamed[name] for name in check["impact"] if name in renamed]
    label = f"impact tags edited by {user.get_username()}"
    text = yaml.safe_dump(definition, sort_keys=False, allow_unicode=True)
    based_on = suite.current_version.based_on or suite.current_version  # the loaded version, through earlier edits
    return store_suite(parse_suite(text, label), label, user, based_on=based_on)


def suite_files(directory: Path | None = None) -> list[Path]:
    directory = Path(directory or settings.GOLDPATH_SUITES_DIR)
    return sorted({path for pattern in SUITE_FILE_PATTERNS for path in directory.glob(pattern)})


@dataclass
class LoadReport:
    suites: list[Suite] = field(default_factory=list)
    errors: dict[Path, SuiteFileError | SuiteRefused] = field(default_factory=dict)


def load_all_suites(directory: Path | None = None) -> LoadReport:
    """Load every suite file of the directory; a bad file is reported, never half-loaded."""
    report = LoadReport()
    for path in suite_files(directory):
        try:
            report.suites.append(load_suite_path(path))
        except (SuiteFileError, SuiteRefused) as exc:
            report.errors[path] = exc
    return report


def declared_name(path: Path) -> str | None:
    """The ``name:`` a suite file gives itself, read leniently (for files that fail)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


class VersionCannotRun(ValueError):
    """A stored version this Goldpath cannot run (written for an older format)."""


def run_model(run: Run) -> SuiteModel:
    """The typed suite a run executes: the version it points at."""
    if run.version is None:
        raise VersionCannotRun(f"run #{run.pk} has no suite version to run (its suite holds imported results)")
    try:
        return suite_from_definition(run.version.definition)
    except ValueError as exc:
        raise VersionCannotRun(
            f"version {run.version.number} of suite {run.suite.name!r} no longer validates "
            f"({str(exc).splitlines()[0]}); load the suite file again and start a new run"
        ) from None
