"""Failed logins are limited across web processes, not per process: two real gunicorn
processes, failures sent to each in turn, share one count — in Redis when the broker is
Redis (no GOLDPATH_CACHE_URL needed), in files on the embedded set-up."""

import os
import re
import time

import httpx
import pytest
import redis

from tests.conftest import subprocess_env
from tests.webserver import gunicorn

REDIS = "redis://127.0.0.1:6379/5"  # the cache then lives on database 6
LIMIT = 3


def failed_login(base_url: str) -> int:
    with httpx.Client(base_url=base_url) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        answer = client.post(
            "/accounts/login/",
            data={"csrfmiddlewaretoken": token.group(1), "username": "alice", "password": "wrong"},
        )
    return answer.status_code


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
