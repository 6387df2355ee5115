#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from core import rls

    # Commands and migrations are operators' tools and span tenants: the system scope of
    # row-level security (core/rls.py). `runserver`'s requests still start with none.
    rls.process_default_set(rls.SYSTEM)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
