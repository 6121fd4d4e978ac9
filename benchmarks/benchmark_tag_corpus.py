"""Benchmark: `ner tag-corpus` on Ray Data (`ner.bulk`) against `Tagger.predict` in one process.

    NER_ENCODER_HANDLE=... python -m benchmarks.benchmark_tag_corpus --run saved_models/benchmark_gmb_bert_crf

Tags `--sentences` texts (default 10,000): the run's corpus sentences by id, each a line of words joined
by spaces, repeated from the first when the corpus has fewer; or the first `--sentences` lines of a text
file given as `--input`. Prints sentences/s of the bulk path, timed end to end as the command runs it
(a local Ray instance started and stopped, `--workers` actors loading the serving SavedModel, the output
written; the export itself is not timed), and of `predict` on the same texts after one warm-up call;
the issue's target is bulk within 1.5x of predict. To tell the fixed cost from the rate, it also times
the bulk path on the first `--fixed-lines` texts alone (Ray started, actors loaded, a few lines tagged)
and prints the rate of the rest; and, command against command, `ner predict --input FILE --format jsonl`
in a process of its own (TensorFlow imported, the run loaded, the output written: its fixed cost too).
With `--repeats N` the bulk path and `predict` each run N times, one after the other, and the ratio is
the median's: single runs of either moved by up to 15 % on a quiet 2-core machine.
Needs the `bulk` extra (Ray Data).
"""
import argparse
import dataclasses
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a trained run (name under saved_models/ or directory)")
    parser.add_argument("--sentences", type=int, default=10_000, help="texts to tag (default: %(default)s)")
    parser.add_argument("--input", help="a UTF-8 text file, one text per line (default: the run's corpus)")
    parser.add_argument("--workers", type=int, default=1, help="Ray actors (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, help="lines per actor call (default: ner.bulk.BulkOptions's)")
    parser.add_argument("--threads", type=int, help="TensorFlow threads per actor (default: TensorFlow's own)")
    parser.add_argument("--block-lines", type=int, help="lines per Ray Data block (default: BulkOptions's)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of the bulk path and of predict, alternating; the ratio of medians")
    parser.add_argument("--fixed-lines", type=int, default=64,
                        help="texts of the run that measures the fixed cost (default: %(default)s)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")

    import ner
    from ner.bulk import bulk_options, tag_corpus
    from ner.bulk_input import read_corpus as read_lines
    from ner.corpora import read_corpus
    from ner.serving import export_serving

    tagger = ner.load(args.run)
    if args.input is None:
        corpus = read_corpus(tagger.config.data)
        sentences = (" ".join(corpus.sentences[i].words) for i in sorted(corpus.sentences))
        texts = list(itertools.islice(itertools.cycle(list(sentences)), args.sentences))
    else:
        with open(args.input, encoding="utf-8") as handle:
            texts = [line.rstrip("\r\n") for line in itertools.islice(handle, args.sentences)]
    options = bulk_options(args.workers, args.batch_size, args.threads)
    if args.block_lines is not None:
        options = dataclasses.replace(options, block_lines=args.block_lines)
    with tempfile.TemporaryDirectory(prefix="benchmark-tag-corpus-") as tmp:
        export_dir = export_serving(tagger, Path(tmp) / "export")

        def timed_bulk(lines):
            """(summary, seconds) of tag-corpus on `lines`, end to end."""
            corpus_file = Path(tmp) / "corpus.txt"
            corpus_file.write_text("".join(text + "\n" for text in lines), encoding="utf-8")
            start = time.perf_counter()
            done = tag_corpus(export_dir, tagger.label_map, read_lines(corpus_file), Path(tmp) / "tagged.jsonl",
                              Path(tmp) / "errors.jsonl", options)
            return done, time.perf_counter() - start

        _, fixed = timed_bulk(texts[:args.fixed_lines])
        tagger.predict(texts[:64])  # tracing
        bulk_runs, predict_runs = [], []
        for _ in range(args.repeats):
            summary, seconds = timed_bulk(texts)
            bulk_runs.append(seconds)
            start = time.perf_counter()
            tagger.predict(texts)
            predict_runs.append(time.perf_counter() - start)
        start = time.perf_counter()  # corpus.txt holds all the texts now
        with open(Path(tmp) / "predicted.jsonl", "w", encoding="utf-8") as output:
            subprocess.run([sys.executable, "-m", "ner.cli", "predict", "--run", args.run, "--input",
                            str(Path(tmp) / "corpus.txt"), "--format", "jsonl"], stdout=output, check=True)
        predict_command = time.perf_counter() - start
    bulk, predict = statistics.median(bulk_runs), statistics.median(predict_runs)
    print(f"machine: {os.cpu_count()} CPU cores; python -m benchmarks.benchmark_tag_corpus " + " ".join(sys.argv[1:]))
    print(f"{len(texts):,} texts: {summary.tagged:,} tagged, {len(summary.bad):,} bad; "
          f"{options.workers} worker(s) of {options.threads or 'default'} threads, blocks of {options.block_lines} "
          f"lines, batches of {options.batch_size} lines, "
          f"{options.chunk_size} sentences per signature call in order of length")
    print(f"{'tag-corpus (Ray Data, end to end)':36}: {summary.lines / bulk:8.1f} sentences/s ({bulk:.1f} s)")
    print(f"{'Tagger.predict (one process)':36}: {len(texts) / predict:8.1f} sentences/s ({predict:.1f} s)")
    if args.repeats > 1:
        print(f"medians of {args.repeats} runs each; bulk {', '.join(f'{x:.1f}' for x in bulk_runs)} s; "
              f"predict {', '.join(f'{x:.1f}' for x in predict_runs)} s; run by run "
              + ", ".join(f"{b / p:.2f}x" for b, p in zip(bulk_runs, predict_runs)))
    print(f"bulk takes {bulk / predict:.2f}x predict's time (target: at most 1.5x)")
    print(f"{'ner predict --format jsonl (a process)':36}: {len(texts) / predict_command:8.1f} sentences/s "
          f"({predict_command:.1f} s); bulk takes {bulk / predict_command:.2f}x its time")
    rest = (len(texts) - args.fixed_lines) / (bulk - fixed)
    print(f"fixed cost ({args.fixed_lines} texts end to end: Ray started and stopped, SavedModel loaded): "
          f"{fixed:.1f} s; beyond it {rest:.1f} sentences/s, {len(texts) / predict / rest:.2f}x predict's time "
          "per sentence")


if __name__ == "__main__":
    main()
