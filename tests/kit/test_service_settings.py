"""A service's own settings: typed fields from prefixed variables and .env, one-line errors
naming the variable (exit 2 from `kit serve`), secrets never shown."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import timedelta
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

import msgspec
import pytest

from kit import App
from kit.service_settings import Secret, ServiceSettings, read_env_file
from kit.settings import Settings, SettingsError
from kit.testing import TestClient

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class Colour(Enum):
    RED = "red"
    BLUE = "blue"


class Shop(ServiceSettings, frozen=True):
    env_prefix = "SHOP_"
    port: Port = 8080
    ratio: float = 0.5
    debug: bool = False
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=20)] = "shop"
    colour: Colour = Colour.RED
    mode: Literal["fast", "safe"] = "safe"
    tags: tuple[str, ...] = ()
    limits: dict[str, int] = {}
    ttl: timedelta = timedelta(seconds=30)
    upstream: str | None = msgspec.field(name="UPSTREAM_URL", default=None)
    api_token: Secret[str] | None = None
    signing_key: Secret[Annotated[str, msgspec.Meta(min_length=16)]] | None = None
    password: str = "not-a-secret-type-but-named-like-one"


class Required(ServiceSettings, frozen=True):
    env_prefix = "REQ_"
    token: Secret[str]
    workers: int


def test_every_field_from_its_prefixed_variable() -> None:
    settings = Shop.from_env(
        {
            "SHOP_PORT": " 9000 ",
            "SHOP_RATIO": "0.25",
            "SHOP_DEBUG": "yes",
            "SHOP_NAME": "corner",
            "SHOP_COLOUR": "blue",
            "SHOP_MODE": "fast",
            "SHOP_TAGS": "a, b,,c",
            "SHOP_LIMITS": '{"x": 1}',
            "SHOP_TTL": "PT1M",
            "UPSTREAM_URL": "http://up:8000",
            "SHOP_API_TOKEN": "t0ken",
            "OTHER": "ignored",
        }
    )
    assert (settings.port, settings.ratio, settings.debug) == (9000, 0.25, True)
    assert (settings.name, settings.colour, settings.mode) == ("corner", Colour.BLUE, "fast")
    assert settings.tags == ("a", "b", "c")
    assert settings.limits == {"x": 1}
    assert settings.ttl == timedelta(minutes=1)
    assert settings.upstream == "http://up:8000"
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "t0ken"
    assert Shop.from_env({}) == Shop()
    assert Shop.from_env({"SHOP_TAGS": '["x", "y"]'}).tags == ("x", "y")
    assert Shop.from_env({"SHOP_API_TOKEN": ""}).api_token is None  # empty optional: unset


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SHOP_PORT": "eighty"}, "SHOP_PORT='eighty': Expected `int`, got `str`"),
        ({"SHOP_PORT": "0"}, "SHOP_PORT='0': Expected `int` >= 1"),
        ({"SHOP_PORT": "70000"}, "SHOP_PORT='70000': Expected `int` <= 65535"),
        ({"SHOP_DEBUG": "maybe"}, "SHOP_DEBUG='maybe' is not a boolean"),
        ({"SHOP_NAME": ""}, "SHOP_NAME='': Expected `str` of length >= 1"),
        ({"SHOP_COLOUR": "green"}, "SHOP_COLOUR='green': Invalid enum value 'green'"),
        ({"SHOP_MODE": "slow"}, "SHOP_MODE='slow': Invalid enum value 'slow'"),
        ({"SHOP_LIMITS": '{"x": "y"}'}, 'SHOP_LIMITS=\'{"x": "y"}\': Expected `int`'),
        ({"SHOP_LIMITS": "{oops"}, "SHOP_LIMITS='{oops': JSON is malformed"),
        ({"SHOP_SIGNING_KEY": "short"}, "SHOP_SIGNING_KEY=<redacted>: Expected `str` of length"),
        ({}, "REQ_TOKEN is required (Secret[str]) and not set"),
        ({"REQ_TOKEN": "x"}, "REQ_WORKERS is required (int) and not set"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(environ: dict[str, str], message: str) -> None:
    cls = Required if not environ or "REQ_TOKEN" in environ else Shop
    with pytest.raises(SettingsError) as caught:
        cls.from_env(environ)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_secret_never_shows_itself(caplog: pytest.LogCaptureFixture) -> None:
    settings = Shop.from_env({"SHOP_API_TOKEN": "hunter2-hunter2", "SHOP_SIGNING_KEY": "k" * 20})
    logging.getLogger("shop").warning("settings: %s / %r", settings, settings.api_token)
    for shown in (repr(settings), str(settings), caplog.text, str(settings.api_token)):
        assert "hunter2" not in shown
        assert "k" * 20 not in shown
    assert "<redacted>" in caplog.text
    redacted = settings.redacted()
    assert redacted["SHOP_API_TOKEN"] == "<redacted>"
    assert redacted["SHOP_SIGNING_KEY"] == "<redacted>"
    assert redacted["SHOP_PORT"] == 8080
    assert redacted["SHOP_COLOUR"] == "red"


def test_dot_env_fills_in_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# the shop\n"
        "export SHOP_PORT=9001\n"
        "SHOP_NAME='corner shop'\n"
        'SHOP_API_TOKEN="multi\\nline"\n'
        "SHOP_MODE=fast # a comment\n"
        "\n"
    )
    settings = Shop.from_env({"SHOP_PORT": "9002"}, env_file=env_file)
    assert settings.port == 9002
    assert settings.name == "corner shop"
    assert settings.mode == "fast"
    assert settings.api_token == Secret("multi\nline")
    assert Shop.from_env({}, env_file=tmp_path / "missing.env") == Shop()


def test_the_class_env_file_is_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("SHOP_PORT=9003\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SHOP_PORT", raising=False)
    assert Shop.from_env().port == 9003
    assert Shop.from_env({}).port == 8080  # an explicit mapping: no file unless asked


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"NOT A LINE\n", ":1: expected KEY=value"),
        (b"OK=1\nBAD KEY=2\n", ":2: expected KEY=value"),
        (b"\xff\xfe=1\n", "not UTF-8 text"),
        (b"A=" + b"x" * (1024 * 1024), "larger than"),
    ],
)
def test_a_broken_env_file_is_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(content)
    with pytest.raises(SettingsError, match=message):
        read_env_file(env_file)


def test_admin_info_shows_service_settings_redacted() -> None:
    Shop.from_env({"SHOP_API_TOKEN": "hunter2-hunter2", "SHOP_PORT": "9004"})
    key = "admin-key-0123456789"
    settings = Settings.from_env({"KIT_ADMIN": "1", "KIT_API_KEYS": f"{key} admin"})
    app = App(title="shop", settings=settings)
    with TestClient(app) as client:
        response = client.get("/admin/info", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    assert "hunter2" not in response.text
    shop = response.json()["service_settings"]["Shop"]
    assert shop["SHOP_API_TOKEN"] == "<redacted>"
    assert shop["SHOP_PASSWORD"] == "<redacted>"  # named like a secret: hidden all the same
    assert shop["SHOP_PORT"] == 9004


def test_kit_serve_stops_on_a_bad_value_with_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "shopapp.py").write_text(
        "from typing import Annotated\n"
        "import msgspec\n"
        "from kit import App\n"
        "from kit.service_settings import ServiceSettings\n\n\n"
        "class ShopSettings(ServiceSettings, frozen=True):\n"
        '    env_prefix = "SHOPAPP_"\n'
        "    page_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20\n\n\n"
        "settings = ShopSettings.from_env()\n"
        "app = App()\n"
    )
    env = {**os.environ, "SHOPAPP_PAGE_SIZE": "500", "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "kit.cli", "serve", "shopapp:app", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == "kit serve: SHOPAPP_PAGE_SIZE='500': Expected `int` <= 100\n"
