"""MNIST Lab's benchmarks: what users feel, against the lesson's pipeline and the hardware's limit.

    python -m bench            # the full run (about 10 minutes on 2 cores)
    python -m bench --quick    # a smoke check: parts of epochs, 1 repetition; the ratios are rough

Every figure is a ratio within one run (cases interleaved, median of the repetitions after a
warm-up), printed as a table and written as JSON to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench import app_start, cnn, drawing, dynamics, pages, pipelines, sweep, validation
from bench.measure import load_average, machine

RESULTS = Path(__file__).parent / "results"
ITEMS = ("pipelines", "drawing", "app", "dynamics", "validation", "pages", "sweep", "sweep_dropout", "cnn",
         "cnn_sweep")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke check: parts of epochs, 1 repetition")
    parser.add_argument("--reps", type=int, help="repetitions after the warm-up (default 3; 1 with --quick)")
    parser.add_argument("--only", choices=ITEMS, action="append", help="run only these groups")
    parser.add_argument("--threads", type=int,
                        help="torch intra-op threads here (default: torch's choice); 1 keeps timings stable "
                             "on a machine that other jobs keep busy")
    parser.add_argument("--out", type=Path, default=RESULTS / "latest.json", help="where to write the JSON")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    only = args.only or ITEMS
    if args.threads:
        torch.set_num_threads(args.threads)

    report = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "quick": args.quick, "reps": reps,
              "machine": machine(), "load_average_before": load_average()}
    start = time.perf_counter()
    if "pipelines" in only:
        report.update(pipelines.run(reps, args.quick))
    if "drawing" in only:
        print("5. drawing to prediction")
        report["drawing"] = drawing.run(reps, args.quick)
    if "dynamics" in only:
        print("8. an epoch with each layer's dynamics recorded, and without")
        report["dynamics"] = dynamics.run(reps, args.quick)
    if "validation" in only:
        print("10. an epoch with validation checked four times, and without; Lesson part 2 step by step")
        report["validation"] = validation.run(reps, args.quick)
    if "sweep" in only:
        report.update(sweep.run(reps, args.quick))
    if "sweep_dropout" in only:
        report.update(sweep.run_dropout(reps, args.quick))
    if "cnn" in only:
        report.update(cnn.run(reps, args.quick))
    if "cnn_sweep" in only:
        report.update(cnn.run_sweep(reps, args.quick))
    if "app" in only:
        print("6. app start, 7. server memory")
        report.update(app_start.run(reps, args.quick))
    if "pages" in only:
        print("pages: each page's script run on a real server, one visitor")
        report["pages"] = pages.run(reps, args.quick)
    report["load_average_after"] = load_average()
    report["seconds"] = time.perf_counter() - start

    args.out.parent.mkdir(parents=True, exist_ok=True)
    measured = report
    if args.only and args.out.exists():  # a partial run updates its items and keeps the others'
        try:
            previous = json.loads(args.out.read_text())
        except ValueError:
            previous = {}
        runs = previous.get("partial_runs", [])
        runs.append({k: report[k] for k in ("date", "quick", "reps", "machine", "load_average_before",
                                            "load_average_after", "seconds")} | {"items": only})
        report = {**previous, **{k: v for k, v in report.items() if k not in runs[-1]},
                  "partial_runs": runs}
    args.out.write_text(json.dumps(report, indent=1))
    print()
    print(table(measured))
    print(f"\nJSON: {args.out}")
    return 0


def _fraction(ratio: float) -> str:
    return f"1/{1 / ratio:.0f}" if ratio < 1 else f"{ratio:.1f}× (slower)"


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _sweep_row(what: str, x: dict) -> tuple:
    """Bench 9's and 9d's row: stacked against one by one, and how far apart their accuracies are."""
    met = x["ratio"] >= x["goal"] and x["max_difference_points"] <= x["goal_points"]
    return (what, f"one by one {x['alone_per_minute']:.0f}", f"stacked, {x['cores']} cores "
            f"{x['stacked_per_minute']:.0f} (accuracy within {x['max_difference_points']:.2f} pt, "
            f"{x.get('identical_accuracies', '?')} identical)", f"{x['ratio']:.1f}",
            f"≥ {x['goal']:g}, ± {x['goal_points']} pt", _met(met))


def table(r: dict) -> str:
    """The results as a Markdown table (the README shows the latest one)."""
    rows = []
    for key, what in (("epoch", "1. training epoch, batch 64"), ("data", "2. data only, one epoch"),
                      ("eval", "3. test-set evaluation")):
        if key in r:
            x = r[key]
            fast, ratio = f"{x['fast_s']:.3f} s", _fraction(x["ratio"])
            if "floor_s" in x:  # the matmuls alone at the machine's measured rate: no faster is possible
                fast += f" (matmuls alone {x['floor_s']:.3f} s)"
                ratio += f" (floor {_fraction(x['floor_s'] / x['lesson_s'])})"
            rows.append((what, f"{x['lesson_s']:.2f} s", fast, ratio,
                         f"≤ 1/{1 / x['goal']:.0f}", _met(x["ratio"] <= x["goal"])))
    for batch in (64, 1024):
        x = r.get(f"hardware_{batch}")
        if x:
            rows.append((f"4. epoch ÷ matmul time at batch {batch}",
                         f"ideal {x['ideal_s']:.2f} s ({x['measured_gflops']:.0f} GFLOP/s)",
                         f"{x['epoch_s']:.2f} s ({x['achieved_gflops']:.0f} GFLOP/s)",
                         f"{x['ratio']:.1f}", f"≤ {x['goal']}", _met(x["ratio"] <= x["goal"])))
    d = r.get("drawing")
    if d and "skipped" not in d:
        for name in ("alone", "training"):
            x = d[name]
            rows.append((f"5. draw → prediction, {'alone' if name == 'alone' else 'while training'}",
                         f"p50 {x['p50_ms']:.2f} ms", f"p99 {x['p99_ms']:.2f} ms", "",
                         f"p99 ≤ {x['goal_p99_ms']} ms", _met(x["p99_ms"] <= x["goal_p99_ms"])))
    elif d:
        rows.append(("5. draw → prediction", d["skipped"], "", "", "", ""))
    if "start" in r:
        x = r["start"]
        rows.append(("6. app start to first page drawn", f"import torch {x['import_torch_s']:.2f} s",
                     f"app {x['app_s']:.2f} s", f"{x['ratio']:.1f}", f"≤ {x['goal']}",
                     _met(x["ratio"] <= x["goal"])))
    if "memory" in r:
        x = r["memory"]
        rows.append(("7. server peak RSS", f"data loaded {x['peak_mb_first_page']:.0f} MB",
                     f"every page {x['peak_mb_every_page']:.0f} MB", "", f"≤ {x['goal_mb']} MB",
                     _met(max(x["peak_mb_first_page"], x["peak_mb_every_page"]) <= x["goal_mb"])))
    if "dynamics" in r:
        x = r["dynamics"]
        rows.append(("8. epoch with dynamics recorded ÷ without, batch 64", f"without {x['without_s']:.3f} s",
                     f"with {x['with_s']:.3f} s", f"{x['ratio']:.2f}", f"≤ {x['goal']:.2f}",
                     _met(x["ratio"] <= x["goal"])))
    if "sweep" in r:
        x = r["sweep"]
        rows.append(_sweep_row(f"9. sweep throughput, {x['trials']} trials (trial-epochs per minute)", x))
        if x.get("app_slots", x["cores"]) != x["cores"]:
            rows.append((f"9b. the same sweep in the app ({x['app_slots']} slot: a core kept for pages)",
                         "", "", f"{x['app_ratio']:.1f}", "", ""))
        if "small_s" in x:
            for what, est, took in ((f"{x['small_trials']} trials", x["small_estimate_s"], x["small_s"]),
                                    (f"{x['trials']} trials", x["app_estimate_s"], x["app_s"])):
                ratio = took / est
                met = _met(1 / x["goal_estimate"] <= ratio <= x["goal_estimate"])
                rows.append((f"9c. Explore's estimate, {what} (the app's slots)", f"said {est:.1f} s",
                             f"took {took:.1f} s", f"{ratio:.2f}", f"1/{x['goal_estimate']:g} to "
                             f"{x['goal_estimate']:g}", met))
    if "sweep_dropout" in r:
        x = r["sweep_dropout"]
        rows.append(_sweep_row(f"9d. sweep throughput with dropout {x['dropout']:g}, {x['trials']} trials",
                               x))
    if "validation" in r:
        x = r["validation"]
        rows.append(("10. epoch with validation checked 4× ÷ without, batch 64",
                     f"without {x['without_s']:.3f} s", f"with {x['with_s']:.3f} s", f"{x['ratio']:.2f}",
                     f"≤ {x['goal']:.2f}", _met(x["ratio"] <= x["goal"])))
        if "slowest_step_s" in x:
            rows.append((f"10b. Lesson part 2, its slowest step (step {x['slowest_step']})", "",
                         f"{x['slowest_step_s']:.1f} s", "", f"≤ {x['step_goal_s']:g} s",
                         _met(x["slowest_step_s"] <= x["step_goal_s"])))
    if "cnn" in r:
        x = r["cnn"]
        rows.append((f"11. CNN epoch ({x['parameters']:,} parameters) ÷ plain PyTorch, same tensors",
                     f"plain {x['plain_s']:.2f} s (channels_last {x['channels_last_s']:.2f} s)",
                     f"{x['app_s']:.2f} s", f"{x['ratio_plain']:.2f}", f"≤ {x['goal_plain']:.2f}",
                     _met(x["ratio_plain"] <= x["goal_plain"])))
        rows.append(("11b. CNN epoch ÷ the lesson's DataLoader pipeline", f"lesson {x['lesson_s']:.2f} s",
                     f"{x['app_s']:.2f} s", _fraction(x["ratio_lesson"]), "", ""))
        rows.append(("11c. CNN multiply-adds a second ÷ fp32 matmul rate",
                     f"matmul {x['matmul_gflops'] / 2:.1f} GMAC/s", f"{x['achieved_gmacs']:.2f} GMAC/s",
                     f"{x['achieved_gmacs'] / (x['matmul_gflops'] / 2):.2f}", "", ""))
    if "cnn_sweep" in r:
        x = r["cnn_sweep"]
        rows.append((f"11d. CNN sweep ÷ its {x['trials']} trials one by one",
                     f"one by one {x['alone_s']:.1f} s",
                     f"swept {x['swept_s']:.1f} s (within {x['max_difference_points']:.2f} pt, "
                     f"{x['identical']} identical)", f"{x['ratio']:.2f}", f"≥ {x['goal']:g}",
                     _met(x["ratio"] >= x["goal"] and x["max_difference_points"] <= 0.3)))
    if "accuracy_guard" in r:
        x = r["accuracy_guard"]
        lesson = ", ".join(f"{a:.2%}" for a in x["lesson"])
        fast = ", ".join(f"{a:.2%}" for a in x["fast"])
        rows.append(("accuracy after 1 epoch (seeds " + ",".join(map(str, x["seeds"])) + ")",
                     f"lesson {lesson}", f"fast {fast}", f"{x['difference_points']:+.2f} pt",
                     f"± {x['goal_points']} pt",
                     _met(abs(x["difference_points"]) <= x["goal_points"]) if x["meaningful"] else "(quick)"))
    if "pages" in r:
        x = r["pages"]
        for name, case in x["cases"].items():  # the goal is for warm runs; edits are shown beside them
            warm = name.endswith("warm rerun")
            goal, met = (f"≤ {x['goal_ms']} ms", _met(case["p50_ms"] <= x["goal_ms"])) if warm else ("", "")
            rows.append((f"pages: {name}", "", f"p50 {case['p50_ms']:.0f} ms", "", goal, met))
    head = ("what", "lesson / reference", "MNIST Lab", "ratio", "goal", "met")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    m = r["machine"]
    lines.append("")
    quick = " (quick)" if r["quick"] else ""
    threads = f"{m['torch_threads']} thread" + ("s" if m["torch_threads"] != 1 else "")
    lines.append(f"{r['date']}, {m['cpu']}, {m['cores']} cores, torch {m['torch']} "
                 f"({threads}), {r['reps']} repetitions after a warm-up{quick}; "
                 f"load average {r['load_average_before']} before, {r['load_average_after']} after.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
