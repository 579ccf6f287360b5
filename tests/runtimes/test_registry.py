"""The registry, the loop choice and what each adapter hands its server."""

from __future__ import annotations

import ast
import re
from importlib.util import find_spec

import pytest
import tomllib

from kit.serve import launch_options
from kit.settings import Settings
from runtimes import RUNTIMES, Launch, RuntimeUnavailable, load_runtime
from runtimes.base import quiet_level
from runtimes.loops import resolve_loop
from runtimes.registry import BY_PREFERENCE, NAMES, PREFERRED, TABLE, default_name
from tests.runtimes.conftest import REPO, runtime_params


def launch(**settings: object) -> Launch:
    base = Settings.from_env(
        {}, app="tests.runtimes.app:app", runtime="uvicorn", log_level="info", graceful_timeout=2.5
    )
    return launch_options(base.with_(**settings), loop="uvloop", threads=False)


@pytest.mark.parametrize("name", runtime_params())
def test_builtin_names_load_their_adapter(name: str) -> None:
    runtime = load_runtime(name)
    assert runtime.name == name
    assert runtime.version()[0].isdigit()
    assert type(runtime).__module__ + ":" + type(runtime).__name__ == RUNTIMES[name]


def test_custom_module_attr_is_accepted() -> None:
    runtime = load_runtime("tests.runtimes.custom_runtime:ReportingRuntime")
    assert runtime.name == "reporting"


@pytest.mark.parametrize("name", ["tornado", "", ":", "module:", ":attr"])
def test_unknown_names_are_refused(name: str) -> None:
    with pytest.raises(RuntimeUnavailable, match="use one of uvicorn, granian, hypercorn"):
        load_runtime(name)


def test_a_missing_custom_module_is_one_line() -> None:
    # Only a missing module is one line; an adapter failing inside keeps its traceback.
    with pytest.raises(RuntimeUnavailable, match="no module named 'no_such_pkg'"):
        load_runtime("no_such_pkg.adapter:Runtime")


@pytest.mark.parametrize(
    ("requested", "installed", "loop"),
    [
        ("auto", True, "uvloop"),
        ("auto", False, "asyncio"),
        ("uvloop", True, "uvloop"),
        ("asyncio", True, "asyncio"),
        ("asyncio", False, "asyncio"),
    ],
)
def test_resolve_loop(requested: str, installed: bool, loop: str) -> None:
    assert resolve_loop(requested, uvloop_installed=installed) == loop


def test_uvloop_requested_but_missing() -> None:
    with pytest.raises(RuntimeUnavailable, match="pip install uvloop"):
        resolve_loop("uvloop", uvloop_installed=False)


@pytest.mark.parametrize(
    ("level", "server"),
    [
        ("debug", "debug"),
        ("info", "warning"),
        ("warning", "warning"),
        ("error", "error"),
        ("critical", "critical"),
    ],
)
def test_server_logs_stay_quiet_below_warning(level: str, server: str) -> None:
    assert quiet_level(level) == server


def test_launch_url_brackets_ipv6() -> None:
    assert launch(host="::1", port=8001).url == "http://[::1]:8001"
    assert launch(host="0.0.0.0", port=80).url == "http://0.0.0.0:80"


needs = {
    name: pytest.mark.skipif(find_spec(name) is None, reason=f"{name} missing") for name in RUNTIMES
}


@needs["uvicorn"]
def test_uvicorn_options() -> None:
    from runtimes.uvicorn import UvicornRuntime

    config = UvicornRuntime().config(launch(workers=3, http="1"))
    assert (config.host, config.port, config.workers) == ("127.0.0.1", 8000, 3)
    assert config.loop == "uvloop"
    bounded = "runtimes.uvicorn_headers:BoundedHttpToolsProtocol"  # httptools, headers bounded
    assert config.http == (bounded if find_spec("httptools") else "h11")
    assert config.h11_max_incomplete_event_size == 64 * 1024
    assert config.access_log is False
    assert config.lifespan == "on"
    assert config.timeout_graceful_shutdown == 3  # whole seconds, rounded up
    assert config.server_header is False


@needs["granian"]
def test_granian_options() -> None:
    from runtimes.granian import GranianRuntime

    options = GranianRuntime().options(launch(workers=2, http="2", graceful_timeout=0))
    assert options["interface"] == "asgi"
    assert (options["address"], options["port"], options["workers"]) == ("127.0.0.1", 8000, 2)
    assert options["loop"] == "uvloop"
    assert options["http"] == "2"
    assert options["log_access"] is False
    assert options["log_level"] == "warning"
    assert options["workers_kill_timeout"] == 1  # granian reads 0 as "wait forever"


@needs["hypercorn"]
@pytest.mark.parametrize(
    ("http", "alpn"), [("1", ["http/1.1"]), ("2", ["h2", "http/1.1"]), ("auto", ["h2", "http/1.1"])]
)
def test_hypercorn_options(http: str, alpn: list[str]) -> None:
    from runtimes.hypercorn import HypercornRuntime

    config = HypercornRuntime().config(launch(host="::1", http=http, workers=2))
    assert config.bind == ["[::1]:8000"]
    assert config.worker_class == "uvloop"
    assert config.workers == 2
    assert config.graceful_timeout == 2.5
    assert config.accesslog is None
    assert config.include_server_header is False
    assert config.alpn_protocols == alpn


# The runtime table against everything that names runtimes outside Python.


def _adapter_attributes(target: str) -> dict[str, str]:
    """The string class attributes of the adapter ``module:attr``, read from its source (its
    server package may not be installed in this cell)."""
    module, _, attr = target.partition(":")
    source = (REPO / (module.replace(".", "/") + ".py")).read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == attr:
            return {
                target.id: value.value
                for item in node.body
                if isinstance(item, ast.Assign)
                for target in item.targets
                if isinstance(target, ast.Name)
                and isinstance(value := item.value, ast.Constant)
                and isinstance(value.value, str)
            }
    raise AssertionError(f"{target}: no class {attr}")


def test_the_table_matches_the_adapters() -> None:
    for entry in TABLE:
        attributes = _adapter_attributes(entry.adapter)
        assert (attributes.get("name"), attributes.get("package")) == (entry.name, entry.package)
    adapters = {
        path.stem
        for path in (REPO / "runtimes").glob("*.py")
        if re.search(r"^class \w+\(Runtime\):", path.read_text(), re.MULTILINE)
    }
    assert adapters == {entry.adapter.split(":")[0].split(".")[1] for entry in TABLE}


def test_every_runtime_has_an_extra_of_its_name() -> None:
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(NAMES) <= set(extras)


def test_tox_factors_are_the_table() -> None:
    tox = tomllib.loads((REPO / "tox.toml").read_text())
    runtime_factors = tox["env_list"][0]["product"][1]
    assert runtime_factors == list(NAMES)
    # every runtime factor chooses its own extra and KIT_TEST_RUNTIMES
    text = (REPO / "tox.toml").read_text()
    for name in NAMES:
        assert f'condition = "factor.{name}", then = "{name}"' in text, name


def test_the_default_runtime_is_preferred_and_installed() -> None:
    assert default_name() in PREFERRED
    assert BY_PREFERENCE[: len(PREFERRED)] == PREFERRED
    assert sorted(BY_PREFERENCE) == sorted(NAMES)
