"""The schema is one migration (squashed while the project was unreleased) that also seeds
what a new installation starts with; a database that applied the 22 it replaced takes it
as applied and goes on with the migrations after it. These tests keep the models, the
migrations and the seeded data in step, and upgrade a database of the last release."""

import io
from dataclasses import fields
from importlib import import_module

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from runs.analysis.classification import BUILTIN_RULES, Rule
from runs.models import FailureRule
from runs.roles import ROLES

SQUASHED = ("runs", "0001_squashed_0022_builtin_error_codes_as_words")


def test_the_models_need_no_migration_the_repository_lacks(db):
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits 1 on a change
    assert out.getvalue().strip() == "No changes detected"


def test_the_squashed_migration_replaces_the_22_an_installation_of_the_first_version_applied(db):
    loader = MigrationLoader(connection)
    squashed = loader.disk_migrations[SQUASHED]
    assert len(squashed.replaces) == 22 and squashed.replaces[-1] == ("runs", "0022_builtin_error_codes_as_words")
    assert loader.graph.root_nodes("runs") == [SQUASHED]


@pytest.mark.django_db
def test_a_new_installation_starts_with_the_roles_and_the_built_in_rules_as_the_code_defines_them():
    """The migration writes the rules out as values, and a stored row wins over the code's
    rule of its name: a built-in rule changed in code fails here until a data migration
    brings its seeded row along (a rule added in code needs none: active_rules adds it).
    The seed runs again on emptied tables: a transactional test before this one may have
    flushed what the migration wrote."""
    FailureRule.objects.all().delete()
    Group.objects.all().delete()
    import_module(f"runs.migrations.{SQUASHED[1]}").seed(apps, None)
    assert sorted(Group.objects.values_list("name", flat=True)) == sorted(ROLES)
    compared = [f.name for f in fields(Rule) if f.name in {f.name for f in FailureRule._meta.fields}]
    in_code = {rule.name: {name: getattr(rule, name) for name in compared} for rule in BUILTIN_RULES}
    seeded = [{name: getattr(row, name) for name in compared} for row in FailureRule.objects.order_by("order")]
    assert seeded and all(row == in_code.get(row["name"]) for row in seeded), "a seeded rule differs from the code"
