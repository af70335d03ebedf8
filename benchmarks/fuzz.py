"""The long fuzz run: every test of tests/fuzz under the `long` Hypothesis profile (thousands of examples a test,
random inputs from a seed), then the examples tried and the failures found per test, per target and in total.

    .venv/bin/python benchmarks/fuzz.py                       # 1000 examples a test, seed 0, 10 minutes at most
    .venv/bin/python benchmarks/fuzz.py --examples 500 --seed 3 --targets audio image

Each target (a test file) runs in its own pytest, one after the other, under what is left of --budget-min, so a
slow target cannot take the others' counts with it. A target that runs out of time is reported as such. An
example that hangs ends its pytest: its input and stacks are in tests/fuzz/properties.py's HANG_LOG.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "tests" / "fuzz"
PHASE = re.compile(r"- during (\w+) phase")
COUNTS = re.compile(r"- (\d+) passing, (\d+) failing, and (\d+) invalid test cases")
DISTINCT = re.compile(r"Found (\d+) distinct errors?")


@dataclass
class TestCounts:
    """One property test's Hypothesis statistics: examples per phase and the distinct errors it found."""

    name: str
    passing: dict[str, int] = field(default_factory=dict)  # phase -> examples that passed
    failing: dict[str, int] = field(default_factory=dict)  # phase -> examples that failed
    invalid: dict[str, int] = field(default_factory=dict)
    distinct_errors: int = 0
    outcome: str = "?"  # pytest's: passed, failed, error, skipped, or "timed out"

    @property
    def tried(self) -> int:
        """Examples run in the generate and explicit phases (shrinking re-runs found failures smaller)."""
        return sum(self.passing.get(p, 0) + self.failing.get(p, 0) for p in ("explicit", "reuse", "generate"))


def parse_statistics(text: str) -> dict[str, TestCounts]:
    """pytest --hypothesis-show-statistics output -> counts per test id (`tests/fuzz/x.py::test_y`)."""
    tests: dict[str, TestCounts] = {}
    current, phase = None, None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.endswith(":") and "::" in stripped and not stripped.startswith("-"):
            current = tests.setdefault(stripped[:-1], TestCounts(stripped[:-1]))
            phase = None
        elif current is not None and (match := PHASE.search(stripped)):
            phase = match.group(1)
        elif current is not None and phase and (match := COUNTS.search(stripped)):
            passing, failing, invalid = map(int, match.groups())
            current.passing[phase] = current.passing.get(phase, 0) + passing
            current.failing[phase] = current.failing.get(phase, 0) + failing
            current.invalid[phase] = current.invalid.get(phase, 0) + invalid
        elif current is not None and (match := DISTINCT.search(stripped)):
            current.distinct_errors += int(match.group(1))
    return tests


def outcomes(junit_xml: Path) -> dict[str, str]:
    """Test id -> passed / failed / error / skipped, from pytest's JUnit XML."""
    result = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        path = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
        kind = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        result[f"{path}::{case.get('name')}"] = {"failure": "failed"}.get(kind, kind)
    return result


def run_target(target: Path, examples: int, seed: int, timeout_s: float) -> dict[str, TestCounts]:
    env = {**os.environ, "HYPOTHESIS_PROFILE": "long", "FUZZ_EXAMPLES": str(examples), "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-q", "-m", "not slow", "-p", "no:cacheprovider", "-W", "ignore",
                   "--hypothesis-show-statistics", f"--hypothesis-seed={seed}", f"--junitxml={junit}",
                   str(target.relative_to(ROOT))]
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            partial = parse_statistics(e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or ""))
            for counts in partial.values():
                counts.outcome = "timed out"
            return partial or {str(target.relative_to(ROOT)): TestCounts(str(target.relative_to(ROOT)),
                                                                          outcome="timed out")}
        tests = parse_statistics(done.stdout)
        if junit.exists():
            for test_id, outcome in outcomes(junit).items():
                tests.setdefault(test_id, TestCounts(test_id)).outcome = outcome
        if done.returncode not in (0, 1):  # 1: tests failed; anything else: pytest itself did not finish
            print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        return tests


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--examples", type=int, default=1000, help="examples a property test (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed, so a run can be repeated (default: 0)")
    p.add_argument("--budget-min", type=float, default=10.0, help="wall-clock minutes for all targets (default: 10)")
    p.add_argument("--targets", nargs="*", help="test file names without test_fuzz_ (default: every one)")
    args = p.parse_args()

    files = sorted(FUZZ_DIR.glob("test_fuzz_*.py"))
    if args.targets:
        files = [f for f in files if f.stem.removeprefix("test_fuzz_") in args.targets]
    deadline = time.monotonic() + args.budget_min * 60
    total_tried = total_failing = total_errors = 0
    print(f"{args.examples} examples a test, seed {args.seed}, {args.budget_min:g} min budget")
    print(f"{'property test':<56} {'examples':>8} {'failing':>7} {'errors':>6}  outcome")
    for target in files:
        left = deadline - time.monotonic()
        if left < 5:
            print(f"{target.stem:<56} not run: out of time")
            continue
        start = time.monotonic()
        tests = run_target(target, args.examples, args.seed, left)
        properties = sorted((t for t in tests.values() if t.passing or t.failing), key=lambda t: t.name)
        plain = [t for t in tests.values() if not (t.passing or t.failing)]  # regression tests, bombs: no statistics
        tried = sum(t.tried for t in properties)
        failing = sum(t.failing.get("generate", 0) + t.failing.get("explicit", 0) for t in properties)
        errors = sum(t.distinct_errors for t in properties)
        for test in properties:
            fails = test.failing.get("generate", 0) + test.failing.get("explicit", 0)
            name = test.name.split("/")[-1]
            print(f"{name:<56} {test.tried:>8} {fails:>7} {test.distinct_errors:>6}  {test.outcome}")
        passed = sum(t.outcome == "passed" for t in plain)
        not_passed = ", ".join(f"{t.name.split('::')[-1]} {t.outcome}" for t in plain if t.outcome != "passed")
        print(f"  {target.stem}: {tried} examples, {failing} failing, {errors} distinct errors; {passed} of "
              f"{len(plain)} plain tests passed{' (' + not_passed + ')' if not_passed else ''}; "
              f"{time.monotonic() - start:.0f} s")
        total_tried, total_failing, total_errors = total_tried + tried, total_failing + failing, total_errors + errors
    print(f"total: {total_tried} examples, {total_failing} failing, {total_errors} distinct errors")


if __name__ == "__main__":
    main()
