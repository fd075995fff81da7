"""Issue 18's reproducers, re-run through the `fewstep` console script: each case's exit code, wall
time and the first line of its message, as a Markdown table (docs/benchmarks.md "Reliability").

    python benchmarks/reliability.py [--work DIR]

Builds one small ONNX Runtime bundle of zoo:shapes-flash (gates off) and a copy of the toy
pipeline to break; everything else is the reproducer as the issue wrote it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fewstep.testing.tamper import edit_manifest, rehash_tamper

FEWSTEP = [sys.executable, "-m", "fewstep.cli"]


def sh(args: list[str], timeout: float = 300) -> tuple[int, float, str]:
    start = time.perf_counter()
    try:
        proc = subprocess.run([*FEWSTEP, *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - start, f"HANG (> {timeout} s)"
    text = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    first = next((t for t in text if "Traceback" in t), None) or (text[0] if text else "")
    return proc.returncode, time.perf_counter() - start, first[:150]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/reliability"))
    a = ap.parse_args()
    w = a.work.resolve()
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    from fewstep.sd3_pipeline import resolve_model

    nogates = _write(w / "nogates.yaml", "gates: {enabled: false}\nmeasure: false\n")
    code, _, msg = sh(
        ["compile", "zoo:shapes-flash", "-o", str(w / "bundle"), "-t", "onnxruntime-cpu", "--config", str(nogates)]
    )
    assert code == 0, msg
    sh(["keygen", "--private", str(w / "k.key"), "--public", str(w / "k.pub")])
    model = w / "model"
    shutil.copytree(resolve_model("zoo:shapes-flash"), model)

    def copy(name: str) -> Path:
        dst = w / name
        shutil.copytree(w / "bundle", dst)
        return dst

    cases: list[tuple[str, list[str]]] = []
    (w / "out" / "sub").mkdir(parents=True)
    (w / "out" / "keep.txt").write_text("hi")
    cases.append(
        (
            "compile -o onto a user's directory",
            ["compile", "zoo:shapes-flash", "-o", str(w / "out"), "-t", "onnxruntime-cpu"],
        )
    )
    b = copy("rehashed")
    rehash_tamper(b)
    cases.append(("re-hashed tamper, no key required", ["generate", str(b), "a red circle", "-o", str(w / "x.png")]))
    cases.append(
        (
            "re-hashed tamper, --trusted-key",
            ["generate", str(b), "a red circle", "-o", str(w / "x.png"), "--trusted-key", str(w / "k.pub")],
        )
    )
    s = copy("signed-then-rehashed")
    sh(["sign", str(s), "--key", str(w / "k.key")])
    rehash_tamper(s)
    cases.append(
        (
            "signed, then re-hashed tamper, --trusted-key",
            ["generate", str(s), "a red circle", "-o", str(w / "x.png"), "--trusted-key", str(w / "k.pub")],
        )
    )
    outside = w / "outside.onnx"
    shutil.copy(w / "bundle" / "components" / "transformer.onnx", outside)
    b = copy("abs-component")
    edit_manifest(b, lambda m: m["components"]["transformer"].update(files=[str(outside)]))
    cases.append(("components.<name>.files absolute, outside", ["generate", str(b), "x", "-o", str(w / "x.png")]))
    b = copy("abs-tokenizer")
    edit_manifest(b, lambda m: m["pipeline"]["tokenizers"]["text_encoder"].update(path=str(w)))
    cases.append(("tokenizer path absolute, outside", ["generate", str(b), "x", "-o", str(w / "x.png")]))
    b = copy("symlink")
    (b / "components" / "vae_decoder.onnx").unlink()
    (b / "components" / "vae_decoder.onnx").symlink_to(w / "bundle" / "components" / "vae_decoder.onnx")
    cases.append(("a symlink to a file outside", ["generate", str(b), "x", "-o", str(w / "x.png")]))
    b = copy("fake-reference")
    fake = w / "fake-ref"
    shutil.copytree(model, fake)
    (fake / "transformer" / "config.json").write_text((fake / "transformer" / "config.json").read_text() + " ")
    edit_manifest(b, lambda m: m["source"].update(path=str(fake)))
    cases.append(("gate with manifest.source pointing at another model", ["gate", str(b)]))
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")
    )
    cases.append(("566-byte YAML alias bomb", ["recipe", "check", str(_write(w / "bomb.yaml", bomb))]))
    (w / "binary.yaml").write_bytes(bytes(range(256)))
    cases.append(("recipe check: binary file", ["recipe", "check", str(w / "binary.yaml")]))
    cases.append(
        ("recipe check: depth 1000", ["recipe", "check", str(_write(w / "deep.yaml", "[" * 1000 + "]" * 1000))])
    )
    cases.append(("recipe check: a directory", ["recipe", "check", str(w)]))
    cases.append(
        (
            "recipe check: name '[/bold]'",
            ["recipe", "check", str(_write(w / "markup.yaml", 'name: "[/bold]"\nstages: [{kind: report}]\n'))],
        )
    )
    cases.append(
        (
            "recipe: steps: true",
            ["recipe", "check", str(_write(w / "bool.yaml", "name: x\nstages: [{kind: eval, steps: true}]\n"))],
        )
    )
    for name, breaker in (
        ("corrupt model_index.json", lambda m: (m / "model_index.json").write_text("{not json")),
        ("truncated safetensors", lambda m: _truncate(m / "transformer" / "diffusion_pytorch_model.safetensors")),
        ("pickle-only weights", lambda m: _pickle_only(m / "transformer")),
    ):
        broken = w / name.replace(" ", "-")
        shutil.copytree(model, broken)
        breaker(broken)
        cases.append((f"eval: {name}", ["eval", str(broken), "--num-images", "8"]))
        cases.append((f"compile: {name}", ["compile", str(broken), "-o", str(w / "never"), "-t", "onnxruntime-cpu"]))

    print("| case | exit | seconds | message |\n| --- | --- | --- | --- |")
    for name, args in cases:
        code, seconds, msg = sh(args)
        print(f"| {name} | {code} | {seconds:.1f} | {msg.replace('|', '/')} |", flush=True)
    print(f"\nuser file kept after the refused compile: {(w / 'out' / 'keep.txt').exists()}")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _truncate(f: Path) -> None:
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _pickle_only(folder: Path) -> None:
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"\x80\x04cos\nsystem\n.")


if __name__ == "__main__":
    main()
