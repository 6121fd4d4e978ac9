"""Learning curves (issue #13): entity F1 against the number of labelled sentences, for the package's best
supervised model, its semi-supervised stages and the feature-CRF reference, over seeds.

    python -m examples.learning_curve                                   # 256 … 2,560 labelled, seeds 1-3
    python -m examples.learning_curve --sizes 256 2560 --seeds 1 --methods feature_crf bert_crf

Every size keeps the seed's test part (the split draws test first, then the labelled sentences: a smaller
labelled part is a prefix of a larger one; sizes beyond the protocol's 2,560 take the sentences that would
otherwise be validation and unlabelled). For each (size, seed) the supervised `bert_crf` run is trained
once and is the starting point of the stages: the data-distribution KL of seed 001, self-training with
uncertainty (`config/bert_crf_self_training.yaml`) and its control, which spends the same steps on
labelled batches instead (`config/bert_crf_self_training_control.yaml`). A self-training student is
re-initialised, so the stage gets as many pairs as the teacher had supervised steps
(`training.epochs` · ceil(labelled / batch size)).

    python -m examples.learning_curve --min-steps 1600 --output results/learning_curve_min_steps \
        --stage-set semi_supervised.self_training.student=continue --stage-set semi_supervised.pairs=800

trains every supervised run for at least 1,600 steps (200 epochs at 256 labelled sentences) under run
names ending in `_min1600`, and overrides keys of the semi-supervised runs only (after the pairs above).

Writes `results/learning_curve.md`, `.csv` and `.png`, and every run's numbers in
`results/learning_curve/runs.csv`; a (method, size, seed) already there is not run again, so an
interrupted curve resumes (`--fresh` starts over). A supervised run already trained under its name is
evaluated, not retrained.
"""
import argparse
import math
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from examples.common import (METRICS, add_comparison_arguments, evaluate_trained, exit_on_error, feature_crf_report,
                             git_commit, invocation, mean_std, read_records, train_and_evaluate)

FEATURE_CRF = "feature_crf"
SUPERVISED = "bert_crf"
# method → (config file, shown as); the stages start from the supervised run of the same size and seed.
METHODS = {
    FEATURE_CRF: (None, "reference: feature CRF (CRFsuite)"),
    SUPERVISED: ("config/bert_crf.yaml", "bert_crf (supervised)"),
    "bert_crf_kl": ("config/bert_crf_data_dist_kl.yaml", "+ data-distribution KL (seed 001)"),
    "bert_crf_self_training": ("config/bert_crf_self_training.yaml", "+ self-training with uncertainty"),
    "bert_crf_self_training_control": ("config/bert_crf_self_training_control.yaml",
                                       "control: the same steps on labelled batches"),
}
SELF_TRAINING = ("bert_crf_self_training", "bert_crf_self_training_control")


def run_name(method: str, labelled: int, seed: int, min_steps: int = 0) -> str:
    return f"lc_{method}_n{labelled}_seed{seed}" + (f"_min{min_steps}" if min_steps else "")


def model_overrides(method: str, labelled: int, seed: int, extra: Sequence[str], min_steps: int = 0,
                    stage_extra: Sequence[str] = ()) -> List[str]:
    """The overrides of a model method's config file (`METHODS`) for its run at one size and seed. The
    supervised run trains for `training.epochs` epochs, raised to reach at least `min_steps` steps; the
    stages also get `stage_extra`."""
    from ner.config import load_config

    config_file = METHODS[method][0]
    overrides = [f"run_name={run_name(method, labelled, seed, min_steps)}", f"split.labelled_size={labelled}",
                 f"split.seed={seed}", f"training.seed={seed}", *extra]
    if min_steps:
        training = load_config(config_file, overrides).training
        overrides.append(f"training.epochs={max(training.epochs, math.ceil(min_steps / steps_per_epoch(labelled, training)))}")
    if method != SUPERVISED:
        overrides.append(f"semi_supervised.init_run={run_name(SUPERVISED, labelled, seed, min_steps)}")
    if method in SELF_TRAINING:
        training = load_config(config_file, overrides).training
        overrides.append(f"semi_supervised.pairs={training.epochs * steps_per_epoch(labelled, training)}")
    if method != SUPERVISED:
        overrides += stage_extra  # last, so that they win
    return overrides


def run_method(method: str, labelled: int, seed: int, extra: Sequence[str], min_steps: int = 0,
               stage_extra: Sequence[str] = ()):
    """`(EvaluationReport, seconds)` of one method at one size and seed (`model_overrides`)."""
    if method == FEATURE_CRF:
        return feature_crf_report(seed, [f"split.labelled_size={labelled}"])
    from ner.config import load_config

    config_file, overrides = METHODS[method][0], model_overrides(method, labelled, seed, extra, min_steps, stage_extra)
    if method == SUPERVISED and (load_config(config_file, overrides).run_dir() / "weights").is_dir():
        evaluation, seconds = evaluate_trained(config_file, overrides)
    else:
        evaluation, seconds = train_and_evaluate(config_file, overrides)
    return evaluation.report, seconds


def steps_per_epoch(labelled: int, training) -> int:
    return math.ceil(labelled / training.batch_size)


def write_tables(output: Path, rows: List[Dict], command: str) -> str:
    """Writes `learning_curve.{csv,md,png}` from the runs so far; returns the Markdown."""
    from ner.reporting import write_csv
    from ner.utils import write_text_atomic

    write_csv(output / "learning_curve" / "runs.csv", rows)
    sizes = sorted({row["labelled"] for row in rows})
    methods = [m for m in METHODS if any(row["method"] == m for row in rows)]
    summary, lines = [], []
    for labelled in sizes:
        for method in methods:
            runs = [row for row in rows if row["method"] == method and row["labelled"] == labelled]
            if not runs:
                continue
            summary.append({"method": method, "labelled": labelled, "seeds": len(runs),
                            **{f"{m}_mean": float(np.mean([r[m] for r in runs])) for m in METRICS},
                            **{f"{m}_std": float(np.std([r[m] for r in runs], ddof=1)) if len(runs) > 1 else 0.0
                               for m in METRICS}})
            cells = " | ".join(mean_std([100 * r[m] if m.startswith("acc") else r[m] for r in runs]) for m in METRICS)
            lines.append(f"| {labelled:,} | {METHODS[method][1]} | {len(runs)} | {cells} |")
    write_csv(output / "learning_curve.csv", summary)
    plot(output / "learning_curve.png", summary, methods)
    markdown = "\n".join([
        "# Learning curves: entity F1 against labelled sentences (seed-001 protocol)",
        "",
        f"Produced by `python -m examples.learning_curve` (last invocation: `{command}`; commits "
        f"{', '.join(sorted({str(row.get('commit', '')) for row in rows}))}, per run in `learning_curve/runs.csv`). "
        "Each seed draws its own split (9,600 test sentences, the same at every size; the labelled part is the "
        "first N sentences after them, so a smaller part is a prefix of a larger one and 2,560 is the protocol's) "
        "and initialisation. Accuracy and accuracy without O in %, mean token F1 "
        "over the 9 classes, strict entity F1 (IOB2): mean ± sample std over seeds.",
        "",
        "| labelled | method | seeds | accuracy % | accuracy without O % | mean F1 | entity F1 |",
        "|---|---|---|---|---|---|---|",
        *lines,
        "",
        "Entity F1 by size (mean ± std over seeds):",
        "",
        *entity_f1_table(summary, methods),
        "",
        "![entity F1 against labelled sentences](learning_curve.png)",
        "",
    ])
    write_text_atomic(output / "learning_curve.md", markdown)
    return markdown


def entity_f1_table(summary: List[Dict], methods: Sequence[str]) -> List[str]:
    """Markdown lines: a row per labelled size, a column per method, entity F1 as "mean ± std"."""
    cells = {(row["labelled"], row["method"]): f"{row['entity_f1_mean']:.4f} ± {row['entity_f1_std']:.4f}"
             for row in summary}
    sizes = sorted({row["labelled"] for row in summary})
    return ["| labelled | " + " | ".join(METHODS[m][1] for m in methods) + " |",
            "|---|" + "---|" * len(methods),
            *(f"| {size:,} | " + " | ".join(cells.get((size, m), "—") for m in methods) + " |" for size in sizes)]


def plot(path: Path, summary: List[Dict], methods: Sequence[str]) -> None:
    """Entity F1 (mean ± std over seeds) against labelled sentences, one line per method, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ner.reporting import save_png

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for method in methods:
        points = [row for row in summary if row["method"] == method]
        axes.errorbar([row["labelled"] for row in points], [row["entity_f1_mean"] for row in points],
                      yerr=[row["entity_f1_std"] for row in points], marker="o", capsize=3, label=METHODS[method][1])
    axes.set_xscale("log")
    axes.minorticks_off()
    axes.set_xticks(sorted({row["labelled"] for row in summary}))
    axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.set_xlabel("labelled sentences")
    axes.set_ylabel("test entity F1")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_png(figure, path)
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Learning curves on the seed-001 protocol.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 2560, 1024, 512],
                        help="labelled sentences, run in this order (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--min-steps", type=int, default=0,
                        help="train the supervised runs for at least this many steps (more epochs at small sizes); "
                             "self-training gets as many pairs (default: training.epochs at every size)")
    parser.add_argument("--stage-set", dest="stage_overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key in the semi-supervised runs only, e.g. semi_supervised.self_training.student=continue")
    add_comparison_arguments(parser, "learning_curve")
    args = parser.parse_args(argv)
    command = invocation("examples.learning_curve", argv)

    def run() -> None:
        commit, output = git_commit(), Path(args.output)
        rows = [] if args.fresh else read_records(output / "learning_curve" / "runs.csv")
        done = {(row["method"], row["labelled"], row["seed"]) for row in rows}
        markdown = write_tables(output, rows, command) if rows else ""
        for labelled in args.sizes:
            for seed in args.seeds:
                for method in METHODS:
                    if method not in args.methods or (method, labelled, seed) in done:
                        continue
                    report, seconds = run_method(method, labelled, seed, args.overrides, args.min_steps,
                                                 args.stage_overrides)
                    rows.append({"method": method, "labelled": labelled, "seed": seed, **report.summary_row(),
                                 "seconds": round(seconds, 1), "commit": commit})
                    print(f"[curve] {labelled} labelled, seed {seed}, {method}: "
                          + ", ".join(f"{m} {rows[-1][m]:.4f}" for m in METRICS) + f" ({seconds:.0f} s)", flush=True)
                    markdown = write_tables(output, rows, command)
        print(markdown)

    exit_on_error(run)


if __name__ == "__main__":
    main()
