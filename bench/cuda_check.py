"""The GPU paths, checked in one short script for a machine that has one (none has run them yet):

    python -m bench.cuda_check                 # on a CUDA machine: a few minutes at most
    python -m bench.cuda_check --device cpu    # the same checks here, to try the script itself

1. `runs.run` on the device: one epoch of the lesson's network, against the same run on the CPU.
2. Stacked training on the device: a stack of ReLU, tanh and sigmoid networks, each member against
   its own `runs.run` on the device (the sweep's 0.3-point bar).
3. The dynamics recorder on the device: every recorded number finite, the step-0 loss near ln 10.
4. Sweep throughput on the device: bench 9's grid, stacked against one by one (no goal: a figure).

Prints one line per check and exits 1 if any fails, 2 if the device is not there.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from bench.sweep import SETTINGS
from mnistlab import data, network, runs, stacked, sweep, sweep_run
from mnistlab.errors import ConfigError
from mnistlab.train_config import TrainConfig

POINTS = 0.3  # a stacked member against its own run, as the sweep promises
CPU_POINTS = 0.5  # the device's run against the CPU's: other kernels round differently


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cuda_check", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="the device to check (default cuda)")
    parser.add_argument("--images", type=int, default=12_000, help="training images for checks 2 and 3")
    args = parser.parse_args(argv)
    try:
        device = network.resolve_device(args.device)
    except ConfigError as e:
        print(f"cuda_check: {e}")
        return 2
    print(f"checking {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}")
    train_split, test_split = data.load_split(True), data.load_split(False)
    failed = []

    def report(name: str, ok: bool, detail: str) -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        if not ok:
            failed.append(name)

    # 1. one training on the device, and on the CPU
    arch, config = network.Architecture((128, 64), "relu"), TrainConfig(epochs=1)
    on_device = runs.run(network.Network(arch, network.Init(), 0), config, train_split, test_split, device)
    on_cpu = runs.run(network.Network(arch, network.Init(), 0), config, train_split, test_split, "cpu")
    gap = abs(on_device.accuracy - on_cpu.accuracy) * 100
    report("1. runs.run", gap <= CPU_POINTS and on_device.accuracy > 0.9,
           f"{on_device.accuracy:.2%} on {device.type} in {on_device.seconds:.2f} s, {on_cpu.accuracy:.2%} "
           f"on the CPU in {on_cpu.seconds:.2f} s ({gap:.2f} points apart, bar {CPU_POINTS})")

    # 2. a stack of mixed activations on the device, each member against its own run there
    few = config.replace(train_images=args.images)
    trials = [sweep.Trial(network.Network(network.Architecture((64,), a), network.Init(), seed), few)
              for a in ("relu", "tanh", "sigmoid") for seed in (0, 1)]
    together = stacked.train_group(trials, train_split, test_split, device)
    gaps = [abs(r.test_accuracy - runs.run(t.network, t.config, train_split, test_split,
                                           device).accuracy) * 100 for t, r in zip(trials, together)]
    report("2. stacked training", max(gaps) <= POINTS,
           f"{len(trials)} networks, each within {max(gaps):.2f} points of its own run (bar {POINTS})")

    # 3. the recorder on the device
    recorded = runs.run(network.Network(arch, network.Init(), 0), few, train_split, test_split, device,
                        record_dynamics=True)
    table, start = recorded.dynamics.table, recorded.dynamics.init_loss
    report("3. dynamics", table.numel() > 0 and bool(torch.isfinite(table).all())
           and abs(start - math.log(10)) < 0.1,
           f"{table.shape[0]} steps × {table.shape[1]} numbers recorded, all finite; loss at step 0 "
           f"{start:.3f} (ln 10 = 2.303)")

    # 4. bench 9's grid on the device: stacks against one by one
    settings = sweep.SweepSettings.of(**SETTINGS)
    grid = settings.trials()
    t0 = time.perf_counter()
    for group in sweep_run.plan(grid):
        stacked.train_group(group, train_split, test_split, device)
    stacked_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in grid:
        runs.run(t.network, t.config, train_split, test_split, device)
    alone_s = time.perf_counter() - t0
    report("4. sweep throughput", True, f"{len(grid)} trials: stacked {stacked_s:.1f} s, one by one "
                                        f"{alone_s:.1f} s, {alone_s / stacked_s:.1f}x")
    print("all checks passed" if not failed else f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
