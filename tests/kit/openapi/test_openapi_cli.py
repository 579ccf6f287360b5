"""``kit openapi APP`` prints the document; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from kit.openapi import build_document
from kit.openapi.cli import main
from tests.kit.openapi.app import app as feature_app
from tests.kit.openapi.server import REPO

APP = "tests.kit.openapi.app:app"


def expected() -> object:
    return json.loads(msgspec.json.encode(build_document(feature_app)))


def test_prints_the_document_through_the_kit_command() -> None:
    env = {**os.environ, "KIT_DOCS": "0"}  # docs off in production; the command still works
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "openapi", APP],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected()
    assert result.stdout.startswith('{\n  "openapi": "3.1.0"')


def test_compact_output_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "openapi.json"
    assert main([APP, "--indent", "0", "-o", str(target)]) == 0
    assert capsys.readouterr().out == ""
    text = target.read_text()
    assert text.count("\n") == 1
    assert json.loads(text) == expected()


def test_app_from_kit_app(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KIT_APP", APP)
    assert main([]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["title"] == "OpenAPI feature test"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "no APP given"),
        (["nocolon"], "must be module:attr"),
        (["no_such_module_xyz:app"], "no module named"),
        (["tests.kit.openapi.app:nothing"], "has no attribute 'nothing'"),
        (["tests.kit.openapi.app:Item"], "is not a kit App"),
    ],
)
def test_bad_app_is_one_line_and_exit_2(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("KIT_APP", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
