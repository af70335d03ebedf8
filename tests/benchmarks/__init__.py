"""Tests of the benchmark scripts' own logic (the scripts live in benchmarks/, outside any package)."""

import importlib.util
import sys
from types import ModuleType

from ..conftest import ROOT


def load_benchmark(name: str) -> ModuleType:
    """Import benchmarks/<name>.py as its script run would: its sibling modules importable, itself in
    sys.modules (dataclasses look their module up there)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
