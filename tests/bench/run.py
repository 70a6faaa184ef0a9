"""Benchmark runner: ``make bench``. Runs every ``bench_*.py`` beside this file.

Each module has ``CASES``: a list of ``(name, run)``; ``run()`` returns rows
``(metric, ours, floor, unit, floor_name)``, both figures measured in the same
run on the same machine. The table prints both and their ratio.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_cases() -> list[tuple[str, object]]:
    cases = []
    for path in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases.extend(module.CASES)
    return cases


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent.parent))
    wanted = argv[1:]
    cases = [c for c in load_cases() if not wanted or any(w in c[0] for w in wanted)]
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()}")
    header = (
        f"{'benchmark':<24} {'metric':<26} {'ours':>11} {'floor':>11} {'ratio':>6}  unit   floor"
    )
    print(header)
    print("-" * len(header))
    failed = []
    for name, run in cases:
        started = time.perf_counter()
        try:
            for metric, ours, floor, unit, floor_name in run():  # type: ignore[operator]
                ratio = ours / floor if floor else float("nan")
                print(
                    f"{name:<24} {metric:<26} {ours:>11,.1f} {floor:>11,.1f} {ratio:>6.2f}  "
                    f"{unit:<6} {floor_name}",
                    flush=True,
                )
        except Exception:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"{name:<24} FAILED:", flush=True)
            traceback.print_exc()
        print(f"{'':<24} ({time.perf_counter() - started:.1f} s)", flush=True)
    if not cases:
        print("(no benchmarks)")
    if failed:
        print(f"{len(failed)} benchmark(s) failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
