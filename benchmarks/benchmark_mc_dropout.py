"""Times T-sample MC-dropout prediction against one deterministic pass of the frozen-encoder BertNER.

    python -m benchmarks.benchmark_mc_dropout [--sentences 256] [--length 32] [--samples 20]

N synthetic sentences (random word-piece ids, no padding) go through the default encoder
(`saved_models/encoders/all-MiniLM-L6-v2`, exported by ./install.sh) under a randomly initialised MLP head
of the default size; weights do not change the cost. T and the rate default to the config's `uncertainty`
section. Three paths are timed over all sentences, each compiled and warmed up first. Every round runs
all three, so a change in load hits them alike, and each time is the best of `--repeats` rounds (other
processes on the machine only ever add time):

- deterministic: `model(features, training=False)`, one pass;
- MC sampling: `MCDropoutPredictor.predict`, the deterministic pass and T samples per batch;
- MC statistics: `FirstPiecePredictor.predict` with the predictor, the same plus the per-token mean, variance
  and expected entropy.

With head dropout (the default) the encoder runs once per batch and the T head passes run as one call on
a T-fold batch; the target is MC time <= 1.5 x the deterministic time for T = 20. `--encoder-dropout`
times the path with dropout in the encoder instead (T full passes, so about T times the cost).
"""
import argparse
import time
from typing import Callable, Dict

from examples.common import exit_on_error
from ner.config import UncertaintyConfig

DEFAULTS = UncertaintyConfig()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Time MC-dropout prediction against one deterministic pass.")
    parser.add_argument("--sentences", type=int, default=256, help="synthetic sentences (default %(default)s)")
    parser.add_argument("--length", type=int, default=32, help="word pieces per sentence (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=128, help="sentences per batch (default %(default)s)")
    parser.add_argument("--samples", type=int, default=DEFAULTS.mc_samples, help="MC samples T (default %(default)s)")
    parser.add_argument("--rate", type=float, default=DEFAULTS.mc_dropout_rate,
                        help="head dropout rate while sampling (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the best is shown")
    parser.add_argument("--encoder-dropout", action="store_true", help="sample the encoder's dropout too")
    parser.add_argument("--handle", default=None, help="encoder handle (default: the config's encoder.handle)")
    args = parser.parse_args(argv)
    exit_on_error(lambda: run(args))


def run(args: argparse.Namespace) -> None:
    import numpy as np
    import tensorflow as tf

    from ner.config import ExperimentConfig
    from ner.encoders.hub_encoder import encoder_vocab, load_encoder
    from ner.models import BertNER, MLPHead
    from ner.tagging import LabelMap
    from ner.prediction import FirstPiecePredictor
    from ner.uncertainty.mc_dropout import MCDropoutPredictor
    from ner.utils import set_seed

    config = ExperimentConfig()
    handle = args.handle or config.encoder.handle
    encoder = load_encoder(handle, trainable=False)  # EncoderError (-> one line, exit 2) if not exported
    head_config = config.model.head
    num_labels = LabelMap.for_scheme(config.data.tag_scheme).num_labels
    model = BertNER(encoder, MLPHead(head_config.hidden_units, head_config.latent_dim, num_labels,
                                     head_config.dropout_rate))
    set_seed(0)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, encoder_vocab(handle).vocab_size, size=(args.sentences, args.length), dtype=np.int32)
    features = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    labels = np.zeros_like(ids)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(args.batch_size).cache()
    model({name: value[:1] for name, value in features.items()}, training=False)

    deterministic = tf.function(lambda batch: model(batch, training=False)[1], reduce_retracing=True)
    predictor = MCDropoutPredictor(model, args.samples, args.rate, encoder_dropout=args.encoder_dropout)
    first_pieces = FirstPiecePredictor(model)

    def deterministic_pass() -> None:
        for batch, _ in dataset:
            deterministic(batch).numpy()

    def mc_sampling() -> None:
        for batch, _ in dataset:
            _, samples = predictor.predict(batch)
            samples.numpy()

    def mc_statistics() -> None:
        first_pieces.predict(dataset, decode=False, mc_predictor=predictor)

    mode = "encoder + head dropout" if args.encoder_dropout else "head dropout, encoder once"
    print(f"[benchmark] {args.sentences} sentences x {args.length} pieces, batch {args.batch_size}, "
          f"encoder {handle}, T = {args.samples} ({mode}), rate {args.rate}, "
          f"best of {args.repeats} rounds; TF on {len(tf.config.list_physical_devices('GPU'))} GPU(s)")
    seconds = _best_seconds({"deterministic pass": deterministic_pass, "MC sampling": mc_sampling,
                               "MC statistics": mc_statistics}, args.repeats)
    base = seconds["deterministic pass"]
    for name, value in seconds.items():
        print(f"[benchmark] {name + ':':20s} {value:8.3f} s  ({value / base:.2f}x the deterministic pass)")


def _best_seconds(bodies: Dict[str, Callable[[], None]], repeats: int) -> Dict[str, float]:
    """Shortest wall time of each body over `repeats` rounds, after one untimed warm-up call (tracing).

    Each round runs every body once, so a change in the machine's load affects all of them alike.
    """
    for body in bodies.values():
        body()
    times = {name: [] for name in bodies}
    for _ in range(repeats):
        for name, body in bodies.items():
            start = time.perf_counter()
            body()
            times[name].append(time.perf_counter() - start)
    return {name: min(values) for name, values in times.items()}


if __name__ == "__main__":
    main()
