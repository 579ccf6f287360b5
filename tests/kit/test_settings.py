"""Settings come from KIT_* variables; a bad value is one clear line naming what is allowed."""

import subprocess
import sys

import pytest

from kit.settings import Settings, SettingsError
from runtimes.registry import PREFERRED


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.host, s.port, s.workers, s.loop, s.http) == ("127.0.0.1", 8000, 1, "auto", "auto")
    assert s.runtime in PREFERRED
    assert s.database_url is None
    assert s.max_body_size == 1024 * 1024


def test_environment_and_overrides() -> None:
    env = {"KIT_RUNTIME": "Hypercorn", "KIT_PORT": "9001", "KIT_WORKERS": "2", "KIT_DOCS": "off"}
    s = Settings.from_env(env, port=9002, workers=None)
    assert (s.runtime, s.port, s.workers, s.docs) == ("hypercorn", 9002, 2, False)
    custom = Settings.from_env({"KIT_RUNTIME": "my.module:Runtime"})
    assert custom.runtime == "my.module:Runtime"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KIT_RUNTIME": "tornado"},
            "use one of uvicorn, granian, hypercorn, gunicorn or module:attr",
        ),
        ({"KIT_LOOP": "trio"}, "use one of auto, uvloop, asyncio"),
        ({"KIT_HTTP": "3"}, "use one of auto, 1, 2"),
        ({"KIT_PORT": "eighty"}, "is not an integer"),
        ({"KIT_PORT": "70000"}, "out of range"),
        ({"KIT_WORKERS": "0"}, "out of range"),
        ({"KIT_REQUEST_TIMEOUT": "nan"}, "must be >= 0"),
        ({"KIT_DOCS": "maybe"}, "is not a boolean"),
    ],
)
def test_bad_values_name_the_allowed_ones(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value)
    assert next(iter(env)) in str(info.value)


def test_bad_value_exits_2_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "serve", "tests.runtimes.app:app"],
        env={"KIT_LOOP": "trio", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "KIT_LOOP='trio'" in lines[0]
