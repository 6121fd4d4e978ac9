"""Reproduces seed 001's table over several seeds: baseline, BERT NER and the three KL variants.

    python -m examples.reproduce_seed001                      # 5 seeds, the full GMB protocol
    python -m examples.reproduce_seed001 --seeds 1 2 --set model.head.dropout_rate=0.2
    python -m examples.reproduce_seed001 --protocol seed001   # the same table under seed 001's leaky protocol
    python -m examples.reproduce_seed001 --seeds 1 --models feature_crf ner_baseline bert_ner

`--protocol seed001` runs every model under seed 001's original, leaky data protocol (`split.protocol:
seed001`, `ner.seed001_protocol`: sentences of 48 or more words skipped, test / labelled / unlabelled
re-drawn from one reshuffled pipeline on every pass, evaluation on a fresh "test" draw) and sets the KL
stages' switches the seed's way (`SEED001_KL`: [CLS] and [SEP] in the KL masks, so live encoder features;
the confidence KL differentiated through its target and summed; the hard-coded prior). Its runs are
named `<model>_seed001protocol_seed<seed>` and its tables go to `results/reproduction_seed001_protocol.*`
and `results/reproduction_seed001_protocol/`; the feature CRF is trained and scored on each seed's
evaluation draw (its labelled and test parts, which are disjoint).

For every seed the split and the initialisation change (`split.seed` = `training.seed` = seed). Each
seed scores the feature-CRF reference on its split, trains the baseline and BERT NER, then starts the semi-supervised stages from that seed's BERT NER
run: data-distribution KL, confidence KL, both, and a control with the both-KL schedule at KL weight 0
(the same extra cross-entropy steps, no KL), so the KL's own effect can be told from more training,
then trains bert_crf (`config/bert_crf.yaml`, results/taggers.md), the same with its encoder fine-tuned
(`config/bert_crf_finetune.yaml`, 10-25 minutes a seed on 2 CPU cores), the same fine-tuning started
from that seed's bert_crf run (`config/bert_crf_lpft.yaml`, LP-FT), and self-training from that seed's
bert_crf run with its extra-steps control. `--models` runs some of them (a stage or LP-FT needs its
seed's bert_ner or bert_crf run, trained now or earlier); the fine-tuned, LP-FT and self-training rows
run under the leak-free protocol only.

Writes `results/reproduction.md` and `results/reproduction.csv` (mean ± std over seeds next to seed
001's single-run numbers), and in `results/reproduction/`: every run's metrics and commit (`runs.csv`),
per-class F1 (`per_class_f1.csv`), predicted-vs-true label distributions (`label_distributions.csv`) and
the latent PCA plots of the first seed for BERT NER and the KL variants (when that seed's runs are made).
The tables are rewritten after every run from every run recorded in `runs.csv`, and a (model, seed) pair
already there is not run again: an interrupted table resumes, and more seeds or models add rows. A run
already trained under its name with the same config is evaluated, not retrained (its seconds are nan);
`--fresh` ignores the recorded runs and trains every run again.
"""
import argparse
import math
from pathlib import Path
from typing import Dict, List, Sequence

from examples.common import (METRICS, add_comparison_arguments, evaluate_trained, exit_on_error, feature_crf_report,
                             git_commit, invocation, per_class_table, read_records, summarise_runs, trained_with,
                             train_and_evaluate)
from ner.registry import SPLIT_PROTOCOLS
from ner.tagging import ENTITY_TYPES, OUTSIDE

FEATURE_CRF = "feature_crf"
# name → (config file (None: the feature-CRF reference), shown as, seed 001's (accuracy %, accuracy without
# O %, mean F1) or None), in the order they run for a seed
MODELS = {
    FEATURE_CRF: (None, "reference: feature CRF (CRFsuite, hand-written word features)", None),
    "ner_baseline": ("config/ner_baseline.yaml", "NER baseline", (93.65, 66.73, 0.5457)),
    "bert_ner": ("config/bert_ner.yaml", "BERT NER", (95.90, 78.41, 0.6099)),
    "bert_data_dist_kl": ("config/bert_data_dist_kl.yaml", "+ data-distribution KL", (94.44, 83.50, 0.6320)),
    "bert_confidence_kl": ("config/bert_confidence_kl.yaml", "+ confidence KL", (96.05, 80.82, 0.6514)),
    "bert_both_kl": ("config/bert_both_kl.yaml", "+ both KL", None),
    "bert_ce_control": ("config/bert_both_kl.yaml", "control: both-KL schedule, KL weight 0", None),
    "bert_crf": ("config/bert_crf.yaml", "bert_crf: + casing, lexical features and a CRF (results/taggers.md)", None),
    "bert_crf_finetune": ("config/bert_crf_finetune.yaml",
                          "bert_crf with its encoder fine-tuned for 10 epochs", None),
    "bert_crf_lpft": ("config/bert_crf_lpft.yaml",
                      "bert_crf's trained head, then 5 epochs with its encoder fine-tuned (LP-FT)", None),
    "bert_crf_self_training": ("config/bert_crf_self_training.yaml", "bert_crf + self-training with uncertainty",
                               None),
    "bert_crf_self_training_control": ("config/bert_crf_self_training_control.yaml",
                                       "control: the self-training schedule on labelled batches", None),
}
# seed 001's per-class token F1 of the rows it reported (its results/NER_baseline/NER_baseline_results.csv,
# BERT_results.csv, BERT_data_dist_kl_results.csv and BERT_confidence_kl_results.csv); their mean is its
# mean F1 in MODELS
SEED001_PER_CLASS_F1 = {name: dict(zip((OUTSIDE,) + ENTITY_TYPES, values)) for name, values in {
    "ner_baseline": (0.975, 0.748, 0.880, 0.750, 0.445, 0.790, 0.118, 0.0, 0.205),
    "bert_ner": (0.985, 0.827, 0.864, 0.878, 0.638, 0.876, 0.0, 0.178, 0.243),
    "bert_data_dist_kl": (0.978, 0.815, 0.874, 0.869, 0.602, 0.820, 0.0, 0.559, 0.171),
    "bert_confidence_kl": (0.986, 0.832, 0.873, 0.878, 0.672, 0.876, 0.0, 0.471, 0.275),
}.items()}
# model → the model whose run of the same seed it starts from: a semi-supervised stage's
# `semi_supervised.init_run`, or LP-FT's `training.init_run`
INIT_MODEL = {"bert_data_dist_kl": "bert_ner", "bert_confidence_kl": "bert_ner", "bert_both_kl": "bert_ner",
              "bert_ce_control": "bert_ner", "bert_crf_self_training": "bert_crf",
              "bert_crf_self_training_control": "bert_crf", "bert_crf_lpft": "bert_crf"}
SUPERVISED_INIT = {"bert_crf_lpft"}  # the models of INIT_MODEL that are not semi-supervised stages
STAGE_SECTION = "semi_supervised."
KL_STAGES = {"bert_data_dist_kl", "bert_confidence_kl", "bert_both_kl", "bert_ce_control"}
# self-training needs a fixed pool; the fine-tuned rows are compared on the leak-free splits only
LEAK_FREE_ONLY = {"bert_crf_finetune", "bert_crf_lpft", "bert_crf_self_training", "bert_crf_self_training_control"}
PCA_MODELS = {"bert_ner", "bert_data_dist_kl", "bert_confidence_kl", "bert_both_kl"}
# Seed 001's KL details, set in its stages under `--protocol seed001`; [CLS]/[SEP] in the KL masks need
# live encoder features, which only the stage itself needs (its init run trains on cached ones).
SEED001_KL = ["semi_supervised.kl_special_tokens=true", "semi_supervised.confidence_stop_gradient=false",
              "semi_supervised.confidence_reduction=sum", "semi_supervised.prior_source=seed001",
              "training.feature_cache=false"]


NOTES_FILE = "notes.md"


def results_name(protocol: str) -> str:
    """The stem of the results files and directory: reproduction, or reproduction_<protocol>_protocol."""
    return "reproduction" if protocol == "leak_free" else f"reproduction_{protocol}_protocol"


def run_name(name: str, seed: int, protocol: str) -> str:
    return f"{name}_seed{seed}" if protocol == "leak_free" else f"{name}_{protocol}protocol_seed{seed}"


def run_overrides(name: str, seed: int, extra: Sequence[str], protocol: str = "leak_free") -> List[str]:
    """The config overrides of model `name`'s run for `seed` under `protocol`, then those of `extra` that apply
    to it: a `semi_supervised.*` override goes to the semi-supervised stages only (on any other model it would
    create a stage)."""
    overrides = [f"run_name={run_name(name, seed, protocol)}", f"split.seed={seed}", f"training.seed={seed}"]
    if protocol != "leak_free":
        overrides.append(f"split.protocol={protocol}")
    stage = name in INIT_MODEL and name not in SUPERVISED_INIT
    if name in INIT_MODEL:
        key = f"{STAGE_SECTION}init_run" if stage else "training.init_run"
        overrides.append(f"{key}={run_name(INIT_MODEL[name], seed, protocol)}")
    if name in KL_STAGES and protocol == "seed001":
        overrides += SEED001_KL
    if name == "bert_ce_control":
        overrides.append("semi_supervised.loss_weights=[0.0, 0.0]")
    return overrides + [override for override in extra
                        if stage or not override.startswith(STAGE_SECTION)]


def run_model(name: str, seed: int, extra: Sequence[str], protocol: str = "leak_free", reuse: bool = True):
    """Model `name`'s run for `seed` under `protocol` (`run_overrides`, then `extra`): `(report, evaluation,
    seconds)`. The feature CRF is trained and scored (no evaluation: None). A model whose run directory
    already holds weights trained with this very config is evaluated again when `reuse` (seconds nan);
    otherwise it is trained, replacing an earlier run of that name."""
    if name == FEATURE_CRF:
        report, seconds = feature_crf_report(seed, [f"split.protocol={protocol}"])
        return report, None, seconds
    config_file, overrides = MODELS[name][0], run_overrides(name, seed, extra, protocol)
    if reuse and trained_with(config_file, overrides):
        evaluation, seconds = evaluate_trained(config_file, overrides)
    else:
        evaluation, seconds = train_and_evaluate(config_file, overrides)
    return evaluation.report, evaluation, seconds


def write_tables(output: Path, protocol: str, rows: List[Dict], per_class: List[Dict], distributions: List[Dict],
                 command: str) -> str:
    """Writes the runs' CSVs (`runs.csv` last: a run is recorded once it is there), `<stem>.csv` and
    `<stem>.md` from the runs so far (at least one), ending with `<stem>/notes.md` when there is one (a
    hand-written reading of the table); returns the Markdown."""
    from ner.reporting import write_csv
    from ner.utils import write_text_atomic

    stem = results_name(protocol)
    write_csv(output / stem / "per_class_f1.csv", per_class)
    write_csv(output / stem / "label_distributions.csv", distributions)
    write_csv(output / stem / "runs.csv", rows)
    names = [name for name in MODELS if any(row["model"] == name for row in rows)]
    summary, lines = [], []
    for name in names:
        runs = [row for row in rows if row["model"] == name]
        row, ours = summarise_runs(name, runs)
        summary.append(row)
        _, shown, seed001 = MODELS[name]
        theirs = " / ".join(f"{value}" for value in seed001) if seed001 else "—"
        lines.append(f"| {shown} | {len(runs)} | {ours} | {theirs} |")
    write_csv(output / f"{stem}.csv", summary)
    if protocol == "leak_free":
        title, parts = "# Seed-001 protocol over several seeds", ("9,600 test / 2,560 labelled / 960 validation / "
                                                                  "the rest unlabelled, a new split")
    else:
        title = "# Seed 001's table under its own, leaky protocol (split.protocol seed001)"
        parts = ("sentences of >= 48 words skipped; 75 test / 20 labelled batches of 128 / the rest unlabelled, "
                 "re-drawn from one reshuffled pipeline on every pass, so the parts overlap across passes; "
                 "KL stages with [CLS]/[SEP] in the masks, the confidence KL summed and differentiated through "
                 "its target, and seed 001's hard-coded prior; evaluation on a fresh 'test' draw; new draws")
    commits = ", ".join(sorted({row["commit"] or "not recorded" for row in rows}))
    seeds = ", ".join(map(str, sorted({row["seed"] for row in rows})))
    markdown = "\n".join([
        title,
        "",
        f"Produced by `python -m examples.reproduce_seed001` (last invocation: `{command}`; commits {commits}, "
        f"per run in `{stem}/runs.csv`; seeds {seeds}; {parts} and initialisation per seed).",
        "Accuracy and accuracy without O in %, mean token F1 over the 9 classes and strict entity F1: "
        "mean ± sample std over seeds. Seed 001's single run (accuracy / without O / mean F1) beside it.",
        "",
        "| model | seeds | accuracy % | accuracy without O % | mean F1 | entity F1 | seed 001 |",
        "|---|---|---|---|---|---|---|",
        *lines,
        "",
        "## Per-class token F1 (mean over seeds)",
        "",
        *per_class_table(per_class + [{"model": f"seed 001: {name}", "seed": 0, **f1}
                                      for name, f1 in SEED001_PER_CLASS_F1.items()],
                         [(name, name) for name in names]
                         + [(f"seed 001: {name}", f"seed 001 reported: {name}") for name in SEED001_PER_CLASS_F1]),
        "",
        f"Every run's numbers: `{stem}/runs.csv`; predicted vs true label distributions: "
        f"`{stem}/label_distributions.csv`; latent PCA plots (first seed): `{stem}/<model>/`.",
        "",
    ])
    notes = output / stem / NOTES_FILE  # the reading of the table, written by hand, kept across rewrites
    if notes.is_file():
        markdown += "\n" + notes.read_text(encoding="utf-8")
    write_text_atomic(output / f"{stem}.md", markdown)
    return markdown


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Seed-001 protocol over several seeds.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="+", choices=list(MODELS),
                        help="run these models only, each seed in the default order (a stage needs its seed's "
                             "run of the model it starts from, trained now or earlier; default: all that the "
                             "protocol allows: self-training only under leak_free)")
    parser.add_argument("--protocol", choices=SPLIT_PROTOCOLS, default="leak_free",
                        help="split.protocol of every run: leak_free (the package's), or seed001, seed 001's original, "
                             "leaky one with its KL details, written to reproduction_seed001_protocol.md/.csv "
                             "(default: %(default)s)")
    add_comparison_arguments(parser, "reproduction[_<protocol>_protocol]",
                             " and train every run again (not evaluate one trained earlier with the same config)")
    args = parser.parse_args(argv)
    if args.models is None:
        args.models = [name for name in MODELS if args.protocol == "leak_free" or name not in LEAK_FREE_ONLY]
    elif args.protocol != "leak_free" and LEAK_FREE_ONLY & set(args.models):
        parser.error(f"--models {' '.join(sorted(LEAK_FREE_ONLY & set(args.models)))}: these run under "
                     "--protocol leak_free only (self-training needs a fixed pool; the fine-tuned row is "
                     "compared on the leak-free splits)")
    stem = results_name(args.protocol)
    command = invocation("examples.reproduce_seed001", argv)

    def run() -> None:
        from ner.model_evaluator import latent_pca
        from ner.reporting import write_latent_plots

        commit, output = git_commit(), Path(args.output)
        # Rows written before runs.csv had a commit column get an empty one (shown as "not recorded").
        rows = [] if args.fresh else [{**row, "commit": row.get("commit", "")}
                                      for row in read_records(output / stem / "runs.csv")]
        done = {(row["model"], row["seed"]) for row in rows}

        def recorded(file_name: str) -> List[Dict]:
            """The rows of the runs in runs.csv (a run's other rows are written before its runs.csv row, so a
            run interrupted in between leaves rows to drop)."""
            return [row for row in read_records(output / stem / file_name) if (row["model"], row["seed"]) in done]

        per_class, distributions = recorded("per_class_f1.csv"), recorded("label_distributions.csv")
        markdown = write_tables(output, args.protocol, rows, per_class, distributions, command) if rows else ""
        first_seed = min({row["seed"] for row in rows} | set(args.seeds))  # the seed of the PCA plots
        trained = set()  # (model, seed) trained in this invocation
        for seed in args.seeds:
            for name in MODELS:
                if name not in args.models or (name, seed) in done:
                    continue
                # A stage trained from an earlier init run is trained again when the init run was.
                reuse = not args.fresh and (INIT_MODEL.get(name), seed) not in trained
                report, evaluation, seconds = run_model(name, seed, args.overrides, args.protocol, reuse)
                if not math.isnan(seconds):
                    trained.add((name, seed))
                token = report.token
                per_class.append({"model": name, "seed": seed, **dict(zip(token.labels, token.f1.tolist()))})
                for label, true, pred in zip(token.labels, report.true_distribution, report.pred_distribution):
                    distributions.append({"model": name, "seed": seed, "label": label,
                                          "true_fraction": float(true), "predicted_fraction": float(pred)})
                rows.append({"model": name, "seed": seed, **report.summary_row(), "seconds": round(seconds, 1),
                             "commit": commit})
                if seed == first_seed and name in PCA_MODELS:
                    write_latent_plots(output / stem / name, latent_pca(evaluation.latent),
                                       evaluation.latent_true, evaluation.latent_pred, evaluation.labels,
                                       f"{name} (seed {seed})")
                print(f"[reproduce] seed {seed} {name}: " + ", ".join(f"{m} {rows[-1][m]:.4f}" for m in METRICS)
                      + (" (trained earlier, evaluated)" if math.isnan(seconds) else f" ({seconds:.0f} s)"),
                      flush=True)
                markdown = write_tables(output, args.protocol, rows, per_class, distributions, command)
        print(markdown)

    exit_on_error(run)


if __name__ == "__main__":
    main()
