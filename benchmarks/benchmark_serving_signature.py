"""Benchmark: a serving SavedModel's signature alone, as a `tag-corpus` actor calls it.

    python -m benchmarks.benchmark_serving_signature --export EXPORT_DIR --input SENTENCES.txt \
        [--chunk-sizes 64 128 256] [--no-grappler]

Loads the export (`ner export`) in this process with plain `tf.saved_model.load` and prints the seconds
to import TensorFlow, to load the SavedModel and to make the first call, then the steady rate in
sentences/s for each `--chunk-sizes` value over the `--input` lines (one sentence a line, words separated
by spaces), sorted by length as the actor sorts them. `--no-grappler` turns TensorFlow's graph
optimiser off before loading (`disable_meta_optimizer`), to weigh a faster first call against the steady
rate. Run it once per setting, in fresh processes, on a quiet machine.
"""
import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", required=True, help="a serving SavedModel directory (`ner export`)")
    parser.add_argument("--input", required=True, help="a UTF-8 text file, one sentence a line")
    parser.add_argument("--chunk-sizes", type=int, nargs="+", default=[64], help="sentences per call")
    parser.add_argument("--no-grappler", action="store_true", help="turn the graph optimiser off")
    args = parser.parse_args()

    start = time.perf_counter()
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tokenizer's ops)

    if args.no_grappler:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    imported = time.perf_counter()
    serve = tf.saved_model.load(args.export).signatures["serving_default"]
    loaded = time.perf_counter()
    with open(args.input, encoding="utf-8") as handle:
        lines = sorted((line.strip() for line in handle if line.strip()), key=lambda line: len(line.split()))
    serve(sentences=tf.constant(lines[:args.chunk_sizes[0]]))
    first = time.perf_counter()
    grappler = "off" if args.no_grappler else "on"
    print(f"grappler {grappler}: import {imported - start:.1f} s, load {loaded - imported:.1f} s, "
          f"first call {first - loaded:.1f} s")
    for chunk in args.chunk_sizes:
        serve(sentences=tf.constant(lines[:chunk]))  # this size's trace, not timed
        began = time.perf_counter()
        for i in range(0, len(lines), chunk):
            serve(sentences=tf.constant(lines[i:i + chunk]))
        print(f"grappler {grappler}, {chunk} sentences a call: {len(lines) / (time.perf_counter() - began):.1f} "
              f"sentences/s over {len(lines):,}")


if __name__ == "__main__":
    main()
