"""benchmarks/floor_bound.py: the per-score bound on a W8A8 step's floor, on synthetic cached results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROW = "openvino-cpu/int8/bf16/hoist/attn-int8"


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "floor_bound.py"), *args],
        capture_output=True, text=True, cwd=ROOT / "benchmarks", timeout=120,
    )  # fmt: skip


def _results(work: Path) -> Path:
    results = work / "1024" / "results"
    # 10 TOP per step, 2.56 TOP of it attention (1e10 scores of head dim 64); int8 peak 1 TOP/s
    machine = {
        "int8_peak_gops": 1000.0,
        "fp32_peak_gflops": 200.0,
        "flops": {"transformer_batch1": 10e12, "transformer_batch1_attention": 2.56e12},
    }
    # each profiled step: wall ms, the reference GEMM's GOP/s timed before it, the bundle's GEMM GOP and ms
    # (500 GOP/s: below the reference, so the reference is the step's peak)
    row = {"floor_pairs": [[16000.0, 1000.0, 500.0, 1000.0]] * 3 + [[15000.0, 1000.0, 500.0, 1000.0]] * 2,
           "attention_ms": 8000.0}  # fmt: skip
    _write(results / "machine.json", machine)
    _write(results / f"{ROW.replace('/', '-')}.json", row)
    return results


def test_bound_adds_the_per_score_cost_to_the_floor(tmp_path: Path):
    _results(tmp_path)
    fit = {"isa": "x", "int8": True, "fits": [
        {"tokens": 1357, "ns_per_score": 9.0, "gemm_gflops": 1.0},
        {"tokens": 4096, "ns_per_score": 0.5, "gemm_gflops": 600.0},  # nearest to 1024 px's 4429 joint tokens
    ]}  # fmt: skip
    _write(tmp_path / "fit.json", fit)
    out = _run("--resolution", "1024", "--fit", str(tmp_path / "fit.json"), "--work", str(tmp_path), "--rows", ROW,
               "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    (r,) = json.loads(out.stdout.strip().splitlines()[-1])["rows"]
    assert r["joint_tokens"] == 4429 and r["fit_tokens"] == 4096
    assert abs(r["scores_g"] - 10.0) < 1e-9
    assert abs(r["score_s"] - 5.0) < 1e-9 and abs(r["floor_s"] - 10.0) < 1e-9
    assert abs(r["bound"] - 1.5) < 1e-9  # (10 s floor + 5 s of per-score work) / 10 s
    assert abs(r["measured"] - 1.6) < 1e-9 and r["measured_range"] == [1.5, 1.6]
    assert abs(r["score_share_of_attention"] - 5 / 8) < 1e-9


def test_missing_inputs_name_the_path(tmp_path: Path):
    _results(tmp_path)
    out = _run("--resolution", "1024", "--fit", str(tmp_path / "nope.json"), "--work", str(tmp_path))
    assert out.returncode != 0 and "nope.json" in out.stderr and "Traceback" not in out.stderr
    _write(tmp_path / "fit.json", {"fits": [{"tokens": 4429, "ns_per_score": 0.3}]})
    out = _run("--resolution", "512", "--fit", str(tmp_path / "fit.json"), "--work", str(tmp_path))
    assert out.returncode != 0 and "machine.json" in out.stderr and "Traceback" not in out.stderr
    _write(tmp_path / "flat.json", {"fits": []})
    out = _run("--resolution", "1024", "--fit", str(tmp_path / "flat.json"), "--work", str(tmp_path), "--rows", ROW)
    assert out.returncode != 0 and "--layouts" in out.stderr
