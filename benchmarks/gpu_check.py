"""GPU check: the figures of issue 17 in one short run (under 6 minutes on one GPU), also runnable on CPU.

    bash benchmarks/gpu_check.sh             # the full check (a GPU machine with TensorFlow)
    bash benchmarks/gpu_check.sh --quick     # CPU-sized: few sentences and steps, float32 and bfloat16

Builds BERT NER from `config/bert_ner.yaml` (the encoder of `NER_ENCODER_HANDLE` or the config; the head
untrained: throughput does not depend on its weights) on the first GMB sentences of at most 64 word pieces,
batches padded to `--buckets`, and prints, for float32 and each mixed policy (`training.precision`):

1. encoder throughput: sentences/s of the model's encoder alone (`sequence_output`), rows sorted by length;
2. fine-tuning steps/s: supervised steps (`Trainer.make_step`) with the encoder trainable, batch 32;
3. MC dropout: seconds for T = 20 samples over the sentences (`MCDropoutPredictor`), and its ratio to one
   deterministic pass;
4. prediction: sentences/s of `Tagger.predict_words` (rows sorted by length, outputs in input order).

A TF-Hub encoder's dtypes are fixed when it is exported, so under a mixed policy only the layers above
the encoder compute in 16 bits (`ner.precision`); line 1 shows what that leaves to gain.
"""
import argparse
import dataclasses
import json
import os
import time

import numpy as np

MAX_PIECES = 64


def timed(fn, *args) -> float:
    """Seconds of `fn(*args)` after one untimed call (tracing, compilation)."""
    fn(*args)
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="CPU-sized: 256 sentences, 5 steps, no float16")
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--buckets", default="[16,32,64]")
    args = parser.parse_args()
    sentences_wanted, steps = (256, 5) if args.quick else (args.sentences, args.steps)
    precisions = ("float32", "mixed_bfloat16") if args.quick else ("float32", "mixed_bfloat16", "mixed_float16")
    buckets = tuple(json.loads(args.buckets))

    import ner  # noqa: F401
    import tensorflow as tf
    import tf_keras as keras
    from ner.api import Tagger
    from ner.config import CONFIG_DIR, load_config
    from ner.corpora import read_corpus
    from ner.encoders.hub_encoder import encoder_vocab
    from ner.feature_cache import make_encode_fn
    from ner.models import build_model
    from ner.precision import loss_scaled
    from ner.prediction import FirstPiecePredictor
    from ner.preprocessor import WordPieceFeaturizer, length_order, make_dataset, select_rows
    from ner.tagging import LabelMap
    from ner.trainers.trainer import Trainer
    from ner.uncertainty.mc_dropout import MCDropoutPredictor

    config = load_config(CONFIG_DIR / "bert_ner.yaml", ["encoder.trainable=true", "training.batch_size=128",
                                                        f"training.length_buckets={list(buckets)}",
                                                        f"data.max_seq_length={buckets[-1]}"])
    corpus = read_corpus(config.data)
    label_map = LabelMap.for_scheme(config.data.tag_scheme, corpus.entity_types)
    vocab = encoder_vocab(config.encoder.handle)
    featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, MAX_PIECES, label_map,
                                     long_sentences="truncate")
    encoded = featurizer.featurize([corpus.sentences[i] for i in sorted(corpus.sentences)])
    short = np.flatnonzero(encoded.input_mask.sum(axis=1) <= MAX_PIECES)[:sentences_wanted]
    encoded = select_rows(encoded, short[(encoded.sentence_lengths[short] == encoded.num_words[short])])
    words = [list(corpus.sentences[i].words) for i in encoded.sentence_ids]
    count = len(words)
    devices = [device.name for device in tf.config.list_logical_devices("GPU")] or ["CPU"]
    print(f"device: {', '.join(devices)} ({os.cpu_count()} CPU cores); {count:,} GMB sentences of at most "
          f"{MAX_PIECES} word pieces; buckets {list(buckets)}; TensorFlow {tf.__version__}")

    by_length = select_rows(encoded, length_order(encoded))
    for precision in precisions:
        model = build_model(config.model, config.encoder, label_map.num_labels, vocab.vocab_size,
                            label_map=label_map, precision=precision)
        encode = make_encode_fn(model.encoder, use_all_layers=False)
        batches = list(make_dataset(by_length, 128, shuffle=False, seed=None, length_buckets=buckets))

        def encoder_pass():
            for features, _ in batches:
                encode({name: features[name] for name in ("input_word_ids", "input_mask", "input_type_ids")})

        encoder_rate = count / timed(encoder_pass)
        train_batches = list(make_dataset(encoded, 32, shuffle=True, seed=1, length_buckets=buckets).take(steps))
        trainer = Trainer(model, "/tmp/gpu_check", outside_id=label_map.label_to_id("O"), verbose=False,
                          precision=precision)
        step = trainer.make_step(None, loss_scaled(keras.optimizers.Adam(1e-5), precision),
                                 (tf.nest.map_structure(lambda t: tf.TensorSpec([None, None], t.dtype),
                                                        train_batches[0][0]), tf.TensorSpec([None, None], tf.int32)))

        def fine_tune():
            for features, labels in train_batches:
                step(features, labels)

        steps_rate = len(train_batches) / timed(fine_tune)
        dataset = make_dataset(by_length, 128, shuffle=False, seed=None, length_buckets=buckets)
        predictor = FirstPiecePredictor(model)
        deterministic = timed(lambda: predictor.predict(dataset, probabilities=True))
        mc = timed(lambda: predictor.predict(dataset, decode=False, mc_predictor=MCDropoutPredictor(model, 20, 0.5)))
        tagger = Tagger(dataclasses.replace(config, training=dataclasses.replace(config.training,
                                                                                 precision=precision)),
                        model, vocab, label_map)
        predict_rate = count / timed(tagger.predict_words, words)
        print(f"{precision:15}: encoder {encoder_rate:9.1f} sentences/s | fine-tuning {steps_rate:6.2f} steps/s "
              f"(batch 32) | MC dropout T=20 {mc:6.2f} s = {mc / deterministic:4.1f}x one pass | predict "
              f"{predict_rate:8.1f} sentences/s")


if __name__ == "__main__":
    main()
