"""The typer application, its consoles and the helpers every command uses."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

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
evaluator_app = typer.Typer(help="Quality evaluators for your own captioned images.", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")
app.add_typer(evaluator_app, name="evaluator")
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True, markup=False, highlight=False)  # user text (paths, prompts) is never markup

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@app.callback()
def _options(
    verbose: bool = typer.Option(False, "--verbose", help="show the libraries' own logs and loading bars"),
) -> None:
    from fewstep.logs import configure

    configure(verbose)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error (markup in the message is shown as text) and exit with `code`."""
    err.print(f"[bold red]error:[/] {escape(str(message))}", highlight=False)
    raise typer.Exit(code)


def example_prompt(bundle: Path) -> str:
    """A held-out prompt of the bundle's family (for the "try:" hint), quoted for a shell."""
    import shlex

    try:
        from fewstep.families import family_named

        manifest = json.loads((Path(bundle) / "manifest.json").read_text())
        prompt = family_named(manifest["family"]).held_out_prompts(1, Path(manifest["source"]["path"]))[0]
    except Exception:  # noqa: BLE001 - only a hint: any problem falls back to a plain prompt
        prompt = "a photo of a red apple on a wooden table"
    return shlex.quote(prompt)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


TRUSTED_KEY_HELP = (
    "require the bundle's manifest to be signed by this ed25519 public key (PEM; repeatable; "
    "also FEWSTEP_TRUSTED_KEYS, paths joined by ':')"
)


def require_trusted_keys(keys: list[Path] | None) -> None:
    """Make every bundle this process (and its workers) opens require a signature by `keys`."""
    if not keys:
        return
    from fewstep.runtime.signing import TRUSTED_KEYS_ENV, trusted_keys_from_env

    for k in keys:
        if not k.is_file():
            fail(f"trusted key not found: {k}")
    merged = [*trusted_keys_from_env(), *keys]
    os.environ[TRUSTED_KEYS_ENV] = os.pathsep.join(str(k.resolve()) for k in merged)
