"""Failed logins are limited across web processes, not per process: two real gunicorn
processes, failures sent to each in turn, share one count — in Redis when the broker is
Redis (no GOLDPATH_CACHE_URL needed), in files on the embedded set-up. And per account, not
per spelling: every name that logs in as "manager" shares the count of "manager"."""

import os
import re
import time
import uuid
from collections.abc import Callable

import httpx
import pytest
import redis
from django.test import Client

from tests.conftest import subprocess_env
from tests.factories import UserFactory
from tests.webserver import gunicorn

REDIS = "redis://127.0.0.1:6379/5"  # the cache then lives on database 6
LIMIT = 3


PASSWORD = "correct horse battery staple"  # UserFactory's


def fullwidth(text: str) -> str:
    """ASCII letters as their fullwidth forms, which NFKC turns back into ASCII."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


# Spellings that Django's login form turns into the name (strip, then NFKC), and case variants.
SPELLINGS: dict[str, Callable[[str], str]] = {
    "leading space": lambda name: f" {name}",
    "trailing space": lambda name: f"{name} ",
    "leading tab": lambda name: f"\t{name}",
    "trailing newline": lambda name: f"{name}\n",
    "fullwidth first letter": lambda name: fullwidth(name[0]) + name[1:],
    "fullwidth second letter": lambda name: name[0] + fullwidth(name[1]) + name[2:],
    "fullwidth": fullwidth,
    "capitalised": str.capitalize,
    "upper case": str.upper,
}


def login(base_url: str, username: str = "alice", password: str = "wrong") -> int:
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        answer = client.post(
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token.group(1), "username": username, "password": password},
        )
    return answer.status_code


def failed_login(base_url: str) -> int:
    return login(base_url)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("broker", [REDIS, "filesystem://localhost/"], ids=["redis-broker", "embedded"])
def test_it_limits_failed_logins_across_two_web_processes(tmp_path, broker):
    queue = f"goldpath-logins-{os.getpid()}-{time.monotonic_ns()}"  # the cache's key prefix on Redis
    env = subprocess_env(
        GOLDPATH_DATA_DIR=str(tmp_path / "data"),
        CELERY_BROKER_URL=broker,
        GOLDPATH_QUEUE=queue,
        GOLDPATH_LOGIN_RATE=f"{LIMIT}/15m",
    )
    env.pop("GOLDPATH_CACHE_URL", None)
    try:
        with gunicorn(env, tmp_path / "a.log") as first, gunicorn(env, tmp_path / "b.log") as second:
            answers = [failed_login(server) for server in [first, second] * LIMIT]
    finally:
        if broker == REDIS:
            cache = redis.Redis.from_url("redis://127.0.0.1:6379/6")
            for key in cache.scan_iter(f"{queue}:*"):
                cache.delete(key)
            cache.close()
    assert answers == [200] * LIMIT + [429] * LIMIT  # each process alone would still say 200


def an_address() -> str:
    """A client address of the test's own, so the per-address limit (50) never decides."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


@pytest.fixture
def manager(settings):
    """A user "manager" (with a name of its own per test: the cache outlives a test)."""
    settings.LOGIN_RATE = f"{LIMIT}/15m"
    return UserFactory(username=f"manager{uuid.uuid4().hex[:8]}")


def post_login(username: str, password: str = "wrong") -> int:
    client = Client(REMOTE_ADDR=an_address())  # a new address each time: only the name's count holds
    return client.post("/accounts/login/", {"username": username, "password": password}).status_code


@pytest.mark.django_db
@pytest.mark.parametrize("spell", SPELLINGS.values(), ids=SPELLINGS.keys())
def test_a_spelling_of_a_locked_name_gets_no_fresh_count_and_cannot_log_in(manager, spell):
    name = manager.username
    assert [post_login(name) for _ in range(LIMIT)] == [200] * LIMIT
    assert post_login(spell(name)) == 429
    assert post_login(spell(name), PASSWORD) == 429  # the right password, through the spelling
    assert post_login(name, PASSWORD) == 429


@pytest.mark.django_db
def test_failures_under_different_spellings_add_up_to_one_count(manager):
    name = manager.username
    spellings = [f" {name}", f"{name}\t", name.upper()]
    assert [post_login(spelling) for spelling in spellings] == [200] * LIMIT
    assert post_login(name, PASSWORD) == 429


@pytest.mark.django_db
def test_a_spelling_of_a_name_that_is_not_locked_logs_in(manager):
    assert post_login(f" {manager.username}\t", PASSWORD) == 302


@pytest.mark.django_db(transaction=True)
def test_gunicorn_refuses_every_spelling_of_a_locked_name(tmp_path):
    """The attack as it was run: real gunicorn, the name locked, then wrong and right
    passwords through spellings Django's form folds into it."""
    UserFactory(username="manager")
    env = subprocess_env(
        GOLDPATH_DATA_DIR=str(tmp_path / "data"),
        CELERY_BROKER_URL="filesystem://localhost/",
        GOLDPATH_LOGIN_RATE=f"{LIMIT}/15m",
    )
    env.pop("GOLDPATH_CACHE_URL", None)
    with gunicorn(env, tmp_path / "web.log") as server:
        locking = [login(server, "manager") for _ in range(LIMIT)]
        wrong = [login(server, spell("manager")) for spell in SPELLINGS.values()]
        right = [login(server, name, PASSWORD) for name in (" manager", "ｍanager", "manager")]
    assert locking == [200] * LIMIT
    assert wrong == [429] * len(SPELLINGS)
    assert right == [429] * 3
