"""Benchmark: do XLA (`training.jit_compile`) and fixed batch widths (`training.length_buckets`) pay off?

    python -m benchmarks.benchmark_jit                 # BERT NER on cached features, 10 epochs each way
    python -m benchmarks.benchmark_jit --epochs 3 --set training.feature_cache=false split.labelled_size=256 \
        split.test_size=256 training.batch_size=32     # the live encoder on a small part (CPU-sized)

Trains BERT NER on the seed-001 protocol (2,560 labelled sentences, frozen encoder, feature cache, unless
`--set` overrides config keys) four ways, each in a fresh process: steps compiled by `tf.function`
alone or with `jit_compile=True`, batches trimmed to their longest row or padded to `--buckets`. It
prints per-epoch training time (the first epoch holds the tracing and, with XLA, most compilations: XLA
compiles once per batch shape, so trimmed batches mean one compilation per distinct width, buckets at
most one per bucket), the test metrics of each, and each process's wall time and peak resident memory.
Fill the cache first (any BERT NER run does) or the first variant's time includes encoding.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

from benchmarks.fresh_process import run_json

VARIANTS = {"plain": (False, False), "xla": (True, False), "plain_buckets": (False, True), "xla_buckets": (True, True)}


def run_variant(jit_compile: bool, buckets: list, epochs: int, workdir: str, overrides: list) -> dict:
    import ner  # noqa: F401
    from ner.config import CONFIG_DIR, load_config
    from ner.experiment import evaluate, train
    from ner.trainers.trainer import read_history

    config = load_config(CONFIG_DIR / "bert_ner.yaml", [
        f"run_name=jit_{str(jit_compile).lower()}_{len(buckets)}", f"training.epochs={epochs}",
        f"training.jit_compile={str(jit_compile).lower()}", f"training.length_buckets={buckets or 'null'}",
        f"paths.saved_models_dir={workdir}/saved_models", f"paths.results_dir={workdir}/results", *overrides])
    start = time.perf_counter()
    run_dir = train(config, verbose=False, overwrite=True)
    seconds = [row["train_seconds"] for row in read_history(run_dir)]
    summary = evaluate(str(run_dir), verbose=False).report.summary_row()
    return {"jit_compile": jit_compile, "buckets": buckets, "epoch_seconds": seconds,
            "total_s": time.perf_counter() - start,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--buckets", default="[16,32,64,128]", help="training.length_buckets of the bucketed runs")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    buckets = json.loads(args.buckets)
    if args.variant:
        jit_compile, bucketed = VARIANTS[args.variant]
        print(json.dumps(run_variant(jit_compile, buckets if bucketed else [], args.epochs, args.workdir, args.set)))
        return
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for variant in VARIANTS:
            results.append(run_json("benchmarks.benchmark_jit", [
                "--variant", variant, "--epochs", str(args.epochs), "--buckets", args.buckets, "--workdir", workdir,
                "--set", *args.set]))
    print(f"machine: {os.cpu_count()} CPU cores; python -m benchmarks.benchmark_jit " + " ".join(sys.argv[1:]))
    for result in results:
        first, rest = result["epoch_seconds"][0], result["epoch_seconds"][1:]
        steady = sum(rest) / len(rest) if rest else float("nan")
        print(f"jit_compile={result['jit_compile']!s:5} buckets={str(result['buckets'] or 'none'):16}: first epoch "
              f"{first:.1f} s, later epochs {steady:.2f} s each, all {sum(result['epoch_seconds']):.1f} s; test mean "
              f"F1 {result['mean_f1']:.4f}, entity F1 {result['entity_f1']:.4f}; whole run (train + test "
              f"evaluation) {result['total_s']:.0f} s, peak resident memory {result['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
