"""Compare two benchmark results and name every figure that got worse by more than a margin.

Each benchmark here writes its figures as JSON (``--json``): ``compare_rclone``, ``backends``,
``validation_cost`` and ``sse_throughput``. Keep the JSON of a run; after a change, run the
same benchmark again and compare::

    .venv/bin/python -m benchmarks.compare_rclone --json > before.json
    # ... change the code ...
    .venv/bin/python -m benchmarks.compare_rclone --json > after.json
    .venv/bin/python -m benchmarks.check before.json after.json [--margin 10] [--all]

Every number both files hold at the same place is a figure; its name is that place
(``metrics.get4k_rate.gateway``, ``backends.azure.gateway.get64m``). A figure whose name
says it is a cost (latency, seconds, CPU, memory, overhead, failures) is better lower; any
other (ops/s, MiB/s, ratios) is better higher. The exit status is 1 when any figure got
worse by more than ``--margin`` percent (a count of failures by any amount), else 0; 2 for
files that cannot be compared. Run options and notes are not figures. This is a tool for
people, not a timed test: the figures of one machine move with its load.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Parts of a document that describe the run rather than measure it (``cpu_busy`` is a
#: share of the time, which rises with throughput: the per-operation CPU figures measure cost).
_NOT_FIGURES = frozenset(
    {"options", "notes", "artifact", "direct_means", "status", "met", "cpu_busy"}
)
#: A name with one of these words is a cost: lower is better.
_COSTS = re.compile(r"p50|p99|latency|_ms|seconds|cpu|rss|memory|peak|overhead|fail")


@dataclass(frozen=True)
class Change:
    """One figure in both runs; ``worse`` is how much worse it got in percent (< 0: better)."""

    name: str
    before: float
    after: float
    lower_is_better: bool

    @property
    def worse(self) -> float:
        if self.before == self.after:
            return 0.0
        if self.before == 0:
            return float("inf") if self._got_worse() else float("-inf")
        change = (self.after - self.before) / abs(self.before) * 100
        return change if self.lower_is_better else -change

    def _got_worse(self) -> bool:
        return (self.after > self.before) == self.lower_is_better

    def describe(self) -> str:
        word = "worse" if self._got_worse() else "better"
        amount = "" if abs(self.worse) == float("inf") else f" {abs(self.worse):.1f}%"
        return f"{self.name}: {self.before:g} -> {self.after:g} ({word}{amount})"


def figures(document: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """(name, value) of every number in ``document`` that measures something.

    A list of rows naming themselves (``{"metric": ..., ...}``, as ``compare_rclone``
    writes) is read as a mapping from each row's name."""
    if isinstance(document, bool) or document is None:
        return
    if isinstance(document, int | float):
        yield path, float(document)
    elif isinstance(document, dict):
        for key, value in document.items():
            if key not in _NOT_FIGURES:
                yield from figures(value, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            name = value.get("metric") if isinstance(value, dict) else None
            yield from figures(value, f"{path}.{name if name else index}")


def compare(before: Any, after: Any) -> list[Change]:
    """The figures both documents hold, in ``after``'s order."""
    old = dict(figures(before))
    changes = []
    for name, value in figures(after):
        if name in old and not name.endswith(".metric"):
            lower = _COSTS.search(name.lower()) is not None
            changes.append(Change(name, old[name], value, lower))
    return changes


def regressions(changes: Sequence[Change], margin: float) -> list[Change]:
    """The changes worse by more than ``margin`` percent; a failure count by any amount."""
    return [
        change
        for change in changes
        if change.worse > margin or ("fail" in change.name and change.after > change.before)
    ]


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SystemExit(f"benchmarks.check: {path}: {error}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks.check",
        description="Name the figures of a benchmark run that got worse than in an earlier run.",
    )
    parser.add_argument("before", type=Path, help="JSON of the earlier run")
    parser.add_argument("after", type=Path, help="JSON of the later run (same benchmark)")
    parser.add_argument(
        "--margin", type=float, default=10.0, help="percent a figure may get worse (10)"
    )
    parser.add_argument("--all", action="store_true", help="also list every other figure")
    args = parser.parse_args(argv)
    changes = compare(_load(args.before), _load(args.after))
    if not changes:
        print("benchmarks.check: the two files share no figure", file=sys.stderr)
        return 2
    worse = regressions(changes, args.margin)
    for change in worse:
        print(f"REGRESSION {change.describe()}")
    if args.all:
        for change in changes:
            if change not in worse:
                print(f"ok         {change.describe()}")
    print(
        f"{len(worse)} of {len(changes)} figures worse by more than {args.margin:g}%",
        file=sys.stderr,
    )
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
