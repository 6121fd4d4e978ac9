"""The taggers against the feature-CRF reference on the seed-001 protocol, over several seeds (issue #12).

    python -m examples.compare_taggers                                  # every model, seeds 1-5
    python -m examples.compare_taggers --seeds 1 2 3 --models feature_crf bert_crf_casing

For every seed the split and the initialisation change (`split.seed` = `training.seed` = seed); the
feature CRF (`ner.baselines.feature_crf`) trains on the same labelled part and is scored on the same test
part with the same metrics. Writes `results/taggers.md` and `results/taggers.csv` (mean ± sample std over
seeds, seed 001's single-run numbers beside them), and `results/taggers/runs.csv` and
`results/taggers/per_class_f1.csv`. The table is rewritten after every run from every run recorded in
`runs.csv`, and a (model, seed) pair already there is not run again: an interrupted comparison resumes,
and more seeds or models add rows (`--fresh` starts over).
"""
import argparse
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from examples.common import (METRICS, add_comparison_arguments, exit_on_error, feature_crf_report, git_commit,
                             invocation, per_class_table, read_records, summarise_runs, train_and_evaluate)

# name → (config file, or None for a feature CRF, whose overrides choose its templates; overrides; shown as;
# seed 001's (accuracy %, accuracy without O %, mean F1) or None)
# The rows between the default and bert_crf add one idea each to the control, which spends bert_crf's
# schedule (batch 32: 4x the steps of batch 128) and regularisation (head dropout 0.5) without its ideas.
TUNED = ["training.batch_size=32", "model.head.dropout_rate=0.5"]
# what bert_crf.yaml was before it averaged each word's pieces and took the extended templates: the rows
# measured then keep meaning what they measured
FIRST_PIECE = "model.word_pooling=first"
CRF_TEMPLATES = "model.lexical_templates=crf"
MODELS = {
    "feature_crf": (None, [], "reference: feature CRF (CRFsuite, hand-written word features)", None),
    "bert_ner": ("config/bert_ner.yaml", [], "BERT NER, seed 001's design (frozen MiniLM, layer mix, MLP head; "
                 "batch 128, dropout 0.1)", (95.90, 78.41, 0.6099)),
    "bert_ner_control": ("config/bert_ner.yaml", TUNED, "control: BERT NER, batch 32, dropout 0.5", None),
    "bert_ner_casing": ("config/bert_ner.yaml", [*TUNED, "model.casing_dim=16"], "control + casing", None),
    "bert_crf_no_casing": ("config/bert_crf.yaml", ["model.casing_dim=0", "model.lexical_features=false",
                                                    FIRST_PIECE], "control + CRF", None),
    "bert_crf_no_lexical": ("config/bert_crf.yaml", ["model.lexical_features=false", FIRST_PIECE],
                            "control + casing + CRF", None),
    "bert_crf": ("config/bert_crf.yaml", [FIRST_PIECE, CRF_TEMPLATES],
                 "bert_crf: control + casing + CRF + lexical features", None),
    "bert_crf_bilstm": ("config/bert_crf_bilstm.yaml", [], "bert_crf_bilstm: bert_crf + a BiLSTM over the words",
                        None),
    "feature_crf_extended": (None, ["model.lexical_templates=extended"], "reference: feature CRF, extended "
                             "templates (+ prefixes, words two away, word bigrams)", None),
    "bert_crf_extended": ("config/bert_crf.yaml", [FIRST_PIECE, "model.lexical_templates=extended"],
                          "bert_crf with the extended lexical features", None),
    "bert_crf_mean_pooling": ("config/bert_crf.yaml", ["model.word_pooling=mean", CRF_TEMPLATES],
                              "bert_crf with each word's pieces averaged", None),
    "bert_crf_mean_pooling_extended": ("config/bert_crf.yaml", [],
                                       "bert_crf with pieces averaged and the extended lexical features "
                                       "(the shipped config/bert_crf.yaml)", None),
}


def run_model(name: str, seed: int, extra: Sequence[str]):
    """`(EvaluationReport, seconds)` of one model on one seed's split; `extra` overrides apply to the model
    runs, not to the feature CRFs."""
    config_file, overrides, _, _ = MODELS[name]
    if config_file is None:
        return feature_crf_report(seed, overrides)
    seeded = [f"split.seed={seed}", f"training.seed={seed}", *extra]
    evaluation, seconds = train_and_evaluate(config_file, [f"run_name={name}_seed{seed}", *overrides, *seeded])
    return evaluation.report, seconds


def write_tables(output: Path, names: Sequence[str], rows: List[Dict], per_class: List[Dict], command: str,
                 seeds: Sequence[int]) -> str:
    """Writes the CSVs and `taggers.md` from the runs so far; returns the Markdown."""
    from ner.reporting import write_csv
    from ner.utils import write_text_atomic

    write_csv(output / "taggers" / "runs.csv", rows)
    write_csv(output / "taggers" / "per_class_f1.csv", per_class)
    summary, lines = [], []
    for name in names:
        runs = [row for row in rows if row["model"] == name]
        if not runs:
            continue
        row, ours = summarise_runs(name, runs)
        summary.append({**row, "seconds_mean": float(np.mean([r["seconds"] for r in runs]))})
        reference = MODELS[name][3]
        theirs = " / ".join(f"{value}" for value in reference) if reference else "—"
        lines.append(f"| {MODELS[name][2]} | {len(runs)} | {ours} | {summary[-1]['seconds_mean']:.0f} | {theirs} |")
    write_csv(output / "taggers.csv", summary)
    markdown = "\n".join([
        "# Taggers against the feature-CRF reference (seed-001 protocol)",
        "",
        f"Produced by `python -m examples.compare_taggers` (last invocation: `{command}`; each run's commit "
        f"is in `taggers/runs.csv`: {', '.join(sorted({str(row.get('commit', '')) for row in rows}))}; seeds "
        f"{', '.join(map(str, seeds))}; 9,600 test / 2,560 labelled / 960 "
        "validation, a new split and initialisation per seed; no model selection on validation).",
        "Accuracy and accuracy without O in %, mean token F1 over the 9 classes and strict entity F1 (IOB2): "
        "mean ± sample std over seeds. Seconds: training and scoring the test part on the machine that ran "
        "it (2 shared CPU cores), after the encoder pass that the feature cache keeps across runs; the feature "
        "CRF's is its training alone. "
        "Seed 001's single BERT-base run (accuracy / without O / mean F1) beside it.",
        "",
        "| model | seeds | accuracy % | accuracy without O % | mean F1 | entity F1 | seconds | seed 001 |",
        "|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        "## Per-class token F1 (mean over seeds)",
        "",
        *per_class_table(per_class, [(name, MODELS[name][2]) for name in names]),
        "",
        "Every run's numbers: `taggers/runs.csv`; per-class F1 per run: `taggers/per_class_f1.csv`.",
        "",
    ])
    write_text_atomic(output / "taggers.md", markdown)
    return markdown


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Taggers against the feature CRF on the seed-001 protocol.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    add_comparison_arguments(parser, "taggers")
    args = parser.parse_args(argv)
    command = invocation("examples.compare_taggers", argv)

    def run() -> None:
        commit = git_commit()
        output = Path(args.output)
        rows = [] if args.fresh else read_records(output / "taggers" / "runs.csv")
        per_class = [] if args.fresh else read_records(output / "taggers" / "per_class_f1.csv")
        done = {(row["model"], row["seed"]) for row in rows}
        names = [name for name in MODELS if name in args.models or any(row["model"] == name for row in rows)]
        seeds = sorted(set(args.seeds) | {row["seed"] for row in rows})
        markdown = write_tables(output, names, rows, per_class, command, seeds) if rows else ""
        for seed in args.seeds:
            for name in args.models:
                if (name, seed) in done:
                    continue
                report, seconds = run_model(name, seed, args.overrides)
                rows.append({"model": name, "seed": seed, **report.summary_row(), "seconds": round(seconds, 1),
                             "commit": commit})
                per_class.append({"model": name, "seed": seed,
                                  **dict(zip(report.token.labels, report.token.f1.tolist()))})
                print(f"[taggers] seed {seed} {name}: " + ", ".join(f"{m} {rows[-1][m]:.4f}" for m in METRICS)
                      + f" ({seconds:.0f} s)", flush=True)
                markdown = write_tables(output, names, rows, per_class, command, seeds)
        print(markdown)

    exit_on_error(run)


if __name__ == "__main__":
    main()
