"""The /docs (Swagger UI) and /redoc pages, with assets served locally or from a CDN."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_UI_VERSION = "5.35.0"  # keep in step with static/VENDORED.txt
REDOC_VERSION = "2.5.4"
CDN = "https://cdn.jsdelivr.net/npm"


@dataclass(frozen=True)
class Assets:
    swagger_js: str
    swagger_css: str
    redoc_js: str

    @classmethod
    def local(cls, static_url: str) -> Assets:
        return cls(
            swagger_js=f"{static_url}/swagger-ui/swagger-ui-bundle.js",
            swagger_css=f"{static_url}/swagger-ui/swagger-ui.css",
            redoc_js=f"{static_url}/redoc/redoc.standalone.js",
        )

    @classmethod
    def cdn(cls) -> Assets:
        swagger = f"{CDN}/swagger-ui-dist@{SWAGGER_UI_VERSION}"
        return cls(
            swagger_js=f"{swagger}/swagger-ui-bundle.js",
            swagger_css=f"{swagger}/swagger-ui.css",
            redoc_js=f"{CDN}/redoc@{REDOC_VERSION}/bundles/redoc.standalone.js",
        )

    def prefixed(self, root_path: str) -> Assets:
        """Local URLs under the app's mount point (``root_path``); CDN URLs as they are."""
        if not root_path:
            return self

        def fix(url: str) -> str:
            return root_path + url if url.startswith("/") else url

        return Assets(fix(self.swagger_js), fix(self.swagger_css), fix(self.redoc_js))


def _js(value: str) -> str:
    # JSON is valid JavaScript; escaping "<" keeps "</script>" in a title from closing the tag.
    return json.dumps(value).replace("<", "\\u003c")


# No favicon request, no validator badge (it loads an image from the internet).
_HEAD = '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
_NO_FAVICON = '<link rel="icon" href="data:,">'


def swagger_ui_html(title: str, openapi_url: str, assets: Assets) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
{_HEAD}
{_NO_FAVICON}
<title>{html.escape(title)} - Swagger UI</title>
<link rel="stylesheet" href="{html.escape(assets.swagger_css)}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{html.escape(assets.swagger_js)}"></script>
<script>
window.ui = SwaggerUIBundle({{
  url: {_js(openapi_url)},
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}});
</script>
</body>
</html>
"""


def redoc_html(title: str, openapi_url: str, assets: Assets) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
{_HEAD}
{_NO_FAVICON}
<title>{html.escape(title)} - ReDoc</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{html.escape(openapi_url)}"></redoc>
<script src="{html.escape(assets.redoc_js)}"></script>
</body>
</html>
"""
