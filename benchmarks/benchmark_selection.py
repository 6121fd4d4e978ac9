"""Times `ner select` (`Tagger.select`) over a pool, per strategy, with and without the diversity term.

    python -m benchmarks.benchmark_selection --run RUN --pool FILE [--sentences 35000] [--mc-samples 20]

The pool is a text file with one sentence per line (as `ner select --pool` reads it); its lines are
repeated in turn up to `--sentences` (default: the file as it is), so a small file of real sentences
stands in for a large pool of the same lengths. The tagger is loaded and every strategy traced on a few
sentences first; each timed call then covers featurizing, the model passes, the scores and the pick of
`--budget` sentences. The issue's target (#18): a 35,000-sentence pool with T = 20 in at most 2 minutes
on 2 cores. Run it on a quiet machine: other processes only ever add time.
"""
import argparse
import itertools
import time

from examples.common import exit_on_error

CASES = (("random", 0.0), ("entropy", 0.0), ("mnlp", 0.0), ("mnlp", 0.3), ("bald", 0.0), ("bald", 0.3))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time ner select per strategy over a pool.")
    parser.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    parser.add_argument("--pool", required=True, help="text file, one sentence per line")
    parser.add_argument("--sentences", type=int, default=None, help="pool size, repeating the file's lines")
    parser.add_argument("--budget", type=int, default=2560, help="sentences to pick (default %(default)s)")
    parser.add_argument("--mc-samples", type=int, default=20, help="MC samples T for bald (default %(default)s)")
    args = parser.parse_args(argv)
    exit_on_error(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    from ner.api import load
    from ner.cli import read_pool
    from ner.utils import set_seed

    lines = read_pool(args.pool, "text")
    pool = list(itertools.islice(itertools.cycle(lines), args.sentences or len(lines)))
    tagger = load(args.run)
    set_seed(tagger.config.training.seed)
    for strategy, diversity in CASES:  # trace every path once
        tagger.select(pool[:8], 2, strategy, diversity, args.mc_samples)
    words = sum(map(len, pool))
    print(f"[selection] run {args.run}: {len(pool)} sentences, {words} words, budget {args.budget}, "
          f"T = {args.mc_samples}")
    for strategy, diversity in CASES:
        start = time.perf_counter()
        tagger.select(pool, args.budget, strategy, diversity, args.mc_samples)
        seconds = time.perf_counter() - start
        print(f"[selection] {strategy:<8} diversity {diversity:<4} {seconds:8.1f} s  "
              f"({len(pool) / seconds:,.0f} sentences/s)", flush=True)


if __name__ == "__main__":
    main()
