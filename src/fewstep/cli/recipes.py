"""Recipe commands: `run`, `recipe check`, `recipe schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fewstep.cli.app import app, err, example_prompt, fail, out, print_json, recipe_app


def rounded(value: Any, digits: int = 4) -> Any:
    """Floats to `digits` significant digits, for people (JSON output keeps full precision)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


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
    from fewstep.recipes.runner import run_recipe
    from fewstep.recipes.schema import RecipeError, load_recipe

    try:
        rec = load_recipe(recipe, {"model": model})
    except RecipeError as e:
        fail(str(e))
    run_dir = output or Path("runs") / rec.name

    def on_stage(name: str, status: str) -> None:
        if not as_json:
            err.print(f"[bold]{name}[/]: {status}")

    if not progress or as_json:
        from fewstep.logs import disable_progress

        disable_progress()
    try:
        results = run_recipe(rec, run_dir, set(force or ()), progress=progress and not as_json, on_stage=on_stage)
    except GateFailure as e:
        fail(str(e), code=1)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        fail(str(e).strip("'\""))
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
        print_json(summary)
        return
    table = Table(title=f"run {rec.name} -> {run_dir}")
    for col in ("stage", "status", "seconds", "summary"):
        table.add_column(col)
    for r in results:
        table.add_row(r.name, r.status, f"{r.seconds:.1f}", json.dumps(rounded(r.summary), default=str))
    out.print(table)
    for r in results:
        if r.kind == "compile" and (r.out / "bundle").exists() and r.summary.get("gates_passed", True):
            out.print(f"try: fewstep generate {r.out / 'bundle'} {example_prompt(r.out / 'bundle')} -o image.png")
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
    from fewstep.recipes.schema import RecipeError, load_recipe, stage_name

    try:
        rec = load_recipe(recipe)
    except RecipeError as e:
        if as_json:
            print_json({"valid": False, "errors": str(e).splitlines()[1:] or [str(e)]})
            raise typer.Exit(2) from None
        fail(str(e))
    stages = [stage_name(s, i) for i, s in enumerate(rec.stages)]
    if as_json:
        print_json({"valid": True, "name": rec.name, "model": rec.model, "stages": stages})
    else:
        out.print(f"{recipe}: valid; model {rec.model}; stages: {', '.join(stages)}", highlight=False)


@recipe_app.command("schema")
def recipe_schema() -> None:
    """Print the recipe JSON schema (for editor validation)."""
    from fewstep.recipes.schema import recipe_schema as schema

    print_json(schema())
