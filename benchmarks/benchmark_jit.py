"""Benchmark: does XLA (`training.jit_compile`) pay off for the head's training steps on this machine?

    python -m benchmarks.benchmark_jit                 # BERT NER on cached features, 10 epochs each way

Trains BERT NER on the seed-001 protocol (2,560 labelled sentences, frozen encoder, feature cache) with
the training steps compiled by `tf.function` alone and with `jit_compile=True`, each in a fresh
process, and prints per-epoch training time (the first epoch holds the tracing and, with XLA, most
compilations: batches vary in length, so XLA compiles once per batch shape) and the test metrics of
both, with each process's wall time and peak resident memory (the cache is read with pread, so a warm
run holds only the batches in use). Fill the cache first (any BERT NER run does) or the first variant's
time includes encoding.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_variant(jit_compile: bool, epochs: int, workdir: str) -> dict:
    import ner  # noqa: F401
    from ner.config import CONFIG_DIR, load_config
    from ner.experiment import evaluate, train
    from ner.trainers.trainer import read_history

    config = load_config(CONFIG_DIR / "bert_ner.yaml", [
        f"run_name=jit_{str(jit_compile).lower()}", f"training.epochs={epochs}",
        f"training.jit_compile={str(jit_compile).lower()}", f"paths.saved_models_dir={workdir}/saved_models",
        f"paths.results_dir={workdir}/results"])
    start = time.perf_counter()
    run_dir = train(config, verbose=False, overwrite=True)
    seconds = [row["train_seconds"] for row in read_history(run_dir)]
    summary = evaluate(str(run_dir), verbose=False).report.summary_row()
    return {"jit_compile": jit_compile, "epoch_seconds": seconds, "total_s": time.perf_counter() - start,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--variant", choices=["plain", "xla"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant == "xla", args.epochs, args.workdir)))
        return
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for variant in ("plain", "xla"):
            output = subprocess.run(
                [sys.executable, "-m", "benchmarks.benchmark_jit", "--variant", variant, "--epochs", str(args.epochs),
                 "--workdir", workdir], cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
    print(f"machine: {os.cpu_count()} CPU cores; python -m benchmarks.benchmark_jit " + " ".join(sys.argv[1:]))
    for result in results:
        first, rest = result["epoch_seconds"][0], result["epoch_seconds"][1:]
        steady = sum(rest) / len(rest) if rest else float("nan")
        print(f"jit_compile={result['jit_compile']!s:5}: first epoch {first:.1f} s, later epochs {steady:.2f} s "
              f"each, all {sum(result['epoch_seconds']):.1f} s; test mean F1 {result['mean_f1']:.4f}, "
              f"entity F1 {result['entity_f1']:.4f}; whole run (train + test evaluation) {result['total_s']:.0f} s, "
              f"peak resident memory {result['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
