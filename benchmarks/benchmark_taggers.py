"""Full-data benchmarks of the tagger families: strict entity F1 (micro and per type) and epoch times.

    python -m benchmarks.benchmark_taggers --suite gmb                                   # every model
    python -m benchmarks.benchmark_taggers --suite conll2003 --models feature_crf bert_crf
    python -m benchmarks.benchmark_taggers --suite gmb --models bert_gru --epochs bert_gru=1
    python -m benchmarks.benchmark_taggers --suite conll2003 --models bert_ner bert_gru
    python -m benchmarks.benchmark_taggers --suite gmb --models bert_gru --reuse-trained   # score a finished run again
    python -m benchmarks.benchmark_taggers --suite gmb --models bert_crf --epochs bert_crf=30 \
        --set training.early_stopping_patience=3                                          # up to 30, best kept

Suites: "gmb" is the GMB corpus under a seeded 80/10/10 split by sentence (test / train / validation);
"conll2003" trains on CoNLL-2003 train, monitors and scores valid, and reports test. Every model trains
on BIO labels (the CRF's transitions need them; spans are scored as BIO anyway). Each run trains its
model's config (`config/<model>.yaml`) with the suite's overrides, then scores its validation and test
parts with strict span F1 (seqeval, micro) and per-type F1. The feature CRF (`ner.baselines.feature_crf`)
is the reference row: it trains on the same training part, and its "epoch" time is its whole L-BFGS fit.

After every run the table is rewritten: `results/benchmarks.csv` keeps every run (a later run of the
same suite and model replaces the earlier one), and `results/benchmarks.md` shows them with the command
that produced each. Epoch time is the wall time of one epoch's training steps (validation excluded),
averaged over the run's epochs; a frozen encoder's one-off pass that fills the feature cache is in the
total time, not in the epoch time.
"""
import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

from examples.common import exit_on_error

# name -> (shown as, config file, overrides); the feature CRF (no config file) is the reference row
FEATURE_CRF = "feature_crf"
MODELS = {
    FEATURE_CRF: ("reference: feature CRF (CRFsuite, hand-written word features)", "config/bert_ner.yaml", []),
    "bilstm": ("BiLSTM on word-piece embeddings", "config/rnn_ner.yaml", ["model.type=bilstm", "model.rnn.cell=lstm"]),
    "gru": ("BiGRU on word-piece embeddings", "config/rnn_ner.yaml", ["model.type=gru", "model.rnn.cell=gru"]),
    "bert_ner": ("BERT NER (frozen encoder, layer mix, MLP head)", "config/bert_ner.yaml", []),
    "bert_gru": ("BERT + GRU (fine-tuned)", "config/bert_gru.yaml", []),
    "bert_bilstm_crf": ("BERT + BiLSTM + CRF (fine-tuned)", "config/bert_bilstm_crf.yaml", []),
    "bert_crf": ("bert_crf (frozen encoder, casing and lexical features, CRF)", "config/bert_crf.yaml", []),
    "bert_crf_bilstm": ("bert_crf_bilstm (bert_crf + a BiLSTM over the words)", "config/bert_crf_bilstm.yaml", []),
}
# name -> (described as, overrides)
SUITES = {
    "gmb": ("GMB, seeded 80/10/10 split by sentence (test 10 %, train 80 %, validation 10 %)",
            ["data.corpus=gmb", "split.fractions=[0.1, 0.8, 0.1]", "data.tag_scheme=bio"]),
    "conll2003": ("CoNLL-2003: train on train, monitor and score valid, report test",
                  ["data.corpus=conll", "data.conll_tags=iob1", "data.encoding=utf-8", "data.tag_scheme=bio"]),
}
CSV_FILE = "benchmarks.csv"
MD_FILE = "benchmarks.md"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Entity F1 and epoch times of the tagger families on full data.")
    parser.add_argument("--suite", choices=sorted(SUITES), required=True)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--epochs", nargs="+", default=[], metavar="MODEL=N",
                        help="epochs of a model (default: its config's training.epochs)")
    parser.add_argument("--seed", type=int, default=1, help="split and initialisation seed (default: %(default)s)")
    parser.add_argument("--output", default="results", help="directory of benchmarks.md/.csv (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every trained model, after the suite's, e.g. "
                             "training.early_stopping_patience=3 (repeatable)")
    parser.add_argument("--reuse-trained", action="store_true",
                        help="score a model's finished run (saved_models/benchmark_<suite>_<model>, trained with "
                             "the same config) instead of training it again; its total time is then not measured")
    args = parser.parse_args(argv)
    command = " ".join(["python -m benchmarks.benchmark_taggers"] + (sys.argv[1:] if argv is None else list(argv)))
    exit_on_error(lambda: run_suite(args.suite, args.models, parse_epochs(args.epochs), args.seed,
                                    Path(args.output), command, args.reuse_trained, args.overrides))


def parse_epochs(items: Sequence[str]) -> Dict[str, int]:
    from ner.errors import ConfigError

    epochs = {}
    for item in items:
        model, sep, value = item.partition("=")
        if not sep or model not in MODELS or not value.isdigit() or int(value) < 1:
            raise ConfigError(f"--epochs {item!r}: expected MODEL=N with MODEL one of {', '.join(MODELS)} "
                              f"and N a positive integer")
        epochs[model] = int(value)
    return epochs


def run_suite(suite: str, models: Sequence[str], epochs: Dict[str, int], seed: int, output: Path,
              command: str, reuse_trained: bool = False, extra: Sequence[str] = ()) -> None:
    from ner.config import load_config

    for model in models:
        shown, config_file, model_overrides = MODELS[model]
        overrides = [f"run_name=benchmark_{suite}_{model}", f"split.seed={seed}", f"training.seed={seed}",
                     *SUITES[suite][1], *model_overrides, *extra]
        if model in epochs:
            overrides.append(f"training.epochs={epochs[model]}")
        config = load_config(config_file, overrides)
        start = time.perf_counter()
        if model == FEATURE_CRF:
            validation, test, epoch_seconds, train_seconds = score_feature_crf(suite, config)
        else:
            validation, test, epoch_seconds, train_seconds, best = train_and_score(suite, model, config,
                                                                                   reuse_trained)
        row = {
            "suite": suite, "model": model, "shown_as": shown,
            "epochs": "L-BFGS" if model == FEATURE_CRF else epochs_run(epoch_seconds, best, config.training),
            "test_entity_f1": test.entity.f1, "test_entity_precision": test.entity.precision,
            "test_entity_recall": test.entity.recall, "validation_entity_f1": validation.entity.f1,
            **{f"f1_{name}": scores[2] for name, scores in test.entity.per_type.items()},
            "epoch_seconds": sum(epoch_seconds) / len(epoch_seconds),
            "total_seconds": "" if reuse_trained else time.perf_counter() - start, "train_seconds": train_seconds,
            "test_sentences": test.num_sentences, "device": device_name(), "commit": git_commit(),
            "command": command, "overrides": " ".join(overrides),
        }
        print(f"[benchmark] {suite} / {model}: test entity F1 {row['test_entity_f1']:.4f} (validation "
              f"{row['validation_entity_f1']:.4f}), {row['epoch_seconds']:.0f} s per epoch", flush=True)
        rows = [r for r in read_rows(output / CSV_FILE) if (r["suite"], r["model"]) != (suite, model)] + [row]
        write_tables(output, rows)


def score_feature_crf(suite: str, config):
    """The reference row: `(validation report, test report, [training seconds], training seconds)`."""
    from ner.baselines.feature_crf import evaluate_on_split

    print(f"[benchmark] {suite} / {FEATURE_CRF}: training", flush=True)
    reports, seconds = evaluate_on_split(config, parts=("validation", "test"))
    return reports["validation"], reports["test"], [seconds], seconds


def epochs_run(epoch_seconds: Sequence[float], best, training) -> str:
    """The epochs column: those trained, and with early stopping the best one, whose weights were kept."""
    if training.early_stopping_patience is None:
        return str(len(epoch_seconds))
    return f"{len(epoch_seconds)} of {training.epochs}, best {best}"


def train_and_score(suite: str, model: str, config, reuse_trained: bool):
    """Trains the config's run (or checks the finished one with `reuse_trained`) and scores it:
    `(validation report, test report, per-epoch seconds, training seconds or "" when reused, best epoch)`:
    with early stopping the best epoch by `training.early_stopping_monitor` (whose weights were kept), else None."""
    import tf_keras as keras

    from ner.config import load_config
    from ner.errors import NerError
    from ner.experiment import evaluate, train
    from ner.runs import CONFIG_FILE
    from ner.trainers.trainer import best_epoch, read_history

    start = time.perf_counter()
    if reuse_trained:
        run_dir = config.run_dir()
        if not (run_dir / "weights").is_dir() or load_config(run_dir / CONFIG_FILE) != config:
            raise NerError(f"--reuse-trained: {run_dir} holds no finished run of this config; train it first")
        print(f"[benchmark] {suite} / {model}: scoring the finished run in {run_dir}", flush=True)
    else:
        print(f"[benchmark] {suite} / {model}: training {config.training.epochs} epochs", flush=True)
        run_dir = train(config, verbose=False, overwrite=True)
    train_seconds = "" if reuse_trained else time.perf_counter() - start
    validation = evaluate(str(run_dir), verbose=False, part="validation").report
    test = evaluate(str(run_dir), verbose=False, part="test").report
    keras.backend.clear_session()
    history = read_history(run_dir)
    return (validation, test, [row["train_seconds"] for row in history], train_seconds,
            best_epoch(history, config.training.early_stopping_monitor)
            if config.training.early_stopping_patience is not None else None)


def read_rows(path: Path) -> List[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU " + tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return f"CPU, {os.cpu_count()} cores"


def git_commit() -> str:
    """The checkout's commit, marked when the code or configs differ from it (run artefacts do not count)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "ner", "benchmarks",
                                "examples", "config"], capture_output=True, text=True, check=True).stdout.strip()
        return out.stdout.strip() + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _seconds(value) -> str:
    return "—" if value in ("", None) else f"{float(value):.0f}"


def write_tables(output: Path, rows: List[dict]) -> None:
    """Rewrites benchmarks.csv (every run) and benchmarks.md (a table per suite, per-type F1 below)."""
    from ner.reporting import write_csv
    from ner.utils import write_text_atomic

    columns = list(dict.fromkeys(key for row in rows for key in row))
    write_csv(output / CSV_FILE, [{key: row.get(key, "") for key in columns} for row in rows], columns)
    lines = ["# Tagger benchmarks on full data", "",
             "Strict entity-level F1 (seqeval, micro over spans) on the test part, with the validation part's "
             "beside it; per-type F1 below. Epoch time: the training steps of one epoch (validation excluded), "
             "mean over the run's epochs. Every row was produced by the command under its table, on the device "
             "and commit it names; all runs: `" + CSV_FILE + "`. Total time is training plus scoring; — marks a "
             "finished run scored again (`--reuse-trained`).", ""]
    for suite, (described, _) in SUITES.items():
        suite_rows = [row for row in rows if row["suite"] == suite]
        if not suite_rows:
            continue
        types = sorted({key[3:] for row in suite_rows for key in row if key.startswith("f1_") and row[key] != ""})
        lines += [f"## {described}", "",
                  "| model | epochs | test entity F1 | precision | recall | validation entity F1 | s / epoch | "
                  "total s | device |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in suite_rows:
            lines.append(f"| {row['shown_as']} | {row['epochs']} | {float(row['test_entity_f1']):.4f} | "
                         f"{float(row['test_entity_precision']):.4f} | {float(row['test_entity_recall']):.4f} | "
                         f"{float(row['validation_entity_f1']):.4f} | {float(row['epoch_seconds']):.0f} | "
                         f"{_seconds(row['total_seconds'])} | {row['device']} |")
        lines += ["", "Per-type test F1:", "", "| model | " + " | ".join(types) + " |",
                  "|---" * (len(types) + 1) + "|"]
        for row in suite_rows:
            cells = [f"{float(row[f'f1_{t}']):.3f}" if row.get(f"f1_{t}", "") != "" else "—" for t in types]
            lines.append(f"| {row['shown_as']} | " + " | ".join(cells) + " |")
        lines += ["", "Commands (commit):", ""]
        lines += [f"- {row['shown_as']}: `{row['command']}` ({row['commit']})" for row in suite_rows]
        lines.append("")
    write_text_atomic(output / MD_FILE, "\n".join(lines))


if __name__ == "__main__":
    main()
