"""The `fewstep` command line (typer), one module per command group:
`recipes` (run, recipe check/schema), `models` (distill, eval), `bundles` (compile, gate,
generate), `signing` (keygen, sign), `evaluator` (train, calibrate), `system` (version, targets, doctor,
conformance), `zoo` (the toy family)."""

from __future__ import annotations

import os
import sys

from rich.markup import escape

from fewstep.cli import bundles, evaluator, models, recipes, signing, system, zoo  # noqa: F401  (registers the commands)
from fewstep.cli.app import app, err

__all__ = ["app", "main"]

BUILD_MODULES = {"torch", "diffusers", "transformers", "accelerate", "safetensors", "scipy", "tqdm"}


def _user_errors() -> tuple[type[BaseException], ...]:
    """fewstep's own error types for bad input: a one-line message and exit code 2."""
    from pydantic import ValidationError

    from fewstep.cpu.restriction import IsaUnavailable
    from fewstep.errors import ModelError
    from fewstep.fsutil import DiskSpaceError
    from fewstep.recipes.schema import RecipeError
    from fewstep.runtime.bundle import BundleError
    from fewstep.targets.base import MissingExtraError
    from fewstep.yamlio import YamlInputError

    return (
        RecipeError,
        BundleError,
        ModelError,
        YamlInputError,
        IsaUnavailable,
        MissingExtraError,
        ValidationError,
        FileNotFoundError,
        FileExistsError,
        IsADirectoryError,
        NotADirectoryError,
        PermissionError,
        MemoryError,  # a step that cannot fit here; its message says what to change
        DiskSpaceError,  # an output that cannot fit on its disk; the message gives the GiB
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
        missing = getattr(e, "name", None) if isinstance(e, ModuleNotFoundError) else None
        if missing and missing.split(".")[0] in BUILD_MODULES:
            err.print(
                f"[bold red]error:[/] this command needs {escape(missing.split('.')[0])}, part of fewstep's build "
                "extra: pip install 'fewstep\\[build]' (a runtime-only install runs `fewstep generate` only)",
                highlight=False,
            )
            sys.exit(2)
        if isinstance(e, _user_errors()):
            err.print(f"[bold red]error:[/] {escape(str(e).strip())}", highlight=False)
            sys.exit(2)
        err.print(
            f"[bold red]internal error:[/] {escape(type(e).__name__)}: {escape(str(e).strip()[:500])}\n"
            "this is a bug in fewstep or a library it uses; re-run with --debug for the traceback",
            highlight=False,
        )
        sys.exit(3)
