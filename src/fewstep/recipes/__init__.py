"""Recipes: the YAML schema (`schema.py`), one module per stage kind with its config and its
implementation (`stages/`), the stage context and registry (`context.py`), and the runner
that drives a recipe's stages as cached, atomic directories (`runner.py`)."""

from fewstep.recipes.schema import Recipe, RecipeError, load_recipe, parse_recipe, recipe_schema, stage_name

__all__ = ["Recipe", "RecipeError", "load_recipe", "parse_recipe", "recipe_schema", "stage_name"]
