"""`fewstep evaluator train`: a caption evaluator for any captioned image folder, optionally
attached to a pipeline so eval, distribution gates and the split-ratio choice can score it;
`fewstep evaluator calibrate`: redo its calibration without retraining."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from fewstep.cli.app import evaluator_app, fail, out, print_json


def _folder(data: str) -> Path:
    """The folder of `--data imagefolder:PATH` (anything else is refused by name)."""
    name, _, path = data.partition(":")
    if name != "imagefolder" or not path:
        fail(f"--data {data!r}: allowed: imagefolder:PATH")
    return Path(path)


@evaluator_app.command("train")
def evaluator_train(
    data: Annotated[str, typer.Option(help="imagefolder:PATH (metadata.jsonl with file_name and text)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="evaluator directory (resumable)")],
    resolution: Annotated[int, typer.Option(min=8, help="image side the evaluator sees (the model's resolution)")] = 32,
    steps: Annotated[int, typer.Option(min=1)] = 1500,
    batch: Annotated[int, typer.Option(min=2)] = 128,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    min_count: Annotated[int, typer.Option(min=1, help="captions a concept needs to be checked")] = 5,
    attach: Annotated[
        Path | None, typer.Option(help="pipeline directory to attach the evaluator to (its fewstep_evaluator/)")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="retrain an existing output; replace an attached evaluator")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train a caption evaluator (domain FID + caption-concept alignment) on an image folder."""
    from fewstep.families.captioned import EVALUATOR_DIR, CaptionEvaluator
    from fewstep.families.captioned.train import EvaluatorConfig, train_caption_evaluator
    from fewstep.fsutil import atomic_dir

    folder = _folder(data)
    if attach is not None:
        if not (attach / "model_index.json").is_file():
            fail(f"--attach {attach}: not a pipeline directory (no model_index.json)")
        if (attach / EVALUATOR_DIR).exists() and not force:
            fail(f"{attach / EVALUATOR_DIR} exists; pass --force to replace it")
    if (output / "config.json").exists():
        if not force:
            fail(f"{output} already holds an evaluator; pass --force to train a new one in its place")
        shutil.rmtree(output)
    cfg = EvaluatorConfig(steps=steps, batch=batch, seed=seed, min_count=min_count, progress=not as_json)
    try:
        train_caption_evaluator(folder, resolution, output, cfg, output.parent / f".{output.name}-work")
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    evaluator = CaptionEvaluator.load(output)
    if attach is not None:
        with atomic_dir(attach / EVALUATOR_DIR) as tmp:
            shutil.copytree(output, tmp, dirs_exist_ok=True)
    summary = {"evaluator": str(output), "concepts": len(evaluator.vocabulary), **evaluator.info}
    if attach is not None:
        summary["attached"] = str(attach / EVALUATOR_DIR)
    if as_json:
        print_json(summary)
        return
    real = evaluator.info["real"]
    out.print(f"evaluator: {output} ({len(evaluator.vocabulary)} concepts)")
    out.print(
        f"on {real['images']} real held-out images (not used to calibrate): alignment {real['alignment']:.3f}, "
        f"concept recall {real['concept_recall']:.3f}, FID real-vs-real {real['fid_real']:.3f}"
    )
    if attach is not None:
        out.print(f"attached: {attach / EVALUATOR_DIR}")


@evaluator_app.command("calibrate")
def evaluator_calibrate(
    evaluator: Annotated[Path, typer.Argument(help="evaluator directory (or a pipeline's fewstep_evaluator/)")],
    data: Annotated[str, typer.Option(help="imagefolder:PATH it was trained on")],
    min_auc: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="concepts separated less well are not checked")
    ] = 0.9,
) -> None:
    """Decide again, on real held-out images, which caption concepts the evaluator checks."""
    from fewstep.families.captioned.train import recalibrate

    folder = _folder(data)
    try:
        ev = recalibrate(evaluator, folder, min_auc)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    cal, real = ev.info["calibration"], ev.info["real"]
    out.print(f"{evaluator}: {len(ev.vocabulary) - len(ev.unchecked)} of {len(ev.vocabulary)} concepts checked")
    if ev.unchecked:
        shown = [f"{c} {a:.2f}" if isinstance(a, float) else f"{c} (pair)" for c, a in cal["unchecked"].items()]
        out.print("not checked (AUC): " + ", ".join(shown))
    out.print(f"on {real['images']} real held-out images: alignment {real['alignment']:.3f}, "
              f"concept recall {real['concept_recall']:.3f}")  # fmt: skip
