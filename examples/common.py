"""What the example scripts share: argument parsing and one-line errors instead of tracebacks."""
import argparse
import sys
from typing import Callable, Sequence

import ner  # noqa: F401  (selects tf_keras before TensorFlow loads)
from ner.errors import NerError


def train_main(default_config: str, argv: Sequence[str] = None) -> None:
    """`python -m examples.example_train_<model> [--config FILE] [--set key=value ...] [--resume]`."""
    parser = argparse.ArgumentParser(description=f"Train the model of {default_config} on the GMB protocol.")
    parser.add_argument("--config", default=default_config, help="model YAML file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set training.epochs=2 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")
    args = parser.parse_args(argv)

    def run() -> None:
        from ner.config import load_config
        from ner.experiment import train

        config = load_config(args.config, args.overrides)
        run_dir = train(config, resume=args.resume)
        print(f"[train] run '{config.run_name}' saved in {run_dir}")
        print(f"[train] evaluate it with: python -m examples.example_evaluate_model --run {config.run_name}")

    exit_on_error(run)


def train_and_evaluate(config_file: str, overrides: Sequence[str]):
    """Trains the run a config file and overrides describe, evaluates it on its test split, and frees the
    Keras session; returns `(evaluation, seconds)`."""
    import time

    import tf_keras as keras

    from ner.config import load_config
    from ner.experiment import evaluate, train

    config = load_config(config_file, overrides)
    start = time.perf_counter()
    train(config, verbose=False)
    evaluation = evaluate(config.run_name, verbose=False)
    keras.backend.clear_session()
    return evaluation, time.perf_counter() - start


def exit_on_error(body: Callable[[], None]) -> None:
    """Runs `body`; a `NerError` becomes one line on stderr and exit status 2."""
    try:
        body()
    except NerError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
