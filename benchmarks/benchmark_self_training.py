"""Times one self-training round on cached frozen-encoder features: the teacher tagging the unlabelled pool,
the selection, and the student's steps.

    python -m benchmarks.benchmark_self_training --run saved_models/bert_crf [--pool 34839] [--pairs 200]

`--run` is a trained run of a model that trains on cached features (e.g. `bert_crf`); its config and split
are used as saved. The pool is the first `--pool` sentences of the run's unlabelled part (default: all of
it). Rows missing from the feature cache are encoded first, outside the timings (a frozen encoder's
features are computed once, ever). Printed: the pool's tagging time and sentences/s (marginal confidence;
with `--mc-samples T` the MC-dropout confidence too), the selection time, and the seconds per
pseudo-labelled + labelled pair, from which a round of P pairs is P times that. The issue's target: one
round over the 35k unlabelled sentences within 3 minutes on 2 cores.
"""
import argparse
import tempfile
import time

from examples.common import exit_on_error


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time a self-training round on cached features.")
    parser.add_argument("--run", required=True, help="a trained run (name under saved_models/ or a directory)")
    parser.add_argument("--pool", type=int, default=None, help="unlabelled sentences tagged (default: all)")
    parser.add_argument("--pairs", type=int, default=200, help="student pairs timed (default %(default)s)")
    parser.add_argument("--mc-samples", type=int, default=0, help="also time MC-dropout confidence with T samples")
    parser.add_argument("--keep-fraction", type=float, default=0.5)
    args = parser.parse_args(argv)
    exit_on_error(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    from ner.config import load_config
    from ner.data import ModelInputs, model_for, prepare_data
    from ner.preprocessor import DataSplit
    from ner.prediction import FirstPiecePredictor
    from ner.runs import CONFIG_FILE, SPLIT_FILE, run_dir_for
    from ner.self_training import bald_confidence, marginal_confidence, select_pseudo_labels
    from ner.tagging import OUTSIDE
    from ner.trainers.trainer import Trainer, load_weights
    from ner.uncertainty.mc_dropout import MCDropoutPredictor

    run_dir = run_dir_for(args.run)
    config = load_config(run_dir / CONFIG_FILE)
    data = prepare_data(config, split=DataSplit.from_json(run_dir / SPLIT_FILE), verbose=False)
    inputs = ModelInputs(config, data, model_for(config, data), verbose=False)
    if inputs.store is None:
        raise SystemExit(f"error: run {run_dir} does not train on cached features; expected a frozen-encoder model")
    load_weights(inputs.trainable_model, run_dir)
    pool_ids = data.split.unlabelled_ids[:args.pool]
    pool_rows = data.rows_of(pool_ids)
    inputs.rows_dataset(pool_rows, shuffle=False, part="unlabelled")  # encodes missing rows, untimed
    predictor = FirstPiecePredictor(inputs.trainable_model)
    tagging = inputs.rows_dataset(pool_rows, shuffle=False)
    predictor.predict(tagging.take(2), probabilities=True)  # trace and warm up
    start = time.perf_counter()
    tagged = predictor.predict(tagging, probabilities=True)
    tag_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pseudo = select_pseudo_labels(pool_rows, tagged.row_lengths, tagged.label_ids,
                                  marginal_confidence(tagged.probabilities, tagged.label_ids), args.keep_fraction,
                                  tagged.labels)
    select_seconds = time.perf_counter() - start
    print(f"pool: {len(pool_ids):,} sentences, {len(tagged.labels):,} words ({config.run_name}, {config.model.type})")
    print(f"tagging (marginal confidence): {tag_seconds:.1f} s, {len(pool_ids) / tag_seconds:,.0f} sentences/s")
    print(f"selection: {select_seconds:.2f} s; kept {len(pseudo.rows):,} rows")
    if args.mc_samples:
        sampler = MCDropoutPredictor(inputs.trainable_model, args.mc_samples, config.model.head.dropout_rate)
        predictor.predict(tagging.take(2), mc_predictor=sampler)
        start = time.perf_counter()
        sampled = predictor.predict(tagging, mc_predictor=sampler)
        bald_confidence(sampled.mc.mean, sampled.mc.expected_entropy)
        mc_seconds = time.perf_counter() - start
        print(f"tagging (MC dropout, T = {args.mc_samples}): {mc_seconds:.1f} s, "
              f"{len(pool_ids) / mc_seconds:,.0f} sentences/s")
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(inputs.trainable_model, scratch, outside_id=data.label_map.label_to_id(OUTSIDE), verbose=False)
        labelled = inputs.dataset("labelled", shuffle=True)
        batches = inputs.rows_dataset(pseudo.rows, shuffle=True, word_labels=pseudo.word_labels)
        trainer.fit_alternating(labelled, batches, None, 5, 1e-3, 1e-3, 5, own_loss_on_unlabelled=True)  # warm-up
        start = time.perf_counter()
        trainer.fit_alternating(labelled, batches, None, args.pairs, 1e-3, 1e-3, args.pairs,
                                own_loss_on_unlabelled=True)
        pair_seconds = (time.perf_counter() - start) / args.pairs
    print(f"student: {pair_seconds * 1000:.0f} ms per pair (batch {config.training.batch_size}); "
          f"a round of P pairs: tagging + P x {pair_seconds:.3f} s")


if __name__ == "__main__":
    main()
