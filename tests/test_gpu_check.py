"""benchmarks/gpu_check.sh in its dry mode (the CPU parts: emulator build and kernel tests on the
emulator), run as the GPU machine would run it, from the repository root."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_mode_runs_the_cpu_parts_and_writes_json_and_log(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    r = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads((tmp_path / "out/gpu_check.json").read_text())
    assert report["dry"] is True
    assert [p["name"] for p in report["parts"]] == ["build", "emulator-tests"]
    log = (tmp_path / "out/gpu_check.log").read_text()
    for p in report["parts"]:
        # each part finished by itself (not stopped at its limit) and reports its time and limit
        assert p["rc"] == 0 and not p["timed_out"] and {"seconds", "limit_s"} <= set(p), (p, log[-3000:])
    assert "passed" in log and "=== emulator-tests: exit 0" in log
