"""Benchmark: what an epoch of each frozen-encoder model costs on cached features (issue #12's cost target).

    python -m benchmarks.benchmark_epoch_cost                          # bert_ner vs bert_crf, 5 epochs, 2 rounds
    python -m benchmarks.benchmark_epoch_cost --models bert_ner bert_crf bert_crf_bilstm \
        --set paths.feature_cache_dir=/tmp/cache                       # any config/<name>.yaml

Trains each model (`config/<name>.yaml`, seed-001 protocol, frozen encoder, feature cache) for `--epochs`
epochs in a fresh process, and the list of models `--rounds` times in turn, so that a machine whose speed
drifts slows every model alike. It prints, per model, the first epoch (tracing) and the median of the
later epochs over all rounds, the same per training step (models differ in batch size), and both against
the first model's. No evaluation: training time only. Fill the cache first (any run of the first model
does), or the first run's time includes encoding.
"""
import argparse
import json
import math
import os
import statistics
import sys
import tempfile

from benchmarks.fresh_process import run_json


def train_once(model: str, epochs: int, workdir: str, overrides: list) -> dict:
    """Trains `config/<model>.yaml` for `epochs` epochs in this process; returns its epoch times and steps."""
    import ner  # noqa: F401
    from ner.config import CONFIG_DIR, load_config
    from ner.experiment import train
    from ner.trainers.trainer import read_history

    config = load_config(CONFIG_DIR / f"{model}.yaml", [
        f"run_name=epoch_cost_{model}", f"training.epochs={epochs}", "training.early_stopping_patience=null",
        f"paths.saved_models_dir={workdir}/saved_models", f"paths.results_dir={workdir}/results", *overrides])
    if not config.training.feature_cache or config.encoder.trainable:
        sys.exit(f"{model}: this benchmark times frozen-encoder models on cached features")
    run_dir = train(config, verbose=False, overwrite=True)
    return {"epoch_seconds": [row["train_seconds"] for row in read_history(run_dir)],
            "batch_size": config.training.batch_size,
            "steps": math.ceil(config.split.labelled_size / config.training.batch_size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["bert_ner", "bert_crf"],
                        help="config names; the first is the reference the others are divided by")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch holds the tracing")
    if args.model:
        print(json.dumps(train_once(args.model, args.epochs, args.workdir, args.set)))
        return
    runs = {model: [] for model in args.models}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(args.rounds):
            for model in args.models:
                runs[model].append(run_json("benchmarks.benchmark_epoch_cost", [
                    "--model", model, "--epochs", str(args.epochs), "--workdir", workdir, "--set", *args.set]))
    print(f"machine: {os.cpu_count()} CPU cores; python -m benchmarks.benchmark_epoch_cost " + " ".join(sys.argv[1:]))
    reference = None
    for model, results in runs.items():
        first = statistics.median(result["epoch_seconds"][0] for result in results)
        later = statistics.median(seconds for result in results for seconds in result["epoch_seconds"][1:])
        step_ms = 1000 * later / results[0]["steps"]
        reference = reference or (later, step_ms)
        print(f"{model:>16}: batch {results[0]['batch_size']:>3}, {results[0]['steps']:>3} steps an epoch; first epoch "
              f"{first:.1f} s; later epochs {later:.2f} s ({later / reference[0]:.2f}x the first model's), "
              f"{step_ms:.1f} ms a step ({step_ms / reference[1]:.2f}x)")


if __name__ == "__main__":
    main()
