"""Imports go one way: multimodal -> tasks -> encoders. Parsed from the source, so no import can hide."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("encoders", "tasks", "multimodal")
ALLOWED = {"encoders": set(), "tasks": {"encoders"}, "multimodal": {"tasks", "encoders"}}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES}
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_one_way(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no Python files"
    bad = {
        str(f.relative_to(ROOT)): sorted(imported - ALLOWED[package] - {package})
        for f in files
        if (imported := imported_packages(f)) - ALLOWED[package] - {package}
    }
    assert not bad, f"{package} may import only {sorted(ALLOWED[package]) or 'nothing of ours'}: {bad}"


def test_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom multimodal.model import X\nimport tasks.thing\n")
    assert imported_packages(bad) == {"multimodal", "tasks"}
