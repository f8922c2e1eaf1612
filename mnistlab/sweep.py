"""What a sweep tries: a base training config plus the axes it varies (convolution stacks × depths ×
widths × activations × dropouts × batch norm × inits × learning rates × the training settings whose
field says a sweep varies them: weight decays × training-set sizes × label noises; each config with
1 to MAX_SEEDS weight seeds), its trials, and its link.

Every trial reads the same batches (the base config's batch-order seed), so trials differ only
where the axes say. Trials of one shape train together (`stacked`) as jobs of the app's one queue:
`sweep_run` runs a sweep, `sweep_db` keeps its finished trials, `sweep_results` ranks them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mnistlab import layers, parse
from mnistlab.activations import ACTIVATIONS
from mnistlab.architecture import Architecture, HasNetwork, Init, Network
from mnistlab.errors import ConfigError
from mnistlab.sweep_values import (  # noqa: F401 - parse_list, widths_for, ...: where callers find them
    MAX_CONV_STACKS,
    WIDTH_RULES,
    batch_norm_text,
    batch_norm_value,
    conv_stacks,
    dropout_value,
    parse_list,
    std_value,
    widths_for,
)
from mnistlab.train_config import TrainConfig, link_text

if TYPE_CHECKING:  # no torch at import: the command line makes its flags and checks from these values
    from mnistlab import stacked

# Caps for a shared classroom server (also in the README's Limits table).
MAX_DEPTH = 4
# A CNN's epoch costs more than its parameters say: it counts as this many trial-epochs against
# MAX_SWEEP_EPOCHS, about what it takes here against an MLP's (bench 11: ConvNetJS's layout, 322,560
# multiply-adds an image, about 10 MLP epochs; the 50,186-parameter CNN's 3.9 million about 35).
def cnn_epoch_weight(arch) -> float:
    return max(1.0, math.sqrt(arch.macs / 3_200)) if arch.is_cnn else 1.0


MAX_SEEDS = 5
MAX_TRIAL_EPOCHS = 5  # epochs of one trial
MAX_TRIALS = 200
MAX_SWEEP_EPOCHS = 400  # trials × epochs: about 5-10 minutes of a 2-core server
MIN_TRAIN_IMAGES = 100


def key_form(config: TrainConfig) -> dict:
    """A config as sweep keys hash it: as they were first written (the batch-order seed as "seed"),
    so sweeps saved before still find their finished trials."""
    return {"seed" if k == "batch_seed" else k: v for k, v in config.to_dict().items()}


@dataclass(frozen=True)
class Trial(HasNetwork):
    """One network trained once: which network (architecture, init, weight seed), and how."""

    network: Network
    config: TrainConfig

    @property
    def key(self) -> str:
        """What makes this trial what it is, as text: equal keys, equal results."""
        return json.dumps({"arch": self.arch.to_dict(), "init": self.init.to_dict(), "seed": self.seed,
                           "config": key_form(self.config)}, sort_keys=True)

    @property
    def activation(self) -> str:
        """The one activation a sweep's network uses (its convolutions' where it has no hidden layer)."""
        convs = (f.activation for f in self.arch.features if isinstance(f, layers.Conv))
        acts = [*self.arch.activations, *convs]
        return acts[0] if acts else "relu"

    def record(self, result: stacked.Trained, engine: str) -> dict:
        """What a sweep keeps of the trial once trained: one row of its table, one line of its JSON:
        the network, every training setting, and the results. Its dropout is one probability (a
        sweep's networks use one in every hidden layer), or a list where layers differ."""
        arch = self.arch
        dropout = arch.dropout[0] if len(set(arch.dropout)) == 1 else list(arch.dropout) or 0.0
        return {"key": self.key, "network": arch.label(), "hidden": list(arch.hidden),
                "activations": list(arch.activations), "activation": self.activation,
                "dropout": dropout, "batch_norm": arch.batch_norm, "convs": arch.features_text() or "none",
                "family": "CNN" if arch.is_cnn else "MLP", "macs": arch.macs,
                "depth": len(arch.hidden), "width": arch.hidden[0] if arch.hidden else None,
                "parameters": arch.n_parameters,
                "weight_std": self.init.weight_std, "init": self.init.label(), "seed": self.seed,
                **{f.name: getattr(self.config, f.name) for f in TrainConfig.settings()},
                "train_accuracy": result.train_accuracy, "validation_accuracy": result.validation_accuracy,
                "validation_loss": result.validation_loss, "best_epoch": result.best_epoch,
                "best_validation_accuracy": result.best_validation_accuracy,
                "test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
                "train_loss": result.train_loss, "seconds": result.seconds, "stacked": result.stacked,
                "engine": engine, "finished": time.time()}


# The base config's settings a saved sweep always holds (the others only where they are not their
# default, so a sweep saved before they existed keeps its id); its `lr` is the axis `lrs`.
SAVED_ALWAYS = ("optimizer", "batch_size", "epochs", "normalization", "batch_seed", "train_images")
# Axes over the network beside its shape: each network's dropout (one probability in every hidden
# layer) and batch norm; saved and linked only where they are not these (so older sweeps keep their ids).
NETWORK_AXES = {"dropouts": (0.0,), "batch_norms": (False,), "convs": ("none",)}
# Axes over training settings, from the fields that say a sweep varies them (`train_config.SweepAxis`),
# each empty unless it varies (then the base config's value holds): the axis, its setting, and what
# a list of its values is called in a message.
SETTING_AXES = {f.metadata["sweep"].axis: (f.name, f.metadata["sweep"].title) for f in TrainConfig.swept()}
AXES = ("depths", "widths", "width_rule", "activations", "inits", "lrs", "seeds", "sample", "sample_seed",
        *SETTING_AXES, "dropouts", "batch_norms", "convs")


def _with_setting_axes(cls):
    """SweepSettings with a field per setting axis, e.g. `weight_decays: tuple = ()`: empty, the base
    config's setting; its values are checked as the base config checks them."""
    for axis in SETTING_AXES:
        cls.__annotations__[axis] = "tuple"
        setattr(cls, axis, ())
    return cls


@dataclass(frozen=True)
@_with_setting_axes
class SweepSettings:
    """What a sweep tries: a base training config, and the axes it varies. Values may be given as
    text ("16,64,256") or sequences; all are checked, and a sweep beyond the server's caps is refused
    with the cap it exceeds. Every setting of the base config (momentum, batch size, the data set...)
    reaches every trial as it is; the learning rates replace its `lr`."""

    depths: tuple = (1, 2)
    widths: tuple = (16, 64, 256)
    width_rule: str = "same"
    activations: tuple = ("relu", "sigmoid")
    inits: tuple = (None,)  # None: PyTorch's default; a float: normal(0, std) weights
    lrs: tuple = (1e-3,)
    seeds: int = 1  # weight seeds 0 .. seeds-1 for every config
    sample: int | None = None  # a random sample of this many configs instead of the full grid
    sample_seed: int = 0
    base: TrainConfig = TrainConfig(epochs=1)
    dropouts: tuple = (0.0,)  # each network's dropout, in every hidden layer
    batch_norms: tuple = (False,)  # without batch norm, with it, or both
    convs: tuple = ("none",)  # convolution stacks before the hidden layers ("none": an MLP)
    # and one axis per setting a sweep varies (SETTING_AXES, added by _with_setting_axes), e.g.
    # train_sizes (None or "all": all that do not validate)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("convs", conv_stacks(self.convs))
        # no hidden layer: a CNN straight from its last pool to the output (or softmax regression)
        set_("depths", parse_list("Hidden layers", self.depths,
                                  lambda p: parse.whole("Hidden layers", p, 0, MAX_DEPTH)))
        set_("widths", parse_list("Widths", self.widths,
                                  lambda p: parse.whole("A width", p, 1, layers.MAX_WIDTH)))
        rule = str(self.width_rule).strip().lower()
        if rule not in WIDTH_RULES:
            raise ConfigError(f"Width rule must be one of {', '.join(WIDTH_RULES)}; got {self.width_rule!r}.")
        set_("width_rule", rule)

        def activation(p):
            name = p.lower()
            if name not in ACTIVATIONS:
                raise ConfigError(f"Activations must be among {', '.join(ACTIVATIONS)}; got {p!r}.")
            return name

        set_("activations", parse_list("Activations", self.activations, activation))
        set_("dropouts", parse_list("Dropouts", self.dropouts, dropout_value))
        set_("batch_norms", parse_list("Batch norm", self.batch_norms, batch_norm_value))
        inits = self.inits if isinstance(self.inits, (list, tuple)) else str(self.inits).split(",")
        set_("inits", tuple(dict.fromkeys(std_value(v) for v in inits)) or (None,))
        set_("lrs", parse_list("Learning rates", self.lrs,
                               lambda p: TrainConfig(lr=p).lr))
        set_("seeds", parse.whole("Seeds per config", self.seeds, 1, MAX_SEEDS))
        if not isinstance(self.base, TrainConfig):
            raise ConfigError("A sweep's base settings must be a TrainConfig.")
        parse.whole("Epochs per trial", self.base.epochs, 1, MAX_TRIAL_EPOCHS)
        if self.base.early_stop is not None:
            raise ConfigError("A sweep trains every trial for its epochs and records each one's best "
                              "validation epoch; early stopping is for a single run (leave it off).")
        for axis, (name, title) in SETTING_AXES.items():
            values = getattr(self, axis)
            if values in (None, "", (), []):
                set_(axis, ())
                continue
            values = parse_list(title, values, lambda p, name=name: self._setting(name, p))
            if len(values) == 1:  # one value is no axis: the base config's setting
                set_("base", self.base.replace(**{name: values[0]}))
                values = ()
            set_(axis, values)
        self._setting("train_images", self.base.train_images)
        if self.sample not in (None, "", 0, "0"):
            set_("sample", parse.whole("Random sample", self.sample, 1, MAX_TRIALS))
        else:
            set_("sample", None)
        set_("sample_seed", parse.check_seed(self.sample_seed))
        n = self.n_trials
        if n > MAX_TRIALS:
            raise ConfigError(f"This sweep has {n:,} trials; a sweep may have at most {MAX_TRIALS} on this "
                              f"server. Choose fewer values, fewer seeds, or a random sample.")
        if n * self.epochs > MAX_SWEEP_EPOCHS:
            raise ConfigError(f"This sweep trains {n:,} trials × {self.epochs} epochs = {n * self.epochs:,} "
                              f"trial-epochs; at most {MAX_SWEEP_EPOCHS} are allowed on this server. "
                              f"Choose fewer trials or epochs.")
        archs = self.architectures()  # each within network's caps (parameters, multiply-adds)
        if any(a.is_cnn for a in archs):
            cost = self.seeds * self.epochs * sum(cnn_epoch_weight(a) for a, *_ in self.configs())
            if cost > MAX_SWEEP_EPOCHS:
                raise ConfigError(f"This sweep's CNNs cost as much as {cost:,.0f} MLP trial-epochs (a CNN's "
                                  f"epoch takes longer: the more multiply-adds, the longer); at most "
                                  f"{MAX_SWEEP_EPOCHS} are allowed on this server. Choose fewer or smaller "
                                  f"convolution stacks, fewer trials or epochs.")

    @property
    def epochs(self) -> int:
        return self.base.epochs

    @property
    def train_images(self) -> int | None:
        return self.base.train_images

    def _setting(self, name: str, value):
        """One value of a setting's axis, checked as the base config checks it ("all" training images:
        all that do not validate)."""
        if name == "train_images" and str(value).strip().lower() in ("all", "none"):
            value = None
        if name == "train_images" and value is not None:  # a sweep's trials need a few images each
            value = parse.whole("Training images", value, MIN_TRAIN_IMAGES,
                                self.base.data.train_size - self.base.validation)
        return getattr(self.base.replace(**{name: value}), name)

    def config(self, lr_index: int, **settings) -> TrainConfig:
        return self.base.replace(lr=self.lrs[lr_index], **settings)

    def setting_grid(self) -> list[dict]:
        """Each combination of the varied training settings (SETTING_AXES: weight decay, training-set
        size, label noise) as TrainConfig changes; [{}] when none varies."""
        grid: list[dict] = [{}]
        for axis, (name, _) in SETTING_AXES.items():
            if getattr(self, axis):
                grid = [{**g, name: v} for g in grid for v in getattr(self, axis)]
        return grid

    def architectures(self) -> list[Architecture]:
        """Each network of the grid, once (a network without hidden layers has no width)."""
        data = self.base.data
        archs = [Architecture(widths_for(w, d, self.width_rule), a, data.image_shape, data.n_classes,
                                      dropout=p, batch_norm=bn,
                                      features=layers.parse_features(c.replace("none", ""), a, False))
                 for c in self.convs for d in self.depths for w in self.widths for p in self.dropouts
                 for bn in self.batch_norms for a in self.activations]
        return list(dict.fromkeys(archs))

    @property
    def grid_size(self) -> int:
        """Configs in the full grid (a config: everything but the seed)."""
        return len(self.architectures()) * len(self.inits) * len(self.lrs) * len(self.setting_grid())

    @property
    def n_configs(self) -> int:
        return min(self.sample, self.grid_size) if self.sample else self.grid_size

    @property
    def n_trials(self) -> int:
        return self.n_configs * self.seeds

    def configs(self) -> list[tuple[Architecture, Init, TrainConfig]]:
        """Every config of the grid, or the random sample of them (the same sample for the same settings)."""
        grid = [(arch, Init(weight_std=std), self.config(i, **settings))
                for arch in self.architectures() for std in self.inits for i in range(len(self.lrs))
                for settings in self.setting_grid()]
        if self.sample and self.sample < len(grid):
            picked = sorted(random.Random(self.sample_seed).sample(range(len(grid)), self.sample))
            grid = [grid[i] for i in picked]
        return grid

    def trials(self) -> list[Trial]:
        return [Trial(Network(arch, init, seed), config) for arch, init, config in self.configs()
                for seed in range(self.seeds)]

    def to_dict(self) -> dict:
        """The axes and the base config's settings side by side, as sweeps were first saved."""
        axes = {"depths": list(self.depths), "widths": list(self.widths), "width_rule": self.width_rule,
                "activations": list(self.activations), "inits": list(self.inits), "lrs": list(self.lrs),
                "seeds": self.seeds, "sample": self.sample, "sample_seed": self.sample_seed,
                **{axis: list(getattr(self, axis)) for axis in SETTING_AXES if getattr(self, axis)},
                **{axis: list(getattr(self, axis)) for axis, default in NETWORK_AXES.items()
                   if getattr(self, axis) != default}}
        base = {f.name: getattr(self.base, f.name) for f in TrainConfig.settings()
                if f.name in SAVED_ALWAYS or (f.name != "lr" and getattr(self.base, f.name) != f.default)}
        return {**axes, **base}

    @classmethod
    def from_dict(cls, d: dict) -> SweepSettings:
        """From axes and training settings side by side (a saved sweep, a link, the CLI's flags):
        the training settings form the base config."""
        if not isinstance(d, dict):
            raise ConfigError("Sweep settings must be a mapping.")
        base = {f.name: d[f.name] for f in TrainConfig.settings() if d.get(f.name) is not None}
        base["epochs"] = parse.whole("Epochs per trial", base.get("epochs", 1), 1, MAX_TRIAL_EPOCHS)
        return cls(**{k: d[k] for k in AXES if k in d}, base=TrainConfig(**base))

    @classmethod
    def of(cls, **values) -> SweepSettings:
        """From keyword values, axes and training settings alike (see from_dict)."""
        return cls.from_dict(values)

    def replace(self, **changes) -> SweepSettings:
        return dataclasses.replace(self, **changes)

    @property
    def id(self) -> str:
        """The same settings, the same sweep: how a restarted sweep finds its finished trials."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def label(self) -> str:
        """E.g. "1-2 layers × widths 16,64,256 × relu,sigmoid, 2 seeds, 1 epoch: 24 trials"."""
        depth = ",".join(map(str, self.depths)) + f" layer{'s' * (self.depths != (1,))}"
        inits = ",".join("default" if s is None else f"std {s:g}" for s in self.inits)
        lrs = ",".join(f"{lr:g}" for lr in self.lrs)
        held = ""  # the base config's settings a sweep could vary, where they are not their default
        for f in TrainConfig.swept():
            name, values = f.metadata["label"].lower(), getattr(self, f.metadata["sweep"].axis)
            if values:
                lrs += f" × {name} " + ",".join(map(link_text, values))
            elif getattr(self.base, f.name) != f.default:
                held += f", {name} {f.metadata['text'](getattr(self.base, f.name))}"
        if self.dropouts != NETWORK_AXES["dropouts"]:
            lrs += " × dropout " + ",".join(f"{p:g}" for p in self.dropouts)
        if self.batch_norms != NETWORK_AXES["batch_norms"]:
            lrs += " × batch norm " + ",".join(map(batch_norm_text, self.batch_norms))
        if self.convs != NETWORK_AXES["convs"]:
            depth = "convolutions " + "; ".join(self.convs) + " × " + depth
        sample = (f", random {self.sample} of {self.grid_size} configs" if self.sample else "") + held
        data = "" if self.base.dataset == "mnist" else f" on {self.base.data.title}"
        return (f"{depth} ({self.width_rule} width) × widths {','.join(map(str, self.widths))} × "
                f"{','.join(self.activations)} × init {inits} × lr {lrs}, {self.seeds} seed"
                f"{'s' * (self.seeds != 1)}, {self.epochs} epoch{'s' * (self.epochs != 1)}{sample}{data}: "
                f"{self.n_trials} trials")


# -- as a link -------------------------------------------------------------------------------------

# a link's parameter: its axis or setting (a setting axis's parameter is its field's `sweep.link`)
PARAMS = {"depths": "depths", "widths": "widths", "rule": "width_rule", "act": "activations",
          "init": "inits", "lr": "lrs", "seeds": "seeds", "epochs": "epochs", "sample": "sample",
          **{f.metadata["sweep"].link: f.metadata["sweep"].axis for f in TrainConfig.swept()},
          "drop": "dropouts", "bn": "batch_norms", "conv": "convs"}


def from_params(params) -> SweepSettings | None:
    """The settings a link's query parameters give (`?depths=1,2&widths=16,64&act=relu&seeds=2`),
    None when it has none; a ConfigError saying what was wrong otherwise. Unknown keys are ignored."""
    given = {field_: parse.last(params[k], 200) for k, field_ in PARAMS.items() if k in params}
    if not given:
        return None
    if "inits" in given:
        given["inits"] = given["inits"].split(",")
    return SweepSettings.from_dict(given)


def from_link(params) -> tuple[SweepSettings | None, list[str], list[str]]:
    """What a page makes of a link: the settings from its good values, one notice per value that
    could not be used (as share.decode gives Build's), and the keys of those values, for the page to
    take out of its address. None for settings when the link has none, or when its values, each good
    alone, are refused together (the notice then says why)."""
    try:
        return from_params(params), [], []
    except ConfigError:
        pass
    good, notices, bad = dict(params), [], []
    for k in PARAMS:
        if k in params:
            try:
                from_params({k: params[k]})
            except ConfigError as e:
                notices.append(f"Link value {k}={parse.last(params[k], 40)!r} was not used: {e} "
                               f"Using the default.")
                bad.append(k)
                del good[k]
    try:
        return from_params(good), notices, bad
    except ConfigError as e:
        together = [k for k in PARAMS if k in good]
        return None, [*notices, f"The link's sweep settings were not used together: {e} Using the "
                                f"page's defaults."], [*bad, *together]


def to_params(settings: SweepSettings) -> dict[str, str]:
    """Query parameters for `settings` (the inverse of from_params for what a page can choose)."""
    params = {"depths": ",".join(map(str, settings.depths)), "widths": ",".join(map(str, settings.widths)),
              "rule": settings.width_rule, "act": ",".join(settings.activations),
              "init": ",".join("default" if s is None else f"{s:g}" for s in settings.inits),
              "lr": ",".join(f"{lr:g}" for lr in settings.lrs), "seeds": str(settings.seeds),
              "epochs": str(settings.epochs)}
    if settings.sample:
        params["sample"] = str(settings.sample)
    for f in TrainConfig.swept():  # varied, or held at other than its default
        values = getattr(settings, f.metadata["sweep"].axis) or (getattr(settings.base, f.name),)
        if values != (f.default,):
            params[f.metadata["sweep"].link] = ",".join(map(link_text, values))
    if settings.dropouts != NETWORK_AXES["dropouts"]:
        params["drop"] = ",".join(f"{p:g}" for p in settings.dropouts)
    if settings.batch_norms != NETWORK_AXES["batch_norms"]:
        params["bn"] = ",".join(map(batch_norm_text, settings.batch_norms))
    if settings.convs != NETWORK_AXES["convs"]:
        params["conv"] = ";".join(settings.convs)
    return params
