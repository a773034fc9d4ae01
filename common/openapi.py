"""How the OpenAPI schema (drf-spectacular) describes what common provides. Imported by
CommonConfig.ready(): an extension registers itself when its module is imported."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The same scheme DRF's TokenAuthentication had: clients send the same header."""

    target_class = "common.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": 'Token-based authentication with required prefix "Token"'}
