"""Package attributes loaded on first use (PEP 562).

A package ``__init__`` that re-exports its modules' names would import them
all whenever any one module of the package is imported (``jobs.imaging.types``
goes through ``jobs/imaging/__init__.py``). With :func:`exports` the package
stays cheap: a name is imported from its module when someone asks for it.

>>> getattr_ = exports("jobs.imaging", {"Limits": "types"})
>>> getattr_("Limits").__name__
'Limits'
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def exports(package: str, homes: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``homes`` maps each name to its submodule."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        setattr(sys.modules[package], name, value)  # asked once
        return value

    return __getattr__
