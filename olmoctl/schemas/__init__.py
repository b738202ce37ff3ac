"""Pydantic schemas shared by the CLI side and the job side."""

from olmoctl.schemas.cluster import ClusterProfile
from olmoctl.schemas.recipe import Recipe
from olmoctl.schemas.run import RunSpec

__all__ = ["ClusterProfile", "Recipe", "RunSpec"]
