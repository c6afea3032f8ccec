"""scripts/benchmark.py --quick runs end to end and writes its JSON (a smoke test: no speed is asserted)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_quick_writes_every_section(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["quick"] is True
    for key in ("throughput", "gymnasium_vector", "gymnasium_single", "time_to_solve", "jax_cartpole_v0", "jax_cartpole_v0_many",
                "numpy_reference"):
        assert key in result, key
    for row in result["throughput"]:
        assert row["env_steps"] > 0
        assert row["env_steps_per_s"]["median"] > 0 and row["compile_s"] > 0
    assert {row["variant"] for row in result["throughput"]} == {"plain", "options", "runner", "single", "rates",
                                                                 "physics"}
    assert set(result["ratio_plain_vs_options"]) == set(result["ratio_physics_vs_plain"]) == {"1x16"}
    assert {"cold", "warm"} <= set(result["time_to_solve"]["1"])
    assert result["jax_cartpole_v0_many"]["args"][-1] == "4"
    sweep = result["sweep_vs_separate"]  # one sweep of 2 settings against 2 separate runs
    assert sweep["settings"] == 2 and "--lr" in sweep["values"]
    assert all(sweep[kind]["wall_s"]["median"] > 0 for kind in ("sweep", "separate"))
    assert len(sweep["separate"]["runs"][0]["runs"]) == 2
    assert "throughput" in proc.stdout and "wrote" in proc.stdout
