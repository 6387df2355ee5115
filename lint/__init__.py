"""Wayfarer's own lint checks (run by `make lint`): the import-linter contract type that keeps an
app's private modules private, and the tenancy lint over views and API modules. Tooling, not an
app: nothing in the product imports it."""
