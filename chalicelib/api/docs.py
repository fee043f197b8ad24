"""The machine-readable contract and interactive docs: /openapi.json and /docs
(Swagger UI served from the installed swagger-ui-bundle package: no CDN, works offline)."""

from __future__ import annotations

from functools import lru_cache

from chalice import Blueprint, Response

from chalicelib.api import schemas
from chalicelib.api.http import Call, respond, route

bp = Blueprint(__name__)

ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "application/javascript; charset=utf-8",
}

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Titan Enrollment API</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"""


@lru_cache(maxsize=1)
def _document() -> dict:
    import app
    from chalicelib.api.openapi import document

    return document(app.app)


@lru_cache(maxsize=len(ASSETS))
def _asset(name: str) -> str:
    from swagger_ui_bundle import swagger_ui_path

    return (swagger_ui_path / name).read_text(encoding="utf-8")


@route(bp, "/openapi.json", ["GET"], public=True, responses={200: "The OpenAPI 3.1 document of this API"})
def openapi(call: Call):
    """This API's OpenAPI 3.1 document."""
    return respond(_document())


@route(bp, "/docs", ["GET"], public=True, responses={200: "Swagger UI (HTML)"})
def docs(call: Call):
    """Interactive API documentation."""
    return Response(body=PAGE, status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})


@route(bp, "/docs/{asset}", ["GET"], public=True, responses={200: "A Swagger UI asset", 404: schemas.ErrorBody})
def asset(call: Call, asset: str):
    """Swagger UI's scripts and styles."""
    if asset not in ASSETS:
        return respond({"message": f"No such asset: {asset}", "code": "not_found", "details": []}, 404)
    return Response(
        body=_asset(asset),
        status_code=200,
        headers={"Content-Type": ASSETS[asset], "Cache-Control": "public, max-age=86400"},
    )
