"""docs/generate_architecture.py loaded as a module (it is a script, not part of the package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "generate_architecture.py"


def load_generator() -> ModuleType:
    """The generator of docs/architecture.md: its module reader, import graph and page sections."""
    spec = importlib.util.spec_from_file_location("generate_architecture", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
