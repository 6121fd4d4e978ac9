"""Benchmark: where `ner tag-corpus`'s fixed cost goes, step by step, on a local Ray with one actor.

    NER_ENCODER_HANDLE=... python -m benchmarks.benchmark_bulk_startup --export EXPORT --run RUN

Prints the seconds of each step `ner.bulk` takes before and after the corpus itself: importing Ray and
`ner.bulk`, starting the local Ray instance (`ner.bulk._start_ray`), making one `ServingTagger` actor
ready (a worker process importing TensorFlow and tensorflow-text, then loading the serving SavedModel
`EXPORT` from `ner export`), its first call on a one-line batch (graph optimisation) and a second one, and
stopping Ray. `benchmarks/benchmark_tag_corpus.py` times the whole path; this says which part to cut.
Needs the `bulk` extra (Ray Data).
"""
import argparse
import os
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", required=True, help="a serving SavedModel written by `ner export`")
    parser.add_argument("--run", required=True, help="the run it was exported from (for its labels)")
    args = parser.parse_args()

    started = time.perf_counter()
    import numpy as np
    import ray

    from ner.bulk import ServingTagger, _start_ray
    from ner.runs import read_label_map, run_dir_for

    steps = [("import Ray and ner.bulk", time.perf_counter() - started)]
    label_map = read_label_map(run_dir_for(args.run))
    batch = {"line": np.array([1]), "text": np.array(["John Smith flew to London on Monday ."], dtype=object)}

    def timed(name, step):
        start = time.perf_counter()
        result = step()
        steps.append((name, time.perf_counter() - start))
        return result

    timed("ray.init (local, 2 CPUs)", lambda: _start_ray(1))
    actor = ray.remote(num_cpus=1)(ServingTagger).remote(args.export, label_map)
    timed("actor ready (TensorFlow imported, SavedModel loaded)", lambda: ray.get(actor.__ray_ready__.remote()))
    timed("first call (one line)", lambda: ray.get(actor.__call__.remote(batch)))
    timed("second call (one line)", lambda: ray.get(actor.__call__.remote(batch)))
    timed("ray.shutdown", ray.shutdown)
    print(f"machine: {os.cpu_count()} CPU cores; python -m benchmarks.benchmark_bulk_startup " + " ".join(sys.argv[1:]))
    for name, seconds in steps:
        print(f"{name:54}: {seconds:6.2f} s")


if __name__ == "__main__":
    main()
