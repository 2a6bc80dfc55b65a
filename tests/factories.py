"""factory_boy factories for Goldpath's models."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from runs.models import Category, Environment, ImpactTag, Result, Run, Suite, SuiteVersion, TestCase


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def role(user, create, role, **kwargs):
        """``role="Manager"`` puts the user in that role's group: a login with no role reads nothing."""
        if create and role:
            user.groups.add(Group.objects.get_or_create(name=role)[0])  # a flush removes the seeded groups


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"env{n}")
    base_url = "http://127.0.0.1:9"


class SuiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suite
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"suite{n}")
    title = factory.LazyAttribute(lambda o: o.name.title())
    origin = Suite.Origin.PROBE

    @factory.post_generation
    def version(suite, create, definition, **kwargs):
        """A probe suite gets a current version (``version={...}`` gives its definition)."""
        if not create or suite.origin != Suite.Origin.PROBE or suite.current_version_id:
            return
        suite.current_version = SuiteVersion.objects.create(
            suite=suite,
            number=1,
            digest=f"test-{suite.pk}",
            definition=definition or {"name": suite.name, "checks": []},
        )
        suite.save(update_fields=["current_version"])


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    suite = factory.SubFactory(SuiteFactory)
    name = factory.Sequence(lambda n: f"Category {n}")


class ImpactTagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ImpactTag
        django_get_or_create = ("suite", "name")

    suite = factory.SubFactory(SuiteFactory)
    name = factory.Sequence(lambda n: f"Capability {n}")
    mrr = 10_000


class TestCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TestCase

    suite = factory.SelfAttribute("category.suite")
    category = factory.SubFactory(CategoryFactory)
    node_id = factory.Sequence(lambda n: f"check_{n}")
    name = factory.Sequence(lambda n: f"Check {n}")


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Run

    environment = factory.SubFactory(EnvironmentFactory)
    suite = factory.SubFactory(SuiteFactory)
    version = factory.SelfAttribute("suite.current_version")
    base_url = factory.SelfAttribute("environment.base_url")
    status = Run._meta.get_field("status").default
    started_at = factory.LazyFunction(timezone.now)


class ResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Result

    run = factory.SubFactory(RunFactory)
    test_case = factory.SubFactory(TestCaseFactory)
    outcome = Result.Outcome.PASSED
    duration_s = 0.123
