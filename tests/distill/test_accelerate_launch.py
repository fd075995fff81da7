import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml


def test_two_cpu_processes_under_accelerate_launch(tiny_pipeline_dir, tmp_path):
    cfg = {
        "steps": 2,
        "trajectory_guidance": {"iterations": 2, "num_prompts": 8, "teacher_steps": 4, "batch": 2},
        "distribution_matching": {"iterations": 2, "critic_ratio": 1, "batch": 2},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        accelerate,
        "launch",
        "--cpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "fewstep.cli",
        "distill",
        str(tiny_pipeline_dir),
        "-o",
        str(tmp_path / "student"),
        "--config",
        str(tmp_path / "cfg.yaml"),
        "--no-progress",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads((tmp_path / "student" / "fewstep_student.json").read_text())
    assert info["steps"] == 2
    log = (tmp_path / ".student.work" / "losses.csv").read_text().splitlines()
    assert len(log) == 4  # written by rank 0 only
