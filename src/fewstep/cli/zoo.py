"""The built-in toy family: `zoo list`, `zoo path`, `zoo train`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from fewstep.cli.app import fail, out, print_json, zoo_app


@zoo_app.command("list")
def zoo_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the models that ship with fewstep."""
    from fewstep.zoo.registry import ZOO

    rows = [
        {"name": e.name, "kind": e.kind, "installed": e.path.exists(), "description": e.description}
        for e in ZOO.values()
    ]
    if as_json:
        print_json(rows)
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
        fail(str(e).strip("'\""))


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
    text_length: Annotated[
        int | None,
        typer.Option("--text-length", min=8, max=77, help="text slot in tokens (default: fitted to the captions)"),
    ] = None,
    vocab_words: Annotated[
        int, typer.Option("--vocab-words", min=0, help="user data: caption words that get a token of their own")
    ] = 512,
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
        text_length=text_length,
        vocab_words=vocab_words,
    )
    try:
        pipeline = train_all(cfg)
    except (ValueError, FileNotFoundError) as e:
        fail(str(e))
    out.print(f"pipeline: {pipeline}")
    if install:
        from fewstep.zoo.install import install_trained

        for dest in install_trained(output):
            out.print(f"installed {dest}")
