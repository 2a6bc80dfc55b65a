"""Settings that create nothing on import; dashboard.installation.prepare(), which every entry
point calls; the embedded set-up's cache, whose counters count every increment."""

import stat
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR, manage, subprocess_env


def python(code: str, **env: str) -> subprocess.Popen[str]:
    environment = subprocess_env(DJANGO_SETTINGS_MODULE="dashboard.settings")
    environment.pop("GOLDPATH_SECRET_KEY", None)
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-c", code], env=environment, cwd=BASE_DIR, stdout=subprocess.PIPE, text=True
    )


def output(code: str, **env: str) -> str:
    process = python(code, **env)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return stdout.strip()


def test_importing_the_settings_creates_nothing(tmp_path):
    data = tmp_path / "data"
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATA_DIR)"
    assert output(code, GOLDPATH_DATA_DIR=str(data)) == str(data)
    assert not data.exists()


def test_prepare_creates_the_data_directory_the_broker_folders_and_a_private_key(tmp_path):
    data = tmp_path / "data"
    code = "from dashboard import installation; installation.prepare(); print(installation.secret_key())"
    key = output(code, GOLDPATH_DATA_DIR=str(data), CELERY_BROKER_URL="filesystem://localhost/")
    assert len(key) >= 50
    assert (data / "secret_key").read_text() == key
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    assert (data / "broker" / "queue").is_dir() and (data / "broker" / "control").is_dir()
    assert output(code, GOLDPATH_DATA_DIR=str(data)) == key  # a second start keeps the key
    assert sorted(path.name for path in data.iterdir()) == ["broker", "secret_key"]  # no candidate left over


def test_the_settings_read_the_prepared_key(tmp_path):
    data = str(tmp_path / "data")
    output("from dashboard.installation import prepare; prepare()", GOLDPATH_DATA_DIR=data)
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    assert output(code, GOLDPATH_DATA_DIR=data) == (tmp_path / "data" / "secret_key").read_text()


def test_a_worker_started_first_on_a_fresh_installation_uses_the_key_it_prepared(tmp_path):
    """``celery -A dashboard worker`` reads the settings (no key file yet: an empty key)
    before its start-up signal prepares the installation; the signal sets the new key."""
    data = tmp_path / "data"
    code = (
        "import django; django.setup(); from django.conf import settings;"
        "from dashboard.celery import app; app.loader.import_default_modules();"  # as the CLI does
        "from celery.signals import celeryd_init;"
        "celeryd_init.send(sender='worker@test', instance=None, conf=app.conf);"
        "print(settings.SECRET_KEY)"
    )
    assert output(code, GOLDPATH_DATA_DIR=str(data), CELERY_BROKER_URL="filesystem://localhost/") == (
        (data / "secret_key").read_text()
    )


def test_a_key_from_the_environment_is_used_and_none_is_written(tmp_path):
    data = tmp_path / "data"
    code = (
        "from dashboard.installation import prepare; prepare(); import django; django.setup();"
        "from django.conf import settings; print(settings.SECRET_KEY)"
    )
    assert output(code, GOLDPATH_DATA_DIR=str(data), GOLDPATH_SECRET_KEY="set-by-the-operator") == "set-by-the-operator"
    assert not (data / "secret_key").exists()


def test_a_broker_with_a_server_gets_no_folders(tmp_path):
    data = tmp_path / "data"
    output(
        "from dashboard.installation import prepare; prepare()",
        GOLDPATH_DATA_DIR=str(data),
        CELERY_BROKER_URL="redis://127.0.0.1:6379/9",
    )
    assert sorted(path.name for path in data.iterdir()) == ["secret_key"]


def test_processes_that_start_together_share_one_key(tmp_path):
    """The demo starts the web server and the worker at once on a fresh data directory."""
    data = str(tmp_path / "data")
    start = tmp_path / "go"
    code = (
        "import pathlib, time\n"
        f"while not pathlib.Path({str(start)!r}).exists(): time.sleep(0.001)\n"
        "from dashboard import installation; installation.prepare(); print(installation.secret_key())"
    )
    processes = [python(code, GOLDPATH_DATA_DIR=data) for _ in range(8)]
    start.touch()
    keys = {process.communicate(timeout=60)[0].strip() for process in processes}
    assert all(process.returncode == 0 for process in processes)
    assert keys == {(tmp_path / "data" / "secret_key").read_text()}


COUNT = """
import sys
from dashboard.cache import LockedFileCache
cache = LockedFileCache(sys.argv[1], {})
for _ in range(200):
    if not cache.add("failures", 1, 600):  # as django_ratelimit counts
        cache.incr("failures")
"""


def test_the_file_cache_counts_every_increment_of_processes_counting_at_once(tmp_path):
    processes = [
        subprocess.Popen([sys.executable, "-c", COUNT, str(tmp_path / "cache")], cwd=BASE_DIR, env=subprocess_env())
        for _ in range(4)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]
    from dashboard.cache import LockedFileCache

    assert LockedFileCache(str(tmp_path / "cache"), {}).get("failures") == 800


@pytest.mark.parametrize(
    ("broker", "backend"),
    [
        ("filesystem://localhost/", "dashboard.cache.LockedFileCache"),
        ("redis://127.0.0.1:6379/9", "django.core.cache.backends.redis.RedisCache"),
    ],
    ids=["embedded", "redis"],
)
def test_the_cache_of_each_set_up_passes_the_login_limits_checks(tmp_path, broker, backend):
    """django_ratelimit's E003 (a cache that is not shared, or whose increments are not
    atomic) is not silenced, and neither cache the settings choose raises it."""
    env = subprocess_env(GOLDPATH_DATA_DIR=str(tmp_path), CELERY_BROKER_URL=broker)
    shown = manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])",
        env=env,
    )
    assert shown.stdout.strip() == backend
    checked = manage("check", "--tag", "caches", env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "System check identified no issues (1 silenced)."
