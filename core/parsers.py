"""The REST API's JSON parser: orjson and the storable checks of the browser edge
(core/body.py), so that the API refuses what the database cannot store with a 400 naming the
field. DRF's own parser (the standard library's json) lets unpaired surrogates, 1e999 (infinity),
integers of any size and nesting up to the interpreter's recursion limit through."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers

from core.bad_request import BadRequest
from core.body import json_loads


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        if stream is None:
            return None
        raw = stream.read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            return json_loads(raw)
        except BadRequest as exc:
            if exc.field:
                raise exceptions.ValidationError({exc.field: [exc.message]}) from None
            raise exceptions.ParseError(exc.message) from None
