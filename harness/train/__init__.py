"""Training: recipes, the engine, losses (``register_loss``) and trained models."""
from .losses import register_loss  # noqa: F401
from .recipe import Recipe, load_recipe, parse_recipe, recipe_names  # noqa: F401
