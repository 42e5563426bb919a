"""More `feereg` commands, one module per subject.

Each module here exposes `COMMANDS`, a list of click commands or groups; `feereg.cli`
registers them all, so a new subject adds a module and touches nothing else.
"""
from __future__ import annotations

import importlib
import pkgutil


def all_commands() -> list:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "COMMANDS", []))
    return found
