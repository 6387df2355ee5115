from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from ops.supervisor import STATE_FILE_NAME, Supervisor, read_procfile


class Command(BaseCommand):
    help = (
        "Run every process of the Procfile (web, worker, beat) and restart one that dies, "
        "leaving the others running. What `make run` starts; stop it with Ctrl-C or SIGTERM."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--procfile", default=str(Path(settings.BASE_DIR) / "Procfile"))

    def handle(self, *args: Any, **options: Any) -> None:
        programs = read_procfile(Path(options["procfile"]))
        supervisor = Supervisor(programs, state_file=Path(settings.VAR_DIR) / STATE_FILE_NAME)
        supervisor.run()
