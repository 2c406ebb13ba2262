"""benchmarks.check: the figures that got worse between two benchmark runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import check


def _rclone_run(get_rate: float, p99: float, failed: int = 0) -> dict[str, object]:
    """The shape ``compare_rclone --json`` writes."""
    return {
        "options": {"duration": 10.0},
        "metrics": [
            {"metric": "get4k_rate", "label": "4 KiB GET (ops/s)", "gateway": get_rate,
             "rclone": 4550.0, "ratio": "0.66x", "target": ">= 1.0x", "met": "no"},
            {"metric": "get4k_p99", "label": "4 KiB GET p99 (ms)", "gateway": p99,
             "rclone": 9.0, "ratio": "", "target": "", "met": None},
        ],
        "failed_requests": {"gateway": failed},
        "cpu_busy": {"gateway": {"4 KiB GET": {"server": 0.9}}},
        "notes": ["load average 1.0"],
    }  # fmt: skip


def _write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_a_slower_rate_beyond_the_margin_is_a_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _write(tmp_path, "before.json", _rclone_run(3000.0, 9.0))
    after = _write(tmp_path, "after.json", _rclone_run(2400.0, 9.0))
    assert check.main([str(before), str(after)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION metrics.get4k_rate.gateway: 3000 -> 2400 (worse 20.0%)" in out
    assert "rclone" not in out  # the other server's figures did not move


def test_within_the_margin_or_better_passes(tmp_path: Path) -> None:
    before = _write(tmp_path, "before.json", _rclone_run(3000.0, 9.0))
    assert check.main([str(before), str(_write(tmp_path, "a.json", _rclone_run(2800.0, 9.5)))]) == 0
    assert check.main([str(before), str(_write(tmp_path, "b.json", _rclone_run(4000.0, 5.0)))]) == 0
    worse = _write(tmp_path, "c.json", _rclone_run(2800.0, 9.5))
    assert check.main([str(before), str(worse), "--margin", "5"]) == 1


def test_latency_and_failures_are_better_lower(tmp_path: Path) -> None:
    changes = check.compare(_rclone_run(3000.0, 9.0), _rclone_run(3000.0, 12.0, failed=1))
    worse = {change.name for change in check.regressions(changes, 10.0)}
    assert worse == {"metrics.get4k_p99.gateway", "failed_requests.gateway"}


def test_run_options_notes_and_busy_shares_are_not_figures() -> None:
    names = {name for name, _ in check.figures(_rclone_run(1.0, 1.0))}
    assert names == {
        "metrics.get4k_rate.gateway",
        "metrics.get4k_rate.rclone",
        "metrics.get4k_p99.gateway",
        "metrics.get4k_p99.rclone",
        "failed_requests.gateway",
    }


def test_backends_documents_compare_by_backend_and_path() -> None:
    def run(get64m: float, cpu: float) -> dict[str, object]:
        return {
            "options": {"repeats": 3},
            "backends": {
                "azure": {
                    "status": "ok",
                    "direct_means": "Get Blob",
                    "gateway": {"get64m": get64m},
                    "direct": {"get64m": 900.0},
                    "server_cpu_ms_per_op": {"get64m": cpu},
                }
            },
        }

    changes = check.compare(run(73.0, 900.0), run(400.0, 200.0))
    assert {c.name: round(c.worse) for c in changes} == {
        "backends.azure.gateway.get64m": -448,
        "backends.azure.direct.get64m": 0,
        "backends.azure.server_cpu_ms_per_op.get64m": -78,
    }


def test_files_sharing_no_figure_cannot_be_compared(tmp_path: Path) -> None:
    before = _write(tmp_path, "before.json", {"cases": {"put": {"mibs": 1.0}}})
    after = _write(tmp_path, "after.json", {"digest_only_mib_s": 1.0})
    assert check.main([str(before), str(after)]) == 2
    with pytest.raises(SystemExit, match=r"not-there\.json"):
        check.main([str(before), str(tmp_path / "not-there.json")])
