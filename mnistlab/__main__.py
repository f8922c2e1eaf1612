"""The command line: train a network and save it, evaluate a saved one, or sweep many, on MNIST.

    python -m mnistlab train --hidden 128,64 --activation relu --epochs 5 --out lesson
    python -m mnistlab eval lesson
    python -m mnistlab sweep --depth 1,2 --hidden 16,64,256 --activation relu,sigmoid --seeds 2 --epochs 1
    python -m mnistlab class create "Year 10 B"     (and class challenge, submit, board, close: see class_cli)
    python -m mnistlab school --replicas 2 --port 8501

Only what a command needs is imported, once its arguments are read: `mnistlab --help` and a mistyped
command answer at once instead of waiting seconds for torch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from mnistlab import parse
from mnistlab.errors import ConfigError, LabError

THREADS_HELP = ("CPU threads for torch (default 1: at these layer sizes more threads gain little on an "
                "idle machine, and on a busy one they wait for each other and can make an epoch 10-100 "
                "times slower)")

DRY_RUN_IMAGES = 1000


def _one_line(text: str) -> str:
    """An error as one line: a newline or other control character typed into an argument is shown
    escaped (\\n), not echoed raw into the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: the shell shows what was wrong
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see --help)\n")


def _command(argv: list[str]) -> str | None:
    """The command `argv` names: its first word not an option (the top level has no option but -h)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with the flags of `command` only: the training settings' flags come from
    `TrainConfig`, whose module imports torch, so only `train` and `sweep` pay for them."""
    parser = _Parser(prog="mnistlab", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = commands.add_parser("train", help="train a network and print its test accuracy")
    e = commands.add_parser("eval", help="print a saved model's test loss, accuracy and per-class accuracy")
    s = commands.add_parser("sweep", help="train a grid (or random sample) of networks and compare them")
    k = commands.add_parser("class", help="a class challenge: create, challenge, submit, board, members, "
                                          "submissions, remove, close")
    commands.add_parser("school", help="run replicas of the app behind HAProxy, sharing PostgreSQL and the "
                                       "models folder (school --help)")
    if command == "train":
        _train_flags(t)
    elif command == "eval":
        e.add_argument("name", help="a model name in the models folder, or a path to a .safetensors file")
        e.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
        e.add_argument("--threads", default="1", help=THREADS_HELP)
    elif command == "sweep":
        _sweep_flags(s)
    elif command == "class":
        from mnistlab import class_cli

        class_cli.add_commands(k, _Parser)
    return parser


def _train_flags(t: argparse.ArgumentParser) -> None:
    from mnistlab import layers
    from mnistlab.train_config import TrainConfig

    t.add_argument("--hidden", default="128,64",
                   help='hidden layer sizes, e.g. 128,64 (default); "" for none (softmax regression, or a '
                        'CNN straight from its last pool to the output)')
    t.add_argument("--conv", default="", metavar="C:K[:P],...",
                   help="convolutions before the hidden layers, each channels:kernel[:padding] (padding 0 "
                        "unless given; stride 1), e.g. 8:5,16:5; each is followed by the activation and a "
                        "2×2 max pool (see --pool; or place pools yourself: 8:5,pool,16:5). Default: none, "
                        "an MLP")
    t.add_argument("--pool", default="2", choices=("2", "none"),
                   help="a 2×2 max pool after each convolution (2, the default), or none")
    t.add_argument("--activation", default="relu",
                   help="sigmoid, tanh or relu (default), or one per hidden layer, e.g. relu,tanh "
                        "(convolutions take the first)")
    t.add_argument("--dropout", default="0", metavar="P",
                   help=f"dropout after each hidden layer's activation: a probability from 0 (none, the "
                        f"default) to {layers.MAX_DROPOUT:g}, or one per hidden layer, e.g. 0.5,0.2")
    t.add_argument("--batch-norm", action="store_true",
                   help="batch norm in each hidden layer, between its Linear and its activation")
    t.add_argument("--seed", default="0", help="seed for the initial weights, and for the batch order unless "
                                               "--batch-seed is given (default 0)")
    t.add_argument("--zero-bias", action="store_true", help="start every bias at 0")
    t.add_argument("--weight-std", default=None, help="draw initial weights from normal(0, std) "
                                                      "instead of PyTorch's default")
    _config_flags(t, TrainConfig())
    t.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    t.add_argument("--threads", default="1", help=THREADS_HELP)
    t.add_argument("--out", default=None, help="save the trained model under this name in the models "
                                               "folder ($MNISTLAB_MODELS or ~/.mnistlab/models)")
    t.add_argument("--history", default=None, metavar="FILE.json",
                   help="write the training curves (each step's training loss and accuracy, each "
                        "validation check's), and each layer's learning dynamics (update ratios, "
                        "saturated or dead shares, loss at step 0) to this JSON file")
    t.add_argument("--dry-run", action="store_true",
                   help=f"a quick check: one epoch on {DRY_RUN_IMAGES:,} training images, validated on "
                        f"{DRY_RUN_IMAGES:,}, evaluated on the first {DRY_RUN_IMAGES:,} test images")


def _sweep_flags(s: argparse.ArgumentParser) -> None:
    from mnistlab import layers, sweep
    from mnistlab.train_config import TrainConfig

    s.add_argument("--depth", default="1,2",
                   help=f"numbers of hidden layers, 0 to {sweep.MAX_DEPTH} (default 1,2)")
    s.add_argument("--conv", default="none", metavar="STACK;...",
                   help=f"convolution stacks before the hidden layers, separated by ';', each as train's "
                        f"--conv takes it (a 2×2 max pool after each convolution), e.g. "
                        f'"none;8:5,16:5;32:3:1,64:3:1"; none: an MLP (the default); at most '
                        f"{sweep.MAX_CONV_STACKS}")
    s.add_argument("--hidden", default="16,64,256", help="layer widths (default 16,64,256)")
    s.add_argument("--width-rule", default="same", help="how a deeper network uses a width: same (default: "
                                                        "64-64-64) or halving (64-32-16)")
    s.add_argument("--activation", default="relu,sigmoid", help="sigmoid, tanh, relu (default relu,sigmoid)")
    s.add_argument("--dropout", default="0", metavar="P,...",
                   help=f"dropout probabilities, each in every hidden layer, 0 (none) to "
                        f"{layers.MAX_DROPOUT:g}; several to compare, e.g. 0,0.2,0.5 (default 0)")
    s.add_argument("--batch-norm", default="off", nargs="?", const="on", metavar="off|on|off,on",
                   help="batch norm in every hidden layer: off (default), on (also --batch-norm alone), "
                        "or off,on to compare networks without and with it")
    s.add_argument("--init", default="default", help="weight inits: default (PyTorch's) and/or normal "
                                                     "stds from Build's scale, e.g. default,0.1")
    s.add_argument("--lr", default="0.001", help="learning rates (default 0.001)")
    s.add_argument("--seeds", default="1",
                   help=f"weight seeds per config, 1 to {sweep.MAX_SEEDS} (default 1)")
    s.add_argument("--sample", default=None, help="train a random sample of this many configs, not the grid")
    s.add_argument("--sample-seed", default="0", help="which random sample (default 0)")
    # every trial's training settings; --lr above is an axis (epochs: 1 to MAX_TRIAL_EPOCHS per trial),
    # and so are these, given several values
    for axis, (name, _) in sweep.SETTING_AXES.items():
        f = TrainConfig.__dataclass_fields__[name]
        s.add_argument(f.metadata["flag"], dest=f"axis_{axis}", default=None, metavar=_metavar(f),
                       help=_with_default(f"{f.metadata['help']}; several, comma-separated, to compare",
                                          "all" if f.default is None else f.default))
    _config_flags(s, sweep.SweepSettings().base, skip=("lr", "early_stop", *(
        name for name, _ in sweep.SETTING_AXES.values())))
    s.add_argument("--engine", default="local",
                   help="local (default: this machine, a stack of trials on each core) or ray "
                        "(MNISTLAB_RAY_ADDRESS or RAY_ADDRESS, else a Ray instance started here)")
    s.add_argument("--json", default=None, help="write one record per trial to this file")
    s.add_argument("--threads", default=None,
                   help="cores to train on at once, a stack of trials on each at one torch thread "
                        "(default: all of this machine's)")


def _config_flags(parser: argparse.ArgumentParser, defaults, skip=()) -> None:
    """One flag per training setting (`TrainConfig`'s fields), with its help and this command's default."""
    for f in type(defaults).settings():
        if f.name not in skip:
            default = getattr(defaults, f.name)
            shown = ("all" if f.name == "train_images" else "off") if default is None else default
            parser.add_argument(f.metadata["flag"], dest=f"config_{f.name}", default=None,
                                metavar=_metavar(f), help=_with_default(f.metadata["help"], shown))


def _metavar(f) -> str:
    """What a setting's flag takes, named by the flag ("--lr LR"), not by where argparse keeps it."""
    return f.metadata["flag"].removeprefix("--").replace("-", "_").upper()


def _with_default(help: str, default) -> str:
    """`help` with "(default ...)" added, unless it already says its default in its own words."""
    if "(default" in help:
        return help
    return f"{help} (default {format(default, 'g') if isinstance(default, float) else default})"


def _config(args, defaults, **fixed):
    """`defaults` (a `TrainConfig`) with the training settings given on the command line."""
    given = {f.name: getattr(args, f"config_{f.name}") for f in type(defaults).settings()
             if getattr(args, f"config_{f.name}", None) is not None}
    return defaults.replace(**{**given, **fixed})


def _threads(value: str) -> int:
    cores = os.cpu_count() or 1
    return parse.whole("Threads", value, 1, cores)  # this machine's cores


def _use_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _duration(seconds: float) -> str:
    """"4.2 s", or "38 ms" under a second: a dry run trains in milliseconds, not in "0.0 s"."""
    return f"{seconds:.1f} s" if seconds >= 0.95 else f"{max(1, round(seconds * 1000))} ms"


class _ProgressBar:
    """One line on stderr, redrawn in place on a terminal; one line per epoch otherwise."""

    def __init__(self, stream=sys.stderr, width=30):
        self.stream, self.width = stream, width
        self.live = stream.isatty()
        self.validation = None  # the latest validation check

    def __call__(self, p):  # a train.Progress
        filled = round(self.width * p.fraction)
        self.validation = p.validation[-1] if p.validation else self.validation
        checked = (f"  validation loss {self.validation.loss:.3f}  accuracy {self.validation.accuracy:.1%}"
                   if self.validation is not None else "")
        line = (f"epoch {p.epoch}/{p.epochs} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{p.fraction:4.0%}  training loss {p.loss:.3f}  accuracy {p.accuracy:.1%}{checked}")
        if self.live:
            self.stream.write("\r" + line + ("\n" if p.epoch_end else ""))
        elif p.epoch_end:
            self.stream.write(line + "\n")
        self.stream.flush()


def cmd_train(args) -> None:
    from mnistlab.architecture import Architecture, Init, Network
    from mnistlab.train_config import TrainConfig

    net = Network(Architecture.parse(args.hidden, args.activation, args.dropout, args.batch_norm, args.conv,
                                     args.pool != "none"), Init(args.zero_bias, args.weight_std), args.seed)
    defaults = TrainConfig(batch_seed=net.seed)  # the batches follow --seed unless given
    quick = {"epochs": 1, "train_images": DRY_RUN_IMAGES, "validation": DRY_RUN_IMAGES}
    config = _config(args, defaults, **(quick if args.dry_run else {}))
    threads = _threads(args.threads)
    history_path = _history_path(args.history)
    # the arguments hold (checked without torch, which takes seconds to import): now train
    from mnistlab import data, dynamics, model_files, network, runs, splits

    dataset = config.data
    device = network.resolve_device(args.device)
    _use_threads(threads)
    if args.out is not None:
        model_files.check_name(args.out)  # before training, not after
    train_split, test_split = (data.load_split(train, dataset=dataset) for train in (True, False))
    if args.dry_run:
        test_split = test_split.first(DRY_RUN_IMAGES)
    arch = net.arch
    learn, validation = splits.training_splits(train_split, config)  # checked before training
    print(f"Training {arch.label()} ({arch.n_parameters:,} parameters, init {net.init.label()}) with "
          f"{config.label()} on {device}: {len(learn):,} training images, {len(validation):,} validation",
          file=sys.stderr)
    run = runs.run(net, config, train_split, test_split, device, callback=_ProgressBar(),
                   record_dynamics=True)  # ~5% of the time: the loss at init, and why a run failed
    e, h = run.evaluation, run.history
    print(f"trained in {_duration(run.seconds)}" + (f"; stopped early after epoch {len(h.epoch_ends)}"
                                                if h.patience_ran_out else ""))
    noisy = f", {config.label_noise:.0%} of their labels changed" if config.label_noise else ""
    print(f"train accuracy: {run.train_evaluation.accuracy:.2%} (on the {len(learn):,} images it learned "
          f"from{noisy})")
    kept = (f"; kept epoch {h.kept_epoch}'s weights" if h.kept_epoch is not None else "")
    print(f"validation accuracy: {run.validation.accuracy:.2%} (validation loss {run.validation.loss:.4f}, "
          f"{len(validation):,} images; lowest validation loss at epoch {run.best_epoch}{kept})")
    print(f"test accuracy: {e.accuracy:.2%} (held out, not used to choose; test loss {e.loss:.4f}, "
          f"{e.n_misclassified:,} of {len(test_split):,} wrong)")
    verdict = dynamics.diagnosis(run.dynamics, run.history.loss, e.accuracy, config.lr)
    if run.dynamics is not None:
        print(f"loss at step 0: {run.dynamics.init_loss:.3f} "
              f"(ten equal guesses: {dynamics.EXPECTED_INIT_LOSS:.3f})")
    if verdict:
        print(verdict)
    if history_path is not None:
        history_path.write_text(json.dumps(dynamics.json_safe(_history(run, verdict)), allow_nan=False))
        print(f"history written to {history_path}")
    if args.out is not None:
        path = model_files.save(model_files.SavedModel.from_run(run), args.out)
        print(f"saved to {path}")


def _history_path(name: str | None) -> Path | None:
    if name is None:
        return None
    path = Path(name).expanduser()
    if path.is_dir() or not path.parent.is_dir():
        raise ConfigError(f"--history needs a file name in an existing folder, e.g. run.json; got {name!r}.")
    return path


def _history(run, verdict: str | None) -> dict:
    """The run's curves, per step, and its learning dynamics (a `runs.Run`'s): what --history writes."""
    h = run.history
    return {"network": run.arch.label(), "architecture": run.arch.to_dict(), "init": run.init.to_dict(),
            "seed": run.seed, "training": run.config.to_dict(), "steps_per_epoch": h.steps_per_epoch,
            "epoch_ends": h.epoch_ends, "stopped_early": h.stopped_early,
            "loss": h.loss, "accuracy": h.accuracy,  # one per step: the batch's
            "validation": {"step": h.validation_steps, "loss": h.validation_loss,  # one per check
                           "accuracy": h.validation_accuracy, "images": h.validation_images,
                           # on every validation image, at each epoch's end
                           "epoch_loss": [e[0] for e in h.epoch_validation_loss],
                           "epoch_accuracy": [e[0] for e in h.epoch_validation_accuracy]},
            "best_epoch": run.best_epoch, "kept_epoch": h.kept_epoch, "early_stopped": h.patience_ran_out,
            "train_accuracy": run.train_evaluation.accuracy, "train_loss": run.train_evaluation.loss,
            "validation_loss": run.validation.loss, "validation_accuracy": run.validation.accuracy,
            "test_loss": run.evaluation.loss, "test_accuracy": run.evaluation.accuracy,
            "dynamics": run.dynamics.to_json() if run.dynamics is not None else None,
            "diagnosis": verdict}


def cmd_eval(args) -> None:
    from mnistlab import data, model_files, network, train

    device = network.resolve_device(args.device)
    _use_threads(_threads(args.threads))
    path = Path(args.name)
    named = path.suffix == model_files.SUFFIX and path.exists()
    saved = model_files.load_file(path) if named else model_files.load(args.name)
    e = train.evaluate(saved.model(device), data.load_split(False, dataset=saved.dataset),
                       normalization=saved.normalization)
    trained = f", trained with {saved.config.label()}" if saved.config else ""
    print(f"{saved.name}: {saved.arch.label()}{trained}")
    print(f"test loss: {e.loss:.4f}")
    print(f"test accuracy: {e.accuracy:.2%} (held out, not used to choose)")
    print("per-class test accuracy:")
    for name, acc in zip(saved.dataset.classes, e.per_class_accuracy):
        print(f"  {name}: {acc:.2%}")
    m = saved.metrics
    if "validation_accuracy" in m:  # as it was trained: what it was chosen by
        said = (("best_epoch", "lowest validation loss at"), ("kept_epoch", "weights kept from"))
        epochs = "".join(f", {what} epoch {m[k]}" for k, what in said if k in m)
        print(f"when trained: validation accuracy {m['validation_accuracy']:.2%}"
              + (f", train accuracy {m['train_accuracy']:.2%}" if "train_accuracy" in m else "") + epochs)


def cmd_sweep(args) -> None:
    from mnistlab import sweep

    settings = sweep.SweepSettings(
        depths=args.depth, widths=args.hidden, width_rule=args.width_rule, activations=args.activation,
        dropouts=args.dropout, batch_norms=args.batch_norm, convs=args.conv,
        inits=args.init.split(","), lrs=args.lr, seeds=args.seeds, sample=args.sample,
        sample_seed=args.sample_seed, base=_config(args, sweep.SweepSettings().base),
        **{axis: getattr(args, f"axis_{axis}") for axis in sweep.SETTING_AXES
           if getattr(args, f"axis_{axis}") is not None})
    cores = _threads(args.threads if args.threads is not None else os.cpu_count() or 1)
    out = Path(args.json) if args.json else None
    if out is not None and not out.parent.is_dir():
        raise ConfigError(f"--json: the folder {out.parent} does not exist.")
    # the arguments hold (checked without torch, which takes seconds to import): now train
    import torch

    from mnistlab import data, jobs
    from mnistlab.sweep_db import COMMAND_LINE, SweepDatabase
    from mnistlab.sweep_run import Sweep

    # a stack per core, each at one torch thread: a training thread at more runs slower here
    torch.set_num_threads(1)
    dataset = settings.base.data
    train_split, test_split = (data.load_split(train, dataset=dataset) for train in (True, False))
    engine = jobs.make_engine(args.engine, jobs.ray_address(), local_slots=cores)
    sweep_db = SweepDatabase()
    try:
        bar = _SweepBar(settings.n_trials)
        run = Sweep(settings, train_split, test_split, sweep_db, saved_for=COMMAND_LINE,
                    queue=jobs.Queue(engine.slots), engine=engine, on_trial=lambda record: bar(run))
        print(f"Sweep {run.id}: {settings.label()}, on the {engine.name} engine ({engine.slots} at once); "
              f"stored in {sweep_db.where}; on the app: /explore?sweep={run.id}", file=sys.stderr)
        if run.resumed:
            print(f"{run.resumed:,} of {settings.n_trials:,} trials were trained before; training the "
                  f"{len(run.missing):,} missing", file=sys.stderr)
        bar(run)
        try:
            run.start()
            while not run.wait(0.5):
                pass
        except KeyboardInterrupt:
            run.stop()
            run.wait()
            raise
        if run.error is not None:
            raise run.error
    finally:
        engine.close()
        sweep_db.close()
    rows = run.summary()
    print(_sweep_table(rows, settings.seeds, settings))
    if out is not None:
        records = [{k: v for k, v in r.items() if k != "key"} for r in run.records]
        out.write_text(json.dumps(records, indent=1))
        print(f"{len(run.records):,} trials written to {out}")


class _SweepBar:
    """"17 of 36 trained, about 40 s left" on stderr, redrawn in place on a terminal."""

    def __init__(self, total: int, stream=sys.stderr, width=30):
        self.total, self.stream, self.width, self.live = total, stream, width, stream.isatty()

    def __call__(self, run) -> None:
        p = run.progress()
        filled = round(self.width * p.finished / max(1, p.total))
        line = f"[{'#' * filled}{'.' * (self.width - filled)}] {p.text()}"
        end = "\n" if p.finished == p.total else ""
        self.stream.write("\r" + line + end if self.live else line + "\n")
        self.stream.flush()


def _sweep_table(rows: list[dict], seeds: int, settings=None) -> str:
    """Best first by validation accuracy; * marks the Pareto front (no config is more accurate on
    validation with as few parameters); test accuracy beside it, never used to choose. A network's
    dropout and batch norm are in its name ("784-64-10 relu, dropout 0.2, batch norm"). `settings`:
    the `sweep.SweepSettings`, whose varied training settings get a column each."""
    from mnistlab import sweep

    spread = seeds > 1
    named = max([28, *(len(r["network"]) + 2 for r in rows)])
    varied = [(axis, name) for axis, (name, _) in sweep.SETTING_AXES.items()
              if settings is not None and getattr(settings, axis)]
    extra = "".join(f"{name.replace('_', ' '):>14}" for _, name in varied)
    head = (f"{'':2}{'network':<{named}}{'init':<18}{'lr':>8}{extra}{'parameters':>12}{'train':>9}"
            f"{'validation':>{18 if spread else 12}}{'best epoch':>12}{'test':>9}{'seconds':>9}")
    lines = [head, "-" * len(head)]

    def pct(x):
        return "—" if x is None else f"{x:.2%}"

    for r in rows:
        val = pct(r["validation_accuracy"]) + (f" ±{r['validation_std']:.2%}" if spread and
                                               r["validation_accuracy"] is not None else "")
        values = "".join(f"{'all' if r.get(name) is None else format(r[name], 'g'):>14}"
                         for _, name in varied)
        best = "—" if r["best_epoch"] is None else str(r["best_epoch"])
        lines.append(f"{'*' if r['pareto'] else ' ':2}{r['network']:<{named}}{r['init']:<18}"
                     f"{r['lr']:>8g}{values}"
                     f"{r['parameters']:>12,}{pct(r['train_accuracy']):>9}{val:>{18 if spread else 12}}"
                     f"{best:>12}{pct(r['test_accuracy']):>9}{r['seconds']:>9.2f}")
    lines.append("Ranked by validation accuracy; test (held out) is shown, never used to choose. "
                 "* the Pareto front: no other network is more accurate on validation with as few parameters"
                 + (f"; ± the standard deviation over {seeds} seeds" if spread else ""))
    return "\n".join(lines)


def cmd_class(args) -> None:
    from mnistlab import class_cli

    class_cli.run(args)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _command(argv) == "school":  # its own flags (mnistlab/school.py)
        from mnistlab import school

        return school.main(argv[argv.index("school") + 1:])
    args = _parser(_command(argv)).parse_args(argv)
    started = time.perf_counter()
    try:
        {"train": cmd_train, "eval": cmd_eval, "sweep": cmd_sweep, "class": cmd_class}[args.command](args)
    except LabError as e:
        print(f"mnistlab: error: {_one_line(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nmnistlab: interrupted after {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
