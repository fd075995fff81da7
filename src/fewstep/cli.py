"""The `fewstep` command line (typer)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fewstep import __version__
from fewstep.cli_deploy import register as register_deploy_commands

EXIT_CODES = "Exit codes: 0 ok, 1 a gate failed, 2 bad input or usage, 3 internal error (re-run with --debug)."
app = typer.Typer(
    help="fewstep: distil and deploy few-step rectified-flow text-to-image models.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
recipe_app = typer.Typer(help="Check recipes and print their schema.", no_args_is_help=True)
zoo_app = typer.Typer(help="The built-in toy model family (zoo:shapes).", no_args_is_help=True)
app.add_typer(recipe_app, name="recipe")
app.add_typer(zoo_app, name="zoo")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False)
    raise typer.Exit(code)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def version() -> None:
    """Print the fewstep version."""
    out.print(__version__)


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML file")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="run directory (default runs/<name>)")] = None,
    force: Annotated[list[str] | None, typer.Option("--force", help="re-run this stage (repeatable)")] = None,
    model: Annotated[str | None, typer.Option("--model", help="override the recipe's model")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print a machine-readable summary")] = False,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Run a recipe: every stage in order, skipping stages whose outputs are current."""
    from fewstep.compile.build import GateFailure
    from fewstep.recipe import RecipeError, load_recipe
    from fewstep.runner import run_recipe

    try:
        rec = load_recipe(recipe, {"model": model})
    except RecipeError as e:
        _fail(str(e))
    run_dir = output or Path("runs") / rec.name

    def on_stage(name: str, status: str) -> None:
        if not as_json:
            err.print(f"[bold]{name}[/]: {status}")

    try:
        results = run_recipe(rec, run_dir, set(force or ()), progress=progress and not as_json, on_stage=on_stage)
    except GateFailure as e:
        _fail(str(e), code=1)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        _fail(str(e).strip("'\""))
    summary = {
        "recipe": rec.name,
        "run_dir": str(run_dir),
        "stages": [
            {
                "name": r.name,
                "kind": r.kind,
                "status": r.status,
                "seconds": round(r.seconds, 2),
                "out": str(r.out),
                **r.summary,
            }
            for r in results
        ],
    }
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"run {rec.name} -> {run_dir}")
    for col in ("stage", "status", "seconds", "summary"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, r.status, f"{r.seconds:.1f}", json.dumps(r.summary, default=str))
    out.print(table)
    for r in results:
        if r.kind == "compile" and (r.out / "bundle").exists() and r.summary.get("gates_passed", True):
            out.print(f'try: fewstep generate {r.out / "bundle"} "a red circle left of a blue square" -o image.png')
            break
    report = next((r.out / "report.html" for r in results if r.kind == "report"), None)
    if report is not None:
        out.print(f"report: {report}")


@recipe_app.command("check")
def recipe_check(
    recipe: Annotated[Path, typer.Argument(help="recipe YAML file")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Validate a recipe; print its stages or every problem found."""
    from fewstep.recipe import RecipeError, load_recipe, stage_name

    try:
        rec = load_recipe(recipe)
    except RecipeError as e:
        if as_json:
            _print_json({"valid": False, "errors": str(e).splitlines()[1:] or [str(e)]})
            raise typer.Exit(2) from None
        _fail(str(e))
    stages = [stage_name(s, i) for i, s in enumerate(rec.stages)]
    if as_json:
        _print_json({"valid": True, "name": rec.name, "model": rec.model, "stages": stages})
    else:
        out.print(f"{recipe}: valid; model {rec.model}; stages: {', '.join(stages)}", highlight=False)


@recipe_app.command("schema")
def recipe_schema() -> None:
    """Print the recipe JSON schema (for editor validation)."""
    from fewstep.recipe import recipe_schema as schema

    _print_json(schema())


def _student_steps(model: str) -> int | None:
    """A distilled student's K (None for a plain pipeline, a bundle or an unknown path)."""
    from fewstep.pipelines import resolve_model
    from fewstep.runtime.bundle import is_bundle
    from fewstep.student import student_info

    if not model.startswith("zoo:") and is_bundle(model):
        return None
    try:
        info = student_info(resolve_model(model))
    except (FileNotFoundError, KeyError):
        return None
    return int(info["steps"]) if info else None


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Argument(help="zoo:<name> or a diffusers pipeline directory")],
    steps: Annotated[
        int | None, typer.Option(min=1, help="sampling steps (default: a student's own K, else 28)")
    ] = None,
    num_images: Annotated[int, typer.Option("--num-images", min=8, help="images (held-out prompts)")] = 1000,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    guidance: Annotated[
        float, typer.Option(min=0.0, help="CFG scale; <= 1 disables CFG (a student at its own K runs without CFG)")
    ] = 2.0,
    batch: Annotated[int, typer.Option(min=1)] = 200,
    drop_t5: Annotated[bool, typer.Option("--drop-t5", help="zero-fill the T5 slot")] = False,
    guidance_interval: Annotated[
        str | None, typer.Option("--guidance-interval", help="LO,HI: CFG only where LO <= sigma <= HI")
    ] = None,
    grid: Annotated[Path | None, typer.Option("--grid", help="image grid PNG path")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score a model or a compiled bundle on the held-out prompts: domain FID and alignment.

    MODEL is zoo:<name>, a diffusers pipeline directory, or a bundle directory (run through
    the torch-free runtime with the bundle's own steps and guidance).
    """
    from fewstep.evaluation import evaluate
    from fewstep.runtime.bundle import BundleError
    from fewstep.sampling import GenerationConfig

    interval = None
    if guidance_interval:
        try:
            lo, hi = (float(v) for v in guidance_interval.split(","))
        except ValueError:
            _fail(f"--guidance-interval: expected LO,HI (two numbers in [0, 1]), got {guidance_interval!r}")
        interval = (lo, hi)
    if steps is None:
        steps = _student_steps(model) or 28
    name = model.replace("zoo:", "").replace("/", "_").strip("_.") or "model"
    grid = grid or Path("runs") / "eval" / f"{name}-{steps}steps.png"
    cfg = GenerationConfig(
        steps, num_images, seed, guidance, batch, drop_t5, progress=not as_json, guidance_interval=interval
    )
    try:
        result = evaluate(model, cfg, grid=grid)
    except (FileNotFoundError, KeyError, BundleError) as e:
        _fail(str(e).strip("'\""))
    if as_json:
        _print_json(result)
        return
    out.print(f"{model} @ {result['steps']} steps, {result['images']} images, guidance {result['guidance']}")
    out.print(f"  fid {result['fid']:.3f} (real-vs-real {result['fid_real']:.3f})  alignment {result['alignment']:.3f}")
    out.print("  per category: " + ", ".join(f"{k} {v:.3f}" for k, v in result["per_category"].items()))
    out.print("  per prompt kind: " + ", ".join(f"{k} {v:.3f}" for k, v in result["per_kind"].items()))
    out.print(f"  grid: {result['grid']}")


@app.command("distill")
def distill_cmd(
    model: Annotated[str, typer.Argument(help="teacher: zoo:<name> or a diffusers pipeline directory")],
    output: Annotated[Path, typer.Option("-o", "--output", help="student directory to write")],
    config: Annotated[Path | None, typer.Option("--config", help="YAML/JSON FlashConfig fields")] = None,
    steps: Annotated[int | None, typer.Option(help="student steps (1, 2, 4 or 8)")] = None,
    t5_free: Annotated[bool | None, typer.Option("--t5-free/--with-t5", help="zero-fill the student's T5")] = None,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing output that fewstep did not write")
    ] = False,
) -> None:
    """Distil a teacher into a K-step student (SD3.5-Flash). Works under `accelerate launch`."""
    from pydantic import ValidationError

    from fewstep.distill import FlashConfig, distill
    from fewstep.yamlio import YamlInputError, load_mapping

    fields: dict[str, Any] = {}
    if config is not None:
        try:
            fields = load_mapping(config, "distill config")
        except (FileNotFoundError, YamlInputError) as e:
            _fail(str(e))
    fields.update({k: v for k, v in {"steps": steps, "t5_free": t5_free}.items() if v is not None})
    try:
        cfg = FlashConfig(**fields)
    except ValidationError as e:
        _fail(
            "invalid distill config\n"
            + "\n".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']} (got {x['input']!r})" for x in e.errors())
        )
    try:
        path = distill(model, cfg, output, progress=progress, overwrite=overwrite)
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as e:
        _fail(str(e).strip("'\""))
    out.print(f"student: {path}")


@zoo_app.command("list")
def zoo_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the models that ship with fewstep."""
    from fewstep.zoo.registry import ZOO

    rows = [
        {"name": e.name, "kind": e.kind, "installed": e.path.exists(), "description": e.description}
        for e in ZOO.values()
    ]
    if as_json:
        _print_json(rows)
        return
    for r in rows:
        out.print(
            f"zoo:{r['name']:<18} {r['kind']:<10} {'installed' if r['installed'] else 'missing':<10} {r['description']}"
        )


@zoo_app.command("path")
def zoo_path_cmd(name: Annotated[str, typer.Argument(help="zoo entry, e.g. shapes")]) -> None:
    """Print where a zoo model's files are."""
    from fewstep.zoo.registry import zoo_path

    try:
        sys.stdout.write(f"{zoo_path(name.removeprefix('zoo:'))}\n")
    except (KeyError, FileNotFoundError) as e:
        _fail(str(e).strip("'\""))


@zoo_app.command("train")
def zoo_train(
    output: Annotated[Path, typer.Option("-o", "--output", help="training directory (resumable)")] = Path(
        "runs/zoo-train"
    ),
    data: Annotated[str, typer.Option(help="'shapes' or 'imagefolder:PATH'")] = "shapes",
    seed: Annotated[int, typer.Option(min=0)] = 0,
    evaluator_steps: Annotated[int, typer.Option(min=1)] = 1500,
    vae_steps: Annotated[int, typer.Option(min=1)] = 1500,
    teacher_steps: Annotated[int, typer.Option(min=1)] = 15000,
    decoder_steps: Annotated[int, typer.Option(min=0, help="decoder-only VAE fine-tune after the teacher")] = 2500,
    batch: Annotated[int, typer.Option(min=2)] = 64,
    compile: Annotated[
        bool, typer.Option("--compile/--no-compile", help="torch.compile the teacher (faster; needs a C++ compiler)")
    ] = True,
    install: Annotated[bool, typer.Option("--install", help="copy the result into the package's zoo")] = False,
) -> None:
    """Train the toy family (evaluator, VAE, teacher); re-running resumes where it stopped."""
    from fewstep.zoo.train import TrainConfig, train_all

    cfg = TrainConfig(
        out=output,
        data=data,
        seed=seed,
        batch=batch,
        evaluator_steps=evaluator_steps,
        vae_steps=vae_steps,
        teacher_steps=teacher_steps,
        decoder_steps=decoder_steps,
        compile=compile,
    )
    try:
        pipeline = train_all(cfg)
    except (ValueError, FileNotFoundError) as e:
        _fail(str(e))
    out.print(f"pipeline: {pipeline}")
    if install:
        from fewstep.zoo.install import install_trained

        for dest in install_trained(output):
            out.print(f"installed {dest}")


register_deploy_commands(app)


def _user_errors() -> tuple[type[BaseException], ...]:
    """fewstep's own error types for bad input: a one-line message and exit code 2."""
    from pydantic import ValidationError

    from fewstep.cpu.restriction import IsaUnavailable
    from fewstep.recipe import RecipeError
    from fewstep.runtime.bundle import BundleError
    from fewstep.targets.base import MissingExtraError
    from fewstep.yamlio import YamlInputError

    return (
        RecipeError,
        BundleError,
        YamlInputError,
        IsaUnavailable,
        MissingExtraError,
        ValidationError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
    )


def main(argv: list[str] | None = None) -> None:
    """The `fewstep` console script: no traceback reaches a user unless `--debug` is given."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("FEWSTEP_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    try:
        app(args=args, prog_name="fewstep")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        if isinstance(e, _user_errors()):
            err.print(f"[bold red]error:[/] {escape(str(e).strip())}", highlight=False)
            sys.exit(2)
        err.print(
            f"[bold red]internal error:[/] {escape(type(e).__name__)}: {escape(str(e).strip()[:500])}\n"
            "this is a bug in fewstep or a library it uses; re-run with --debug for the traceback",
            highlight=False,
        )
        sys.exit(3)


if __name__ == "__main__":  # pragma: no cover
    main()
