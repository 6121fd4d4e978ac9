"""Benchmark: BERT NER with the feature cache vs the seed-001-style loop (encoder on every step).

    python -m benchmarks.benchmark_feature_cache                 # full protocol, 20 epochs each
    python -m benchmarks.benchmark_feature_cache --live-epochs 4 # live loop shortened, extrapolated

Prints, from one run on one machine:
  1. the default encoder's throughput at batch 128 on the GMB test sentences (sentences/s, tokens/s);
  2. wall time of BERT NER (20 epochs on the 2,560 labelled sentences + evaluation on the 9,600 test
     sentences) with the cache (starting from an empty cache, so encoding is included) and with the
     live encoder, their ratio, and both runs' test metrics; then the same cached run again on the
     now warm cache (what every later seed, KL stage or evaluation of the same corpus costs);
  3. the cached run's time divided by one encoder pass over the same sentences;
  4. the peak resident memory of each run (each runs in its own process).
Every variant runs in a fresh subprocess so memory and caches do not leak between them.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time

from benchmarks.fresh_process import run_json


def run_variant(variant: str, epochs: int, workdir: str) -> dict:
    """Trains and evaluates one variant in this process; returns timings, metrics and peak memory."""
    import ner  # noqa: F401
    from ner.config import CONFIG_DIR, load_config
    from ner.experiment import evaluate, train

    overrides = [f"run_name=bench_{variant}", f"training.epochs={epochs}",
                 f"training.feature_cache={'false' if variant == 'live' else 'true'}",
                 f"paths.saved_models_dir={workdir}/saved_models", f"paths.results_dir={workdir}/results",
                 f"paths.feature_cache_dir={workdir}/feature_cache"]
    config = load_config(CONFIG_DIR / "bert_ner.yaml", overrides)
    start = time.perf_counter()
    run_dir = train(config, verbose=False, overwrite=True)
    trained = time.perf_counter()
    summary = evaluate(str(run_dir), verbose=False).report.summary_row()
    done = time.perf_counter()
    return {"variant": variant, "epochs": epochs, "train_s": trained - start, "evaluate_s": done - trained,
            "total_s": done - start, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **summary}


def encoder_pass() -> dict:
    """One pass of the default encoder over the labelled, validation and test rows, batch 128."""
    import numpy as np
    import tensorflow as tf

    import ner  # noqa: F401
    from ner.config import CONFIG_DIR, load_config
    from ner.encoders.hub_encoder import load_encoder
    from ner.experiment import prepare_data
    from ner.feature_cache import make_encode_fn

    config = load_config(CONFIG_DIR / "bert_ner.yaml")
    data = prepare_data(config, verbose=False)
    encode = make_encode_fn(load_encoder(config.encoder.handle, trainable=False), use_all_layers=False)
    passes = {}
    for parts in (("test",), ("labelled", "validation", "test")):
        rows = np.concatenate([data.rows(part) for part in parts])
        encoded = data.encoded_all
        encode({name: tf.constant(getattr(encoded, name)[rows[:8], :16])
                for name in ("input_word_ids", "input_mask", "input_type_ids")})  # trace once
        tokens, start = 0, time.perf_counter()
        for begin in range(0, len(rows), 128):
            batch = rows[begin:begin + 128]
            width = int(encoded.input_mask[batch].sum(1).max())
            tokens += int(encoded.input_mask[batch].sum())
            encode({name: tf.constant(getattr(encoded, name)[batch, :width])
                    for name in ("input_word_ids", "input_mask", "input_type_ids")})
        seconds = time.perf_counter() - start
        passes["+".join(parts)] = {"sentences": len(rows), "tokens": tokens, "seconds": seconds}
    return passes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--live-epochs", type=int, default=None,
                        help="epochs of the live loop (default: --epochs); fewer are extrapolated linearly")
    parser.add_argument("--variant", choices=["cached", "warm", "live", "encoder"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant == "encoder":
        print(json.dumps(encoder_pass()))
        return
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.epochs, args.workdir)))
        return

    live_epochs = args.live_epochs or args.epochs
    with tempfile.TemporaryDirectory() as workdir:
        def variant(*args_of_variant: str) -> dict:
            return run_json("benchmarks.benchmark_feature_cache", [*args_of_variant, "--workdir", workdir])

        passes = variant("--variant", "encoder")
        cached = variant("--variant", "cached", "--epochs", str(args.epochs))
        warm = variant("--variant", "warm", "--epochs", str(args.epochs))
        live = variant("--variant", "live", "--epochs", str(live_epochs))

    test_pass, all_pass = passes["test"], passes["labelled+validation+test"]
    print(f"machine: {os.cpu_count()} CPU cores; python -m benchmarks.benchmark_feature_cache "
          + " ".join(sys.argv[1:]))
    print(f"1. encoder throughput, batch 128, {test_pass['sentences']:,} GMB test sentences: "
          f"{test_pass['sentences'] / test_pass['seconds']:.1f} sentences/s, "
          f"{test_pass['tokens'] / test_pass['seconds']:.0f} tokens/s")
    live_train = live["train_s"] * args.epochs / live_epochs
    live_total = live_train + live["evaluate_s"]
    note = "" if live_epochs == args.epochs else f" (trained {live_epochs} epochs, training time x{args.epochs / live_epochs:.1f})"
    print(f"2. BERT NER, {args.epochs} epochs + test evaluation: cached {cached['total_s']:.0f} s "
          f"(train {cached['train_s']:.0f} s incl. encoding, evaluate {cached['evaluate_s']:.0f} s); "
          f"live {live_total:.0f} s{note}; speed-up {live_total / cached['total_s']:.1f}x")
    print(f"   warm cache (every row already encoded): {warm['total_s']:.0f} s (train {warm['train_s']:.0f} s, "
          f"evaluate {warm['evaluate_s']:.0f} s); speed-up {live_total / warm['total_s']:.1f}x")
    for run in (cached, warm, live):
        print(f"   {run['variant']:>6} ({run['epochs']} epochs): accuracy {run['accuracy']:.4f}, "
              f"accuracy without O {run['accuracy_without_o']:.4f}, mean F1 {run['mean_f1']:.4f}, "
              f"entity F1 {run['entity_f1']:.4f}")
    print(f"3. cached run / one encoder pass over its {all_pass['sentences']:,} sentences "
          f"({all_pass['seconds']:.0f} s): {cached['total_s'] / all_pass['seconds']:.2f}x")
    print(f"4. peak resident memory: cached {cached['peak_rss_mib']:.0f} MiB, warm {warm['peak_rss_mib']:.0f} MiB, "
          f"live {live['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
