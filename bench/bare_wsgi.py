"""The baseline of bench/ingest.py's /v1/track figure: a WSGI app that does nothing but read the
request and answer what Wayfarer answers, served by the same gunicorn with the same settings and
driven by the same client. What a Python web worker can do at all on this machine."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

BODY = b'{"success": true}'


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    environ["wsgi.input"].read()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))]
    )
    return [BODY]
