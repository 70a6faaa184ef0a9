"""Benchmark runner: ``make bench``. Runs every ``bench_*.py`` beside this file.

Each module has ``CASES``: a list of ``(name, baseline_name, run)`` where
``run()`` returns ``(ours_per_s, baseline_per_s, unit)``, both measured in the
same run on the same machine. The table prints both rates and their ratio.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_cases() -> list[tuple[str, str, object]]:
    cases = []
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.extend(module.CASES)
    return cases


def main() -> int:
    sys.path.insert(0, str(HERE.parent.parent))
    cases = load_cases()
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()}")
    header = f"{'benchmark':<38} {'ours':>12} {'baseline':>12} {'ratio':>7}  unit   baseline"
    print(header)
    print("-" * len(header))
    for name, baseline, run in cases:
        ours, base, unit = run()  # type: ignore[operator]
        ratio = ours / base if base else float("nan")
        print(f"{name:<38} {ours:>12,.0f} {base:>12,.0f} {ratio:>7.2f}  {unit:<6} {baseline}")
    if not cases:
        print("(no benchmarks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
