"""``kit serve`` refusing bad input: one line naming what is allowed, exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec

import pytest

from runtimes.registry import NAMES
from tests.runtimes.conftest import APP, REPO, serve_command

CUSTOM = "tests.runtimes.custom_runtime:ReportingRuntime"


def kit_serve(
    *args: str, env: dict[str, str] | None = None, block: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run ``kit serve`` in a fresh interpreter; ``block`` names modules made unimportable."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KIT_")}
    environ.update(env or {})
    command = serve_command(*args)
    if block:
        code = (
            "import sys\n"
            f"for name in {block.split(',')!r}: sys.modules[name] = None\n"
            "from kit.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n"
        )
        command = [sys.executable, "-c", code, "serve", *args]
    return subprocess.run(
        command, cwd=REPO, env=environ, capture_output=True, text=True, timeout=60
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kit serve"), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (
            (),
            {"KIT_RUNTIME": "tornado"},
            "KIT_RUNTIME='tornado' is not allowed; use one of uvicorn, granian, hypercorn, "
            "gunicorn or module:attr",
        ),
        (
            ("--runtime", "tornado"),
            {},
            "--runtime='tornado' is not allowed; use one of uvicorn, granian, hypercorn",
        ),
        (("--loop", "fast"), {}, "--loop='fast' is not allowed; use one of auto, uvloop, asyncio"),
        (
            (),
            {"KIT_LOOP": "fast"},
            "KIT_LOOP='fast' is not allowed; use one of auto, uvloop, asyncio",
        ),
        (("--http", "3"), {}, "--http='3' is not allowed; use one of auto, 1, 2"),
        ((), {"KIT_HTTP": "h3"}, "KIT_HTTP='h3' is not allowed; use one of auto, 1, 2"),
        (("--port", "http"), {}, "--port='http' is not an integer"),
        (("--port", "70000"), {}, "--port='70000' is out of range (0..65535)"),
        (("--workers", "0"), {}, "--workers='0' is out of range (1..512)"),
        ((), {"KIT_WORKERS": "two"}, "KIT_WORKERS='two' is not an integer"),
        (("--graceful-timeout", "-1"), {}, "--graceful-timeout='-1' must be >= 0"),
        ((), {"KIT_ALLOW_GIL": "maybe"}, "KIT_ALLOW_GIL='maybe' is not a boolean"),
    ],
)
def test_bad_values_exit_2_naming_the_allowed_ones(
    args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    assert expected in one_line_error(kit_serve(APP, *args, env=env))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "no APP given; pass module:attr or set KIT_APP"),
        (("no_colon",), "APP 'no_colon' must be module:attr"),
        (("no.such.module:app",), "cannot import APP 'no.such.module:app': no module named 'no'"),
        (("tests.runtimes.app:nope",), "'tests.runtimes.app' has no attribute 'nope'"),
        ((APP, "--runtime", "no_such_module:Runtime"), "no module named 'no_such_module'"),
        (
            (APP, "--runtime", "tests.runtimes.custom_runtime:Nope"),
            "'tests.runtimes.custom_runtime' has no attribute 'Nope'",
        ),
        (
            (APP, "--runtime", "tests.runtimes.custom_runtime:not_a_runtime"),
            "is not a runtimes.base.Runtime",
        ),
        ((APP, "--bogus-flag"), "unrecognized arguments: --bogus-flag"),
    ],
)
def test_bad_app_or_adapter_exits_2(args: tuple[str, ...], expected: str) -> None:
    # The custom runtime needs no server package, so this holds in every tox cell.
    result = kit_serve(*args, env={"KIT_RUNTIME": CUSTOM})
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize("runtime", NAMES)
def test_missing_server_package_names_the_extra(runtime: str) -> None:
    line = one_line_error(kit_serve(APP, "--runtime", runtime, block=runtime))
    needs = f"KIT_RUNTIME={runtime} needs the {runtime} package"
    assert line == f"kit serve: {needs}: pip install 'kit-asgi[{runtime}]'"


def test_uvloop_requested_but_missing() -> None:
    line = one_line_error(kit_serve(APP, "--runtime", CUSTOM, "--loop", "uvloop", block="uvloop"))
    assert line == "kit serve: KIT_LOOP=uvloop needs the uvloop package: pip install uvloop"


def test_auto_loop_falls_back_to_asyncio_without_uvloop() -> None:
    result = kit_serve(APP, "--runtime", CUSTOM, block="uvloop")
    assert result.returncode == 0, result.stderr
    assert "loop=asyncio" in result.stderr


@pytest.mark.skipif(find_spec("uvicorn") is None, reason="uvicorn is not installed")
def test_uvicorn_http2_needs_zttp() -> None:
    result = kit_serve(APP, "--runtime", "uvicorn", "--http", "2", block="zttp")
    assert "uvicorn serves HTTP/2 only with the zttp package" in one_line_error(result)


def test_custom_runtime_gets_the_resolved_launch() -> None:
    result = kit_serve(
        "--runtime",
        CUSTOM,
        "--host",
        "::1",
        "--port",
        "9999",
        "--loop",
        "asyncio",
        env={"KIT_APP": APP, "KIT_WORKERS": "3"},
    )
    assert result.returncode == 0, result.stderr
    # it never listened, so kit never said it was serving
    assert result.stderr.strip().splitlines() == [
        f"reporting: {APP} http://[::1]:9999 loop=asyncio workers=3 http=auto"
    ]


def test_flags_override_environment() -> None:
    result = kit_serve(
        APP,
        "--runtime",
        CUSTOM,
        "--port",
        "9001",
        "--http",
        "1",
        env={"KIT_PORT": "9000", "KIT_HTTP": "2", "KIT_RUNTIME": "uvicorn"},
    )
    assert result.returncode == 0, result.stderr
    assert "http://127.0.0.1:9001 loop=" in result.stderr
    assert result.stderr.rstrip().endswith(" http=1")


def test_help_exits_0() -> None:
    result = kit_serve("--help")
    assert result.returncode == 0
    assert "--graceful-timeout" in result.stdout
