"""What the example scripts share: argument parsing and one-line errors instead of tracebacks."""
import argparse
from typing import Dict, Optional, Sequence

import ner  # noqa: F401  (selects tf_keras before TensorFlow loads)
from ner.cli import exit_on_error, train_run


def train_main(default_config: str, argv: Sequence[str] = None) -> None:
    """`python -m examples.example_train_<model> [--config FILE] [--set key=value ...] [--resume | --overwrite]`."""
    parser = argparse.ArgumentParser(description=f"Train the model of {default_config} on the GMB protocol.")
    parser.add_argument("--config", default=default_config, help="model YAML file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set training.epochs=2 (repeatable)")
    existing = parser.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace the weights and checkpoints of an existing run with the same name")
    args = parser.parse_args(argv)

    exit_on_error(lambda: train_run(args.config, args.overrides, args.resume, args.overwrite))


def train_and_evaluate(config_file: str, overrides: Sequence[str]):
    """Trains the run a config file and overrides describe (replacing an earlier run of that name, so the
    scripts can be run again), evaluates it on its test split, and frees the Keras session; returns
    `(evaluation, seconds)`."""
    import time

    import tf_keras as keras

    from ner.config import load_config
    from ner.experiment import evaluate, train

    config = load_config(config_file, overrides)
    start = time.perf_counter()
    evaluation = evaluate(str(train(config, verbose=False, overwrite=True)), verbose=False)
    keras.backend.clear_session()
    return evaluation, time.perf_counter() - start


def trained_with(config_file: str, overrides: Sequence[str]) -> bool:
    """Whether the run a config file and overrides describe has finished training (its run directory holds
    `weights/`) under this very config (its saved `config.yaml` resolves to the same values), so that it can
    be evaluated again instead of trained."""
    from ner.config import load_config
    from ner.errors import ConfigError
    from ner.runs import CONFIG_FILE

    config = load_config(config_file, overrides)
    run_dir = config.run_dir()
    if not ((run_dir / "weights").is_dir() and (run_dir / CONFIG_FILE).is_file()):
        return False
    try:
        return load_config(run_dir / CONFIG_FILE, environ={}) == config
    except ConfigError:  # saved by a version of the package with other keys
        return False


def evaluate_trained(config_file: str, overrides: Sequence[str]):
    """`(evaluation, nan)`: the run a config file and overrides describe, trained earlier, evaluated again on
    its test split (no training, so no seconds); frees the Keras session."""
    import math

    import tf_keras as keras

    from ner.config import load_config
    from ner.experiment import evaluate

    evaluation = evaluate(str(load_config(config_file, overrides).run_dir()), verbose=False)
    keras.backend.clear_session()
    return evaluation, math.nan


def feature_crf_report(seed: int, overrides: Sequence[str] = ()):
    """The feature-CRF reference trained on seed `seed`'s labelled part of the seed-001 protocol (with
    `overrides`, e.g. another `split.labelled_size`) and scored on its test part: `(EvaluationReport,
    training seconds)`."""
    from ner.baselines.feature_crf import evaluate_on_split
    from ner.config import load_config

    reports, seconds = evaluate_on_split(load_config("config/bert_ner.yaml", [f"split.seed={seed}", *overrides]))
    return reports["test"], seconds


def read_records(path) -> list:
    """The rows of a runs CSV an example wrote (text columns `model`, `method`, `strategy`, `run`, `ids_file`,
    `commit`, `label`; int `seed`, `labelled`, `round`, `words`; the rest floats), or none if it does not exist."""
    import csv
    from pathlib import Path

    if not Path(path).is_file():
        return []
    text_columns = ("model", "method", "strategy", "run", "ids_file", "commit", "label")
    int_columns = ("seed", "labelled", "round", "words")
    with open(path, newline="", encoding="utf-8") as handle:
        return [{key: value if key in text_columns else (int(value) if key in int_columns else float(value))
                 for key, value in row.items()} for row in csv.DictReader(handle)]


def git_commit() -> str:
    """The short hash of the checkout's HEAD (what a results row records)."""
    import subprocess

    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


METRICS = ("accuracy", "accuracy_without_o", "mean_f1", "entity_f1")


def add_comparison_arguments(parser: argparse.ArgumentParser, results: str, fresh_also: str = "") -> None:
    """The options of a resumable comparison script: `--set` (every model run, not the feature CRF's),
    `--output` (the directory of `<results>.*`) and `--fresh` (ignore the runs recorded in `<results>/`, and
    what `fresh_also` says)."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key in every model run (not the feature CRF's)")
    parser.add_argument("--output", default="results", help=f"directory for {results}.* (default: %(default)s)")
    parser.add_argument("--fresh", action="store_true", help=f"ignore the runs recorded in <output>/{results}/{fresh_also}")


def invocation(module: str, argv: Optional[Sequence[str]]) -> str:
    """The command line that ran `python -m <module>` with `argv` (default: this process's arguments)."""
    import sys

    return " ".join([f"python -m {module}"] + (sys.argv[1:] if argv is None else list(argv)))


def summarise_runs(name: str, runs: Sequence[dict]):
    """One model's runs over seeds (rows with the `METRICS`): its summary CSV row (mean and sample std of
    each metric) and its Markdown cells (accuracies in %, "mean ± std")."""
    import numpy as np

    summary = {"model": name, "seeds": len(runs),
               **{f"{m}_mean": float(np.mean([r[m] for r in runs])) for m in METRICS},
               **{f"{m}_std": float(np.std([r[m] for r in runs], ddof=1)) if len(runs) > 1 else 0.0 for m in METRICS}}
    cells = " | ".join(mean_std([100 * r[m] if m.startswith("acc") else r[m] for r in runs]) for m in METRICS)
    return summary, cells


def per_class_table(per_class: Sequence[dict], models: Sequence[tuple]) -> list:
    """Markdown lines of the mean per-class F1 table: the header, then a row per `(name, shown as)` of
    `models` that has runs in `per_class` (rows: model, seed, one F1 per class)."""
    import numpy as np

    labels = [key for key in per_class[0] if key not in ("model", "seed")]
    rows = [f"| {shown} | " + " | ".join(
        f"{np.mean([r[label] for r in per_class if r['model'] == name]):.3f}" for label in labels) + " |"
        for name, shown in models if any(r["model"] == name for r in per_class)]
    return ["| model | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels), *rows]


def mean_std(values: Sequence[float]) -> str:
    """`values` as "mean ± sample std", four decimals (std 0 for one value)."""
    import numpy as np

    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.4f}"


def parse_pairs(values: Sequence[str], option: str) -> Dict[str, str]:
    """`NAME=VALUE` arguments as a dict, in order; SystemExit naming the option for one without `=` or a name
    given twice."""
    pairs = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"error: {option} {value!r}: expected NAME=VALUE")
        if name in pairs:
            raise SystemExit(f"error: {option} {name!r} is given twice; expected each name once")
        pairs[name] = rest
    return pairs
