"""URL names follow one scheme (docs/architecture.md, "URL names"), so a grep for a name finds
the view it routes to: snake_case, no namespaces of our own, one name per route, a function
view's routes named after the function, a REST view's after its class."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, get_resolver

PROJECT_APPS = {
    "accounts",
    "analytics",
    "audience",
    "campaigns",
    "config",
    "core",
    "messaging",
    "ops",
    "personalisation",
    "segments",
    "tenants",
    "webhooks",
}


def _routes(patterns: list, namespace: str = "", prefix: str = "") -> list[tuple]:
    found = []
    for p in patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            found += _routes(p.url_patterns, ns, prefix + str(p.pattern))
        else:
            found.append((namespace, prefix + str(p.pattern), p))
    return found


def _ours(pattern: URLPattern) -> bool:
    return pattern.callback.__module__.split(".")[0] in PROJECT_APPS


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


ROUTES = _routes(get_resolver().url_patterns)
OURS = [(ns, route, p) for ns, route, p in ROUTES if _ours(p)]


def test_it_names_every_route_of_ours_once_without_a_namespace() -> None:
    assert OURS
    assert [route for ns, route, p in OURS if ns or not p.name] == []
    names = [p.name for _, _, p in OURS]
    assert sorted({n for n in names if names.count(n) > 1}) == []


def test_it_writes_every_name_in_snake_case() -> None:
    # Django's auth views and the schema views are not ours, but their names are global too.
    names = [p.name for ns, _, p in ROUTES if not ns and p.name]
    assert [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*", n)] == []


def test_it_names_a_function_views_routes_after_the_function() -> None:
    wrong = [
        (p.name, p.callback.__name__)
        for _, _, p in OURS
        if not hasattr(p.callback, "view_class")
        and p.name != p.callback.__name__
        and not p.name.startswith(f"{p.callback.__name__}_")
    ]
    assert wrong == []


def test_it_names_a_rest_views_route_after_its_class() -> None:
    api_views = [p for _, _, p in OURS if getattr(p.callback, "view_class", None)]
    api_views = [p for p in api_views if p.callback.view_class.__name__.endswith("API")]
    assert len(api_views) > 10
    wrong = [
        (p.name, p.callback.view_class.__name__)
        for p in api_views
        if p.name != f"api_{_snake(p.callback.view_class.__name__.removesuffix('API'))}"
    ]
    assert wrong == []
