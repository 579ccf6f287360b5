"""CORS and the Host allow-list: off by default, on when configured, answers in kit's shape."""

from __future__ import annotations

from starlette.testclient import TestClient

from kit import App, Settings


def app_with(**settings: object) -> App:
    app = App(settings=Settings.from_env({}, metrics=False, access_log=False, **settings))

    @app.get("/thing")
    async def thing() -> dict[str, int]:
        return {"n": 1}

    return app


PREFLIGHT = {
    "origin": "https://shop.example",
    "access-control-request-method": "PATCH",
    "access-control-request-headers": "authorization, if-match",
}


def test_both_are_off_by_default() -> None:
    with TestClient(app_with(), base_url="http://anything.example") as client:
        response = client.get("/thing", headers={"origin": "https://shop.example"})
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
        assert client.options("/thing", headers=PREFLIGHT).status_code == 405


def test_cors_for_the_configured_origins_only() -> None:
    app = app_with(cors_origins=("https://shop.example",))
    with TestClient(app) as client:
        preflight = client.options("/thing", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://shop.example"
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed
        assert "if-match" in allowed
        simple = client.get("/thing", headers={"origin": "https://shop.example"})
        assert simple.headers["access-control-allow-origin"] == "https://shop.example"
        assert "etag" in simple.headers["access-control-expose-headers"].lower()
        other = client.options("/thing", headers={**PREFLIGHT, "origin": "https://evil.example"})
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers


def test_allowed_hosts() -> None:
    app = app_with(allowed_hosts=("api.example", "*.internal.example"))
    with TestClient(app, base_url="http://api.example") as client:
        assert client.get("/thing").status_code == 200
        assert client.get("/thing", headers={"host": "api.example:8443"}).status_code == 200
        assert client.get("/thing", headers={"host": "a.internal.example"}).status_code == 200
        refused = client.get("/thing", headers={"host": "evil.example"})
        assert refused.status_code == 400
        assert refused.json() == {"detail": "Invalid host header"}
        assert client.get("/thing", headers={"host": "internal.example"}).status_code == 400


def test_settings_are_comma_separated() -> None:
    settings = Settings.from_env(
        {"KIT_CORS_ORIGINS": "https://a.example, https://b.example", "KIT_ALLOWED_HOSTS": "x,"}
    )
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.allowed_hosts == ("x",)
