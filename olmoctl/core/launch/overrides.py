"""`-o key.path=value` overrides, applied to the raw recipe/profile data before validation.

Keys starting with `cluster.` go to the cluster profile; every other key to the recipe.
Values stay strings for scalar fields (pydantic converts and type-checks them); lists,
tuples, mappings and null are parsed as YAML.
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

from pydantic import BaseModel

from olmoctl.core.launch.yamlio import loads
from olmoctl.errors import UsageError, shown, shown_plain
from olmoctl.schemas import ClusterProfile, Recipe
from olmoctl.schemas.bounded import NotYAML, check_value_size
from olmoctl.schemas.errors import model_paths, submodel, suggest

CLUSTER_PREFIX = "cluster."


def valid_keys() -> list[str]:
    return model_paths(Recipe) + [CLUSTER_PREFIX + p for p in model_paths(ClusterProfile)]


def parse(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    key = key.strip()
    check_value_size(item, f"-o {shown(key, 60)}")
    if not sep or not key:
        raise UsageError(f"-o {shown(item)}: expected key.path=value, e.g. -o optim.lr=3e-4")
    return key, value


def _field_annotation(model: type[BaseModel], parts: list[str]) -> tuple[Any, bool] | None:
    """(annotation, is_mapping_entry) of a dotted path, or None when the key is unknown."""
    current: type[BaseModel] = model
    for i, part in enumerate(parts):
        field = current.model_fields.get(part)
        if field is None:
            return None
        sub = submodel(field.annotation)
        last = i == len(parts) - 1
        if last:
            return field.annotation, False
        if sub is not None:
            current = sub
            continue
        # A dict field (e.g. cluster.env.NAME) takes any one further key.
        origin = typing.get_origin(field.annotation)
        if origin is dict and i == len(parts) - 2:
            return str, True
        return None
    return None


def _is_structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, dict, set):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_structured(a) for a in typing.get_args(annotation) if a is not type(None))
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _is_optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _convert(annotation: Any, raw: str, key: str) -> Any:
    if _is_optional(annotation) and raw.strip().lower() in ("null", "none", "~", ""):
        return None
    if _is_structured(annotation):
        try:
            return loads(raw, f"-o {key}")
        except NotYAML:
            return raw  # not YAML: the schema says what it wanted instead
    return raw


def apply(
    recipe_data: dict[str, Any], cluster_data: dict[str, Any], overrides: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return copies of the raw recipe and cluster data with the overrides applied."""
    recipe_data = copy.deepcopy(recipe_data)
    cluster_data = copy.deepcopy(cluster_data)
    for item in overrides:
        key, raw = parse(item)
        if key.startswith(CLUSTER_PREFIX):
            model, target, parts = ClusterProfile, cluster_data, key[len(CLUSTER_PREFIX) :]
        else:
            model, target, parts = Recipe, recipe_data, key
        found = _field_annotation(model, parts.split("."))
        if found is None:
            raise UsageError(
                f"-o {shown_plain(item, 100)}: unknown key {shown(key)}{suggest(key, valid_keys())}"
            )
        annotation, _ = found
        *heads, last = parts.split(".")
        node = target
        for head in heads:
            child = node.get(head)
            if not isinstance(child, dict):
                child = {}
                node[head] = child
            node = child
        node[last] = _convert(annotation, raw, shown_plain(key, 100))
    return recipe_data, cluster_data
