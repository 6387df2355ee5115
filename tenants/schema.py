"""Tells drf-spectacular how the secret-key authentication looks in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SecretKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.SecretKeyAuthentication"
    name = "secretKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A secret API key (wf_sk_…) from Settings → API keys.",
        }
