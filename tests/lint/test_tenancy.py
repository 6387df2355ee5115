"""The tenancy lint of `make lint`: a view or API module that queries a tenant-owned model without
naming the tenant fails it; the code as it is passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.apps import apps

from lint.tenancy import check_source, check_tree, checked_modules, tenant_models

ROOT = Path(__file__).resolve().parents[2]

MODELS = """
from django.db import models
from tenants.models import Tenant


class Order(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE)
    status = models.CharField(max_length=10)


class Country(models.Model):  # shared by every tenant
    code = models.CharField(max_length=2)
"""


def make_app(root: Path, views: str) -> Path:
    (root / "shop").mkdir()
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "models.py").write_text(MODELS)
    (root / "shop" / "views.py").write_text(views)
    return root


def tenancy(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lint.tenancy", "--root", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def view(body: str) -> str:
    return f"from shop.models import Country, Order\n\n\ndef orders(request):\n{body}"


def test_it_finds_no_unscoped_query_in_this_code() -> None:
    assert check_tree(ROOT) == []
    assert len(list(checked_modules(ROOT))) >= 10  # the views and APIs are really looked at


def test_it_fails_a_planted_untenanted_query(tmp_path: Path) -> None:
    make_app(tmp_path, view('    return Order.objects.filter(status="new").order_by("pk")\n'))
    result = tenancy(tmp_path)
    assert result.returncode == 1
    assert "shop/views.py:5: Order.objects.filter().order_by() queries the tenant-owned" in (
        result.stdout
    )


def test_it_passes_queries_that_name_their_tenant(tmp_path: Path) -> None:
    make_app(
        tmp_path,
        view(
            '    Order.objects.filter(tenant=request.tenant, status="new").order_by("pk")\n'
            "    Order.objects.get(tenant_id=request.tenant.pk, pk=1)\n"
            '    Order.objects.filter(status="new").filter(tenant=request.tenant)\n'
            "    Country.objects.all()  # not tenant-owned\n"
            "    return request.tenant.order_set.all()\n"
        ),
    )
    result = tenancy(tmp_path)
    assert result.returncode == 0, result.stdout


def test_it_fails_a_shortcut_without_tenant(tmp_path: Path) -> None:
    make_app(
        tmp_path,
        "from django.shortcuts import get_object_or_404\nfrom shop.models import Order\n\n\n"
        "def order(request, pk):\n    return get_object_or_404(Order, pk=pk)\n",
    )
    result = tenancy(tmp_path)
    assert result.returncode == 1
    assert "get_object_or_404(Order)" in result.stdout


def test_it_accepts_an_exception_only_with_its_reason(tmp_path: Path) -> None:
    make_app(
        tmp_path,
        view(
            "    # tenancy: ok (counts every tenant's orders for the operator's status page)\n"
            "    total = Order.objects.count()\n"
            "    return Order.objects.all()  # tenancy: ok\n"
        ),
    )
    result = tenancy(tmp_path)
    assert result.returncode == 1
    assert "views.py:6:" not in result.stdout
    assert "views.py:7: Order.objects.all(): say why in the exception" in result.stdout


def test_it_fails_an_untenanted_query_planted_in_an_apps_views() -> None:
    source = (
        "from audience.models import Contact as Person\n\n\n"
        "def contact(request, email):\n"
        "    return Person.objects.filter(email=email).first()\n"
    )
    [violation] = check_source(source, Path("audience/views.py"), "audience", tenant_models(ROOT))
    assert violation.line == 5
    assert "audience.Contact" in violation.message


def test_it_knows_the_tenant_owned_models_django_knows() -> None:
    from_django = {
        f"{model._meta.app_label}.{model.__name__}"
        for model in apps.get_models()
        if (ROOT / model._meta.app_label / "models.py").exists()
        and any(field.name == "tenant" for field in model._meta.get_fields())
    }
    from_source = {f"{app}.{name}" for app, names in tenant_models(ROOT).items() for name in names}
    assert from_source == from_django
    assert "audience.Contact" in from_source


@pytest.mark.parametrize(
    "module", ["audience/views.py", "messaging/push_views.py", "tenants/api.py"]
)
def test_it_checks_views_and_api_modules(module: str) -> None:
    assert ROOT / module in set(checked_modules(ROOT))
