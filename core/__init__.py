"""The floor: what every app needs and no app owns.

Pagination, the REST error shape, the browser edge's JSON bodies, errors and CORS, UUID parsing,
form-error helpers and raw database cursors. Domain apps import it; it imports no Wayfarer app
(only Django, DRF, the standard library and third-party packages), so it can sit under all of
them. Code that knows a domain's tables or rules belongs in that domain's app, not here.
"""
