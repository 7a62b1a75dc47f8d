"""Markdown tables for benchmarks/RESULTS.md from the test suite's JUnit XML.

    bash tests/run.sh                    # writes benchmarks/out/tests/junit.xml
    python benchmarks/slowest_tests.py benchmarks/out/tests/junit.xml [--top 25]

Prints the session's wall time, the slowest tests and the time per test module. A test's
time is its setup, call and teardown (pytest's default junit_duration_report), so a
session fixture's build is counted in the first test that uses it; under `pytest -n 2`
the tests of the two workers overlap, so their times add up to more than the wall time.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

from beatgrid.provenance import machine_description


def test_times(junit_xml: Path) -> tuple[float, list[tuple[str, float, str]]]:
    """(session wall time s, [(test id, time s, outcome)]) from a pytest JUnit XML file."""
    root = ET.parse(junit_xml).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    tests = []
    for case in suite.iter("testcase"):
        parts = case.get("classname", "").split(".")
        name = case.get("name")
        if parts[-1][:1].isupper():  # a test class: tests.test_x.TestY -> tests/test_x.py::TestY::name
            name = f"{parts.pop()}::{name}"
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        tests.append((f"{'/'.join(parts)}.py::{name}", float(case.get("time", 0.0)), outcome))
    return float(suite.get("time", 0.0)), tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("junit_xml", type=Path, help="pytest --junitxml output")
    parser.add_argument("--top", type=int, default=25, help="how many of the slowest tests to list")
    args = parser.parse_args()
    wall_s, tests = test_times(args.junit_xml)
    outcomes = defaultdict(int)
    per_module: dict[str, list[float]] = defaultdict(list)
    for test_id, seconds, outcome in tests:
        outcomes[outcome] += 1
        per_module[test_id.split("::")[0]].append(seconds)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    print(f"Machine: {machine_description()}\n")
    print(f"Session wall time {wall_s:.0f} s ({wall_s / 60:.1f} min); {len(tests)} tests ({counts}); "
          f"sum of test times {sum(t for _, t, _ in tests):.0f} s.\n")
    print("| slowest tests (setup + call + teardown) | s | outcome |\n|---|---:|---|")
    for test_id, seconds, outcome in sorted(tests, key=lambda t: -t[1])[: args.top]:
        print(f"| `{test_id}` | {seconds:.1f} | {outcome} |")
    print("\n| module | tests | s |\n|---|---:|---:|")
    for module, times in sorted(per_module.items(), key=lambda kv: -sum(kv[1])):
        print(f"| `{module}` | {len(times)} | {sum(times):.1f} |")


if __name__ == "__main__":
    main()
