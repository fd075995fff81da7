"""The built-in recipe stages, one module per kind (its config and its implementation).
Importing this package registers them (see `recipes/context.py`)."""

from fewstep.recipes.stages import compile, distill, eval, report  # noqa: F401, A004

__all__ = ["compile", "distill", "eval", "report"]
