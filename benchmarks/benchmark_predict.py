"""Benchmark: `Tagger.predict_words` in input order and sorted by length, against the encoder alone.

    NER_ENCODER_HANDLE=... python -m benchmarks.benchmark_predict --run saved_models/benchmark_gmb_bert_crf

Takes the first `--sentences` sentences (by id) of the run's corpus as word lists and prints sentences/s
of: the run's `predict_words` with rows batched in input order (`sort_by_length=False`) and sorted by
length (the default), and the encoder alone (its `sequence_output`, the model's first stage) on the same
rows sorted by length in the same batch size; plus the word pieces each order computes per real piece.
Every path runs once on a few batches first, so that tracing is not timed. With `--buckets` the run's
`training.length_buckets` is replaced for both predict paths.
"""
import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np


def padded_pieces(lengths: np.ndarray, batch_size: int) -> int:
    """Word pieces computed when rows of `lengths` [R], in that order, are batched and trimmed."""
    return sum(int(lengths[i:i + batch_size].max()) * len(lengths[i:i + batch_size])
               for i in range(0, len(lengths), batch_size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a trained run (name under saved_models/ or directory)")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--buckets", help="training.length_buckets for both predict paths, e.g. [16,32,64,128]")
    args = parser.parse_args()

    import ner
    import tensorflow as tf
    from ner.corpora import read_corpus
    from ner.feature_cache import make_encode_fn
    from ner.preprocessor import Sentence, length_order, select_rows
    from ner.tagging import OUTSIDE

    tagger = ner.load(args.run)
    if args.buckets is not None:
        tagger.config = dataclasses.replace(tagger.config, training=dataclasses.replace(
            tagger.config.training, length_buckets=tuple(json.loads(args.buckets))))
    corpus = read_corpus(tagger.config.data)
    sentences = [list(corpus.sentences[i].words) for i in sorted(corpus.sentences)[:args.sentences]]
    batch_size = tagger.config.training.batch_size
    encoded = tagger.featurizer.featurize([Sentence(i, tuple(w), (OUTSIDE,) * len(w)) for i, w in enumerate(sentences)])
    by_length = select_rows(encoded, length_order(encoded))
    encode = make_encode_fn(tagger.model.encoder, use_all_layers=False)

    def encoder_only(rows):
        for start in range(0, len(rows.input_mask), batch_size):
            width = int(rows.input_mask[start:start + batch_size].sum(axis=1).max())
            encode({name: tf.constant(getattr(rows, name)[start:start + batch_size, :width])
                    for name in ("input_word_ids", "input_mask", "input_type_ids")})

    warm_rows = select_rows(by_length, np.arange(min(3 * batch_size, len(by_length.input_mask))))
    paths = {  # name: (function, its warm-up argument, its timed argument)
        "predict, input order": (lambda words: tagger.predict_words(words, sort_by_length=False),
                                 sentences[:3 * batch_size], sentences),
        "predict, sorted by length": (tagger.predict_words, sentences[:3 * batch_size], sentences),
        "encoder only, sorted by length": (encoder_only, warm_rows, by_length)}
    rates = {}
    for name, (path, warm, timed) in paths.items():
        path(warm)  # tracing
        start = time.perf_counter()
        path(timed)
        rates[name] = len(sentences) / (time.perf_counter() - start)
    lengths = encoded.input_mask.sum(axis=1)
    real = int(lengths.sum())
    print(f"machine: {os.cpu_count()} CPU cores; python -m benchmarks.benchmark_predict " + " ".join(sys.argv[1:]))
    print(f"{len(sentences):,} sentences, {len(lengths):,} rows, {real:,} real word pieces, batch size {batch_size}, "
          f"length_buckets {tagger.config.training.length_buckets}; pieces computed per real piece: input order "
          f"{padded_pieces(lengths, batch_size) / real:.2f}, "
          f"sorted {padded_pieces(np.sort(lengths), batch_size) / real:.2f}")
    for name, rate in rates.items():
        print(f"{name:32}: {rate:8.1f} sentences/s")
    ratio = rates["predict, sorted by length"] / rates["encoder only, sorted by length"]
    print(f"predict sorted / encoder only: {ratio:.2f}")


if __name__ == "__main__":
    main()
