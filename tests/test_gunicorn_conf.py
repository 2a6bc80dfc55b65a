"""gunicorn.conf.py as a real gunicorn reads it (from the project root)."""

from tests.conftest import subprocess_env
from tests.webserver import gunicorn


def test_gunicorn_keeps_no_control_socket_in_the_home_directory(django_db_setup, tmp_path):
    """gunicorn's control socket defaults to one path per account (~/.gunicorn/gunicorn.ctl
    without XDG_RUNTIME_DIR), shared by every gunicorn of the account: it is off."""
    home = tmp_path / "home"
    home.mkdir()
    env = subprocess_env(HOME=str(home))
    env.pop("XDG_RUNTIME_DIR", None)
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(env, log_path):
        written_to_home = sorted(str(path.relative_to(home)) for path in home.rglob("*"))
    assert written_to_home == []
    assert "Control socket" not in log_path.read_text()
