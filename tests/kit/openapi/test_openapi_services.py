"""Every service's document is valid OpenAPI 3.1, and the running service keeps to it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

import httpx
import pytest
import tomllib
from openapi_spec_validator import validate

from kit.openapi import build_document
from tests.kit.openapi.conftest import load_app
from tests.kit.openapi.server import FEATURE_APP, REPO, Server, service_apps

APPS = [FEATURE_APP, *service_apps()]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
# Fuzzing cases per operation, on top of the coverage phase's boundary cases for each rule.
EXAMPLES_PER_OPERATION = 30
needs_schemathesis = pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is missing")


def fuzz_config(app: str, directory: Path) -> Path:
    """kit's settings plus those of the app's own ``fuzz.toml`` (next to its module), if any.

    A service exempts or relaxes its operations there (schemathesis' ``[[operations]]``
    tables), never in kit's file: what is special about a service stays in its folder.
    """
    module = import_module(app.partition(":")[0])
    own = Path(module.__file__ or "").with_name("fuzz.toml")
    if not own.is_file():
        return CONFIG
    text = CONFIG.read_text() + f"\n# --- {own.relative_to(REPO)} ---\n" + own.read_text()
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{own}: cannot be added to {CONFIG.name}: {exc}", pytrace=False)
    merged = directory / "schemathesis.toml"
    merged.write_text(text)
    return merged


def schemathesis(
    location: str,
    base_url: str,
    directory: Path,
    *options: str,
    phases: str = "examples,coverage,fuzzing",
    config: Path = CONFIG,
) -> None:
    """One schemathesis run, the same cases every time; fails with its report."""
    assert SCHEMATHESIS is not None
    command = [
        SCHEMATHESIS,
        "--config-file",
        str(config),
        "run",
        location,
        "--url",
        base_url,
        *options,
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--phases",
        phases,
        "--seed",
        "20261122",
        "--generation-database",
        "none",
        # One worker: hypothesis parses lambdas with ast in each thread, and CPython 3.11's
        # parser is not thread-safe ("AST constructor recursion depth mismatch").
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-color",
    ]
    result = subprocess.run(
        command, cwd=directory, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]


def test_a_services_fuzz_toml_is_added_to_kits_settings(tmp_path: Path) -> None:
    assert fuzz_config(FEATURE_APP, tmp_path) == CONFIG  # no fuzz.toml: kit's settings alone
    merged = tomllib.loads(fuzz_config("services.catalog.app:app", tmp_path).read_text())
    assert merged["checks"] == tomllib.loads(CONFIG.read_text())["checks"]
    assert [op["include-name"] for op in merged["operations"]] == ["GET /products"]
    assert "operations" not in tomllib.loads(CONFIG.read_text())  # nothing per service in kit's


@pytest.mark.parametrize("app", APPS)
def test_document_is_valid_openapi(app: str) -> None:
    validate(build_document(load_app(app)))


@needs_schemathesis
@pytest.mark.parametrize("app", APPS)
def test_no_server_error_and_every_response_as_documented(
    app: str, running: Callable[[str], Server], tmp_path: Path
) -> None:
    server = running(app)
    # Every check but negative_data_rejection: kit decodes JSON bodies leniently on purpose
    # (FastAPI's coercions: "30" and 30.0 are accepted for an int), which it reports.
    schemathesis(
        f"{server.url}/openapi.json",
        server.url,
        tmp_path,
        "--checks",
        "all",
        "--exclude-checks",
        "negative_data_rejection",
        config=fuzz_config(app, tmp_path),
    )


@needs_schemathesis
@pytest.mark.parametrize("app", APPS)
def test_parameters_that_break_the_documented_rules_are_rejected(
    app: str, running: Callable[[str], Server], tmp_path: Path
) -> None:
    """negative_data_rejection on the operations without a body: their inputs are all
    parameters, read from strings, where leniency does not apply."""
    server = running(app)
    document = httpx.get(f"{server.url}/openapi.json").json()
    for item in document["paths"].values():
        for method in [m for m, operation in item.items() if "requestBody" in operation]:
            del item[method]
    document["paths"] = {path: item for path, item in document["paths"].items() if item}
    if not document["paths"]:
        pytest.skip("every operation has a body")
    location = tmp_path / "without-bodies.json"
    location.write_text(json.dumps(document))
    schemathesis(
        str(location),
        server.url,
        tmp_path,
        "--checks",
        "negative_data_rejection",
        "--mode",
        "negative",
        config=fuzz_config(app, tmp_path),
    )
