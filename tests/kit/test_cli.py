"""The kit command: subcommands from the ``kit.commands`` entry-point group."""

import subprocess
import sys

import pytest

from kit.cli import BUILTIN, commands, main


def test_the_entry_point_group_registers_every_builtin_command() -> None:
    # pyproject's [project.entry-points."kit.commands"] and the checkout fallback agree.
    assert commands() == BUILTIN


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert f"  {name} " in out


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2


def test_unknown_command_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "frobnicate" in err
    assert "serve" in err


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "usage: kit" in result.stdout
