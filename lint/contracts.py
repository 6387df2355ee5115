"""import-linter contract types of our own (registered under [tool.importlinter] contract_types).

import-linter's built-in `protected` contract lists the modules to protect; we want the opposite
default, so that a new module is private until someone decides otherwise: another app may import
only an app's public modules (`services`, `selectors`, `signals`, `models`, `registry`, and the
explicit exceptions the contract lists with their reasons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.application import contract_utils


@dataclass(frozen=True)
class IllegalImport:
    importer: str
    imported: str
    line_numbers: tuple[int, ...]


class PublicModulesContract(Contract):
    """Every root package is an app, except the `wiring` ones (which may import anything). A module
    of one app imported by a module of another app must be public: its first component under the
    app is one of `public`, the app is one of `open_packages` (all its modules are public), or the
    module is (inside) one of `public_exceptions`.

    Options:
        - wiring:            root packages that may import any module (config: settings, urls).
        - public:            names of an app's public modules (`services`, `selectors`, ...).
        - open_packages:     apps whose modules are all public (core, the shared floor). Optional;
                             an open package that does not exist yet is fine.
        - public_exceptions: further modules declared public, one reason each in a comment.
        - ignore_imports:    imports to overlook (import expressions, as in the built-in types).
        - unmatched_ignore_imports_alerting: "error" (default), "warn" or "none".
        - nested_apps:       root packages whose sub-packages are the apps (personalisation:
                             recommendations, search, placements, surveys and personas are one
                             layer of the design but five Django apps, each with its own models).
    """

    type_name = "public_modules"

    wiring = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField())
    open_packages = fields.ListField(subfield=fields.StringField(), required=False)
    public_exceptions = fields.ListField(subfield=fields.StringField(), required=False)
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(
        contract_utils.AlertLevel, default=contract_utils.AlertLevel.ERROR
    )
    nested_apps = fields.ListField(subfield=fields.StringField(), required=False)

    def _app(self, module: str) -> str:
        parts = module.split(".")
        if parts[0] in cast(list[str], self.nested_apps or []) and len(parts) > 1:
            return ".".join(parts[:2])
        return parts[0]

    def _is_public(self, module: str) -> bool:
        app = self._app(module)
        rest = module[len(app) + 1 :]
        if not rest or app in cast(list[str], self.open_packages or []):
            return True
        if rest.split(".", 1)[0] in cast(list[str], self.public):
            return True
        return any(
            module == exception or module.startswith(exception + ".")
            for exception in cast(list[str], self.public_exceptions or [])
        )

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]  # fields are descriptors
            unmatched_alerting=self.unmatched_ignore_imports_alerting,  # type: ignore[arg-type]
        )
        wiring = set(cast(list[str], self.wiring))
        illegal: list[IllegalImport] = []
        for imported in sorted(graph.modules):
            app = self._app(imported)
            if graph.is_module_squashed(imported) or self._is_public(imported):
                continue  # squashed: an external package, not ours to judge
            for importer in sorted(graph.find_modules_that_directly_import(imported)):
                importer_app = self._app(importer)
                if importer_app == app or importer_app.split(".", 1)[0] in wiring:
                    continue
                details = graph.get_import_details(importer=importer, imported=imported)
                lines = tuple(detail["line_number"] for detail in details)
                illegal.append(IllegalImport(importer, imported, lines))
        return ContractCheck(
            kept=not illegal,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"illegal_imports": illegal},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        illegal: list[IllegalImport] = check.metadata["illegal_imports"]
        output.print_error("Imports of another app's private modules:", bold=False)
        output.new_line()
        for link in illegal:
            lines = ", ".join(map(str, link.line_numbers))
            output.print_error(f"- {link.importer} -> {link.imported} (l.{lines})", bold=False)
        output.new_line()
        output.print(
            "Import the app's services, selectors, signals, models or registry instead (expose"
            " what you need there), or move a helper that is not a domain into core.",
        )
