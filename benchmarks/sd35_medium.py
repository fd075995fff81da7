"""SD3.5-Medium at its real size (random weights): fewstep bundles vs optimum-intel and diffusers.

    python benchmarks/sd35_medium.py --resolution 256 [--json] [--only diffusers openvino-cpu/fp32 ...]

Every measurement runs in its own subprocess (peak RSS is that process's VmHWM; a 24 GiB
machine cannot hold two real-size models at once) and is cached as JSON under
`--work/<resolution>/results/`, so an interrupted benchmark resumes where it stopped.
Rows:

- `machine`: fp32 and int8 GEMM peaks of this CPU (OpenVINO and torch, transformer-sized
  GEMMs) and the FLOP count of every component (torch's FlopCounterMode on the meta device);
- `t5`: T5-XXL (4.76 B) at 256 tokens, timed at 1 and 4 layers (median of 7) and extrapolated to 24 layers
  (it does not fit in RAM beside the rest): torch fp32 (added to the diffusers rows), OpenVINO
  fp32 and int8 weights (added to the optimum rows in their weight format, and to fewstep's
  "T5 kept" rows: fp32 beside fp32/fp16-weights transformers, int8 weights otherwise);
- `diffusers`: `StableDiffusion3Pipeline` eager fp32 with CFG (guidance 4.5): a few steps
  timed, the 28- and 4-step totals = encoders + steps x median step + VAE decode;
- `optimum/<mode>`: optimum-intel's `OVStableDiffusion3Pipeline` (its own virtual environment,
  created here) at 4 steps, guidance 1 (a distilled student); modes fp32, int8 and int4 weights,
  hybrid int8 and static int8 (W8A8), the calibrated two on fewstep's calibration prompts
  (same count, same sampling): `benchmarks/sd35_optimum_peer.py`;
- `<target>/<precision>[/no-t5][/vae-int8]`: fewstep bundles at 4 steps, guidance 1, transformer
  in that precision (weight-only rows: the CLIP encoders too; int8: static W8A8 transformer and
  VAE decoder, int8-weights CLIP; VAE fp32 otherwise). The model has no T5: plain rows keep the
  full 77 + 256-token text slot and get T5-XXL's time added ("T5 kept"); `no-t5` rows collapse
  the zero slot to one null token (exact) and run without T5; `vae-int8` adds a calibrated static
  int8 VAE decoder. Built with gates off (`fewstep gate` checks them on a machine with room for
  the torch reference) and deleted after measuring unless --keep.

`--reprofile` runs the op profile again for cached rows whose bundles were kept (`--keep`): it
times the reference int8 GEMM right before each profiled step, in the same process, for
the floor column that host load skews least.

The last table is the ratio table; with --json the last line holds the issue's four ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from optimum_client import optimum_python  # one optimum-intel venv recipe for both benchmarks
from sd35_machine import w_machine, w_t5
from sd35_report import report
from sd35_workers import (
    FEWSTEP_ROWS,
    OPTIMUM_MODES,
    PROMPT,
    ROOT,
    STEPS,
    VAE_CALIBRATION_PROMPTS,
    peer_model,
    w_build,
    w_diffusers,
    w_model,
    w_profile,
    w_run,
    write_json,
)

WORKERS = {
    "model": w_model,
    "machine": w_machine,
    "t5": w_t5,
    "diffusers": w_diffusers,
    "build": w_build,
    "run": w_run,
    "profile": w_profile,
}


def rows_of(only: list[str] | None) -> list[str]:
    rows = ["model", "machine", "t5", "diffusers", *(f"optimum/{m}" for m in OPTIMUM_MODES)]
    rows += FEWSTEP_ROWS
    if not only:
        return rows
    unknown = sorted(set(only) - set(rows))
    if unknown:
        raise SystemExit(f"--only: unknown row(s) {unknown}; allowed: {', '.join(rows)}")
    return ["model", *[r for r in rows if r in only and r != "model"]]


def _sub(a, worker: str, row: str | None = None, timeout: float | None = None) -> dict | None:
    result = a.work / "results" / f".{worker}-{(row or worker).replace('/', '-')}.json"
    cmd = [sys.executable, __file__, "--worker", worker, "--resolution", str(a.resolution), "--work", str(a.root)]
    cmd += ["--result", str(result), "--repeats", str(a.repeats), "--teacher-steps", str(a.teacher_steps)]
    cmd += ["--tiny"] if a.tiny else []
    if row:
        cmd += ["--row", row]
    proc = subprocess.run(cmd, timeout=timeout)
    if proc.returncode or not result.exists():
        print(f"  {worker} {row or ''}: failed (exit {proc.returncode})", flush=True)
        return None
    data = json.loads(result.read_text())
    result.unlink()
    return data


def measure(a, row: str) -> dict | None:
    cache = a.work / "results" / f"{row.replace('/', '-')}.json"
    rebuild = row == "model" and not (a.model / "model_index.json").exists()  # deleted to free the disk
    if cache.exists() and not rebuild:
        data = json.loads(cache.read_text())
        bundle = a.work / "bundles" / row.replace("/", "-")
        if a.reprofile and row.startswith("openvino-cpu/") and bundle.exists():  # kept by --keep
            print(f"== {row}: op profile again", flush=True)
            data.update(_sub(a, "profile", row) or {})
            write_json(cache, data)
        return data
    print(f"== {row}", flush=True)
    start = time.perf_counter()
    if row in ("model", "machine", "t5", "diffusers"):
        if a.build_only and row != "model":
            return None
        data = _sub(a, row)
    elif row.startswith("optimum/"):
        if a.build_only and (a.work / "optimum" / row.split("/")[1] / "model_index.json").exists():
            return None
        py = optimum_python(a.root / "optimum-venv")
        peer_model(a)
        out = a.work / "results" / ".optimum.json"
        cmd = [str(py), str(ROOT / "benchmarks" / "sd35_optimum_peer.py"), "--model", str(a.work / "model-peer")]
        cmd += ["--mode", row.split("/")[1], "--resolution", str(a.resolution), "--steps", str(STEPS)]
        cmd += ["--export-dir", str(a.work / "optimum" / row.split("/")[1]), "--out", str(out)]
        cmd += ["--repeats", str(a.repeats), "--prompt", PROMPT] + (["--export-only"] if a.build_only else [])
        if row.split("/")[1].startswith("int8-"):  # calibrated: fewstep's calibration prompts, same count
            from fewstep.quantize.calibration import calibration_prompts
            from fewstep.quantize.config import Int8Config

            seed = Int8Config.model_fields["calibration_seed"].default  # fewstep's W8A8 rows use the default
            prompts = calibration_prompts(a.model, VAE_CALIBRATION_PROMPTS, seed)
            write_json(a.work / "results" / ".calibration-prompts.json", prompts)
            cmd += ["--calibration-prompts", str(a.work / "results" / ".calibration-prompts.json")]
        proc = subprocess.run(cmd)
        data = json.loads(out.read_text()) if proc.returncode == 0 and out.exists() else None
        if a.build_only:
            return None
        if data is not None and not a.keep:
            shutil.rmtree(a.work / "optimum" / row.split("/")[1], ignore_errors=True)
    else:
        record = a.work / "bundles" / f"{row.replace('/', '-')}.build.json"
        built = json.loads(record.read_text()) if record.exists() else _sub(a, "build", row)
        if built is not None:
            write_json(record, built)
        else:  # a failed build leaves its exports (GBs): free the disk for the next row
            shutil.rmtree(a.work / "tmp" / row.replace("/", "-"), ignore_errors=True)
        if a.build_only:
            return None
        data = None
        if built is not None:
            data = _sub(a, "run", row)
            if data is not None:
                data.update(built)
                if row.startswith("openvino-cpu/"):  # the attention share, from the op profile
                    data.update(_sub(a, "profile", row) or {})
        if not a.keep:
            shutil.rmtree(a.work / "bundles" / row.replace("/", "-"), ignore_errors=True)
            record.unlink(missing_ok=True)
    if data is None:
        return None
    data["wall_s"] = time.perf_counter() - start
    write_json(cache, data)
    return data


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, choices=(256, 512, 1024), default=256)
    ap.add_argument("--json", action="store_true", help="print the ratios as a JSON last line")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "sd35-medium-bench")
    ap.add_argument("--only", nargs="+", default=None, help="rows to measure (the model is always built)")
    ap.add_argument("--repeats", type=int, default=1, help="timed generations per bundle (after one warm-up)")
    ap.add_argument("--teacher-steps", type=int, default=3, help="diffusers steps timed (the first warms up)")
    ap.add_argument("--keep", action="store_true", help="keep bundles and optimum exports (GBs each)")
    ap.add_argument("--report-only", action="store_true", help="print the tables from cached results")
    ap.add_argument(
        "--build-only", action="store_true", help="only build the model, bundles and optimum exports (kept for later)"
    )
    ap.add_argument(
        "--reprofile", action="store_true", help="run the op profile again for cached rows whose bundles were kept"
    )
    ap.add_argument("--tiny", action="store_true", help="a shrunken model: smoke-test this script in minutes")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--row", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.root = a.work.resolve()
    a.work = a.root / (f"tiny-{a.resolution}" if a.tiny else str(a.resolution))
    a.model = a.work / "model"
    if a.worker:
        write_json(a.result, WORKERS[a.worker](a))
        return
    if not a.report_only:
        for row in rows_of(a.only):
            measure(a, row)  # caches its result under results/
    res = {}
    for row in rows_of(None):
        cache = a.work / "results" / f"{row.replace('/', '-')}.json"
        res[row] = json.loads(cache.read_text()) if cache.exists() else None
    ratios = report(a, res)
    if a.json:
        print(json.dumps(ratios))


if __name__ == "__main__":
    main()
