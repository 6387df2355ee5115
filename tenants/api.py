"""REST API base: every endpoint authenticates with a secret key and works on its tenant."""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.models import ApiKey, Tenant
from tenants.serializers import TenantOutputSerializer


class TenantAPIView(APIView):
    """Base of every /api/v1/ view. The default authentication (settings.REST_FRAMEWORK) resolves
    the secret key; `self.tenant` is the key's tenant, to be passed explicitly to services."""

    tenant: Tenant

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        super().initial(request, *args, **kwargs)
        # SecretKeyAuthentication's key: HasTenantKey has refused requests without one.
        self.tenant = cast(ApiKey, request.auth).tenant


class TenantDetailAPI(TenantAPIView):
    @extend_schema(responses=TenantOutputSerializer, summary="The tenant this key belongs to")
    def get(self, request: Request) -> Response:
        return Response(TenantOutputSerializer(self.tenant).data)
