"""The `ner` command (installed by setup.py; `python -m ner.cli` works too).

    ner train --config config/bert_ner.yaml [--set training.epochs=2 ...] [--resume | --overwrite]
    ner evaluate --run bert_ner [--set key=value ...]
    ner predict --run bert_ner [TEXT ... | --input FILE] [--format json|conll|pretty] [--threshold X]
                [--mc-samples T]
    ner uncertainty --run bert_ner [--set key=value ...] [--mc-samples T] [--output DIR]
    ner export --run bert_ner --output DIR

`predict` prints, for `json`, one JSON object per text and line: the text and its entities, each with
its character offsets (`start`, `end`), `type`, `confidence` and `review` (below `--threshold`); for
`conll`, a `-DOCSTART-` line per text, then one `word<TAB>IOB2 tag` line per word and a blank line after
each sentence (readable by `ner.readers.read_conll(path, scheme_in="bio")`); for `pretty`, each text
followed by a table of its entities. `--input FILE` reads one text per line (UTF-8; `-`: standard input).
How text is split and confidences are made: `ner.api`. `uncertainty`: the MC-dropout study of
`ner.uncertainty.study`, written to `results/uncertainty/<run>/` (or `--output DIR`). `export`: `ner.serving`.

A problem with the input (`NerError`: a file, a config key, a run that does not exist or is being
trained, ...) is printed as one `error: ...` line on stderr with exit status 2, as are bad arguments. TensorFlow is imported only
by the command that needs it and only after the config, the overrides, the run and the input file are
checked, so `ner --help` and those errors are quick.
"""
import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from ner.errors import DataError, NerError

FORMATS = ("json", "conll", "pretty")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Runs one `ner` command; `argv` defaults to the process's arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    command = " ".join(["ner"] + [shlex.quote(arg) for arg in argv])
    exit_on_error(lambda: args.run_command(args, command))


def exit_on_error(body: Callable[[], None]) -> None:
    """Runs `body`; a `NerError` becomes one line on stderr and exit status 2."""
    try:
        body()
    except NerError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def train_run(config_file: str, overrides: Sequence[str], resume: bool, overwrite: bool = False) -> Path:
    """Trains the run a config file and overrides describe (printing progress); returns its directory.

    `resume` and `overwrite` are those of `ner.experiment.train`."""
    from ner.config import load_config

    config = load_config(config_file, overrides)
    from ner.experiment import train  # TensorFlow, once the config is known to be valid

    run_dir = train(config, resume=resume, overwrite=overwrite)
    print(f"[train] run '{config.run_name}' saved in {run_dir}")
    print(f"[train] evaluate it with: ner evaluate --run {run_dir}")
    return run_dir


def evaluate_run(run: str, overrides: Sequence[str], command: str) -> Path:
    """Evaluates a trained run on its test split, writes its results (`ner.evaluation.write_results`,
    quoting `command` as their provenance) and prints the headline numbers; returns the results directory."""
    check_run(run, overrides)
    from ner.evaluation import evaluate, write_results

    evaluation = evaluate(run, overrides)
    results_dir = write_results(evaluation, command)
    summary = evaluation.report.summary_row()
    print(f"[evaluate] {evaluation.config.run_name}: accuracy {summary['accuracy']:.2%}, "
          f"accuracy without O {summary['accuracy_without_o']:.2%}, mean F1 {summary['mean_f1']:.4f}, "
          f"entity F1 {summary['entity_f1']:.4f}")
    print(f"[evaluate] tables and plots written to {results_dir}")
    return results_dir


def uncertainty_run(run: str, overrides: Sequence[str], command: str, mc_samples: Optional[int] = None,
                    output: Optional[str] = None) -> Path:
    """Runs the MC-dropout uncertainty study of a trained run (`ner.uncertainty.study`; `mc_samples` sets
    `uncertainty.mc_samples`), writes its tables and figures to `output` (default
    `results/uncertainty/<run name>/`, quoting `command` as their provenance) and prints its numbers;
    returns the directory written."""
    check_run(run, overrides)
    from ner.uncertainty.study import run_study, write_study

    study = run_study(run, overrides, mc_samples=mc_samples)
    out = write_study(study, command, output)
    for row in study.rows():
        print(f"[uncertainty] {row['metric']}: {row['value']:.4f}")
    print(f"[uncertainty] written to {out}")
    return out


def check_run(run: str, overrides: Sequence[str] = ()) -> None:
    """Checks, without TensorFlow, what a command reading a run would find only after importing it: the run
    exists and is not being trained (`ner.runs.find_run`) and its config with `overrides` is valid."""
    from ner.config import load_config
    from ner.runs import CONFIG_FILE, find_run

    load_config(find_run(run, overrides) / CONFIG_FILE, overrides)


def _train(args: argparse.Namespace, command: str) -> None:
    train_run(args.config, args.overrides, args.resume, args.overwrite)


def _evaluate(args: argparse.Namespace, command: str) -> None:
    evaluate_run(args.run, args.overrides, command)


def _predict(args: argparse.Namespace, command: str) -> None:
    texts = args.texts if args.input is None else read_texts(args.input)
    check_run(args.run)
    from ner.api import load
    from ner.utils import set_seed

    tagger = load(args.run)
    set_seed(tagger.config.training.seed)  # repeatable MC-dropout samples
    results = tagger.predict(texts, mc_samples=args.mc_samples, threshold=args.threshold)
    write = {"json": _write_json, "conll": _write_conll, "pretty": _write_pretty}[args.format]
    write(results)
    if args.threshold > 0:
        entities = [entity for result in results for entity in result.entities]
        flagged = sum(entity.review for entity in entities)
        print(f"[predict] {flagged} of {len(entities)} entities have a confidence below {args.threshold}: "
              "flagged for review", file=sys.stderr)


def _uncertainty(args: argparse.Namespace, command: str) -> None:
    uncertainty_run(args.run, args.overrides, command, args.mc_samples, args.output)


def _export(args: argparse.Namespace, command: str) -> None:
    check_run(args.run)
    from ner.api import load
    from ner.serving import SIGNATURE, export_serving

    output = export_serving(load(args.run), args.output)
    print(f"[export] serving SavedModel of run '{args.run}' written to {output}")
    print(f"[export] signature '{SIGNATURE}': sentences [B] string (words separated by spaces) -> "
          "words, tags [B, W] string, scores [B, W] float32, num_words [B] int64")


def read_texts(path: str) -> List[str]:
    """The lines of a UTF-8 text file (`-`: standard input), one text each; a final newline ends the last.

    Raises DataError naming the file and line for a missing file or bytes that are not UTF-8.
    """
    if path == "-":
        name, data = "<stdin>", sys.stdin.buffer.read()
    else:
        if not Path(path).is_file():
            raise DataError(f"input file not found: {path}; expected a UTF-8 text file with one text per line")
        name, data = path, Path(path).read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    texts = []
    for number, line in enumerate(lines, start=1):
        try:
            texts.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as error:
            raise DataError(f"{name} line {number}: bytes are not valid UTF-8 ({error.reason}); "
                            "expected a UTF-8 text file with one text per line") from None
    return texts


def _write_json(results) -> None:
    for result in results:
        record = result.to_dict()
        for entity in record["entities"]:
            entity["confidence"] = round(entity["confidence"], 4)
        print(json.dumps(record, ensure_ascii=False))


def _write_conll(results) -> None:
    for result in results:
        print("-DOCSTART-\n")
        for sentence in result.sentences:
            print("".join(f"{word.text}\t{word.tag}\n" for word in sentence))


def _write_pretty(results) -> None:
    for result in results:
        print(result.text)
        if not result.entities:
            print("  (no entities)")
        width = max((len(entity.text) for entity in result.entities), default=0)
        for entity in result.entities:
            flag = "  review" if entity.review else ""
            print(f"  {entity.type:<4} {entity.text:<{width}}  {entity.start:>5}-{entity.end:<5} "
                  f"{entity.confidence:.2f}{flag}")


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive integer, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ner", description="Named-entity recognition with a TF-Hub BERT encoder.")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    def overrides(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a config key, e.g. --set training.epochs=2 (repeatable)")

    train = commands.add_parser("train", help="train the model of a config file")
    train.add_argument("--config", required=True, help="model YAML file, e.g. config/bert_ner.yaml")
    overrides(train)
    existing = train.add_mutually_exclusive_group()
    existing.add_argument("--resume", action="store_true", help="continue from the run's latest epoch checkpoint")
    existing.add_argument("--overwrite", action="store_true",
                          help="replace the weights and checkpoints of an existing run with the same name")
    train.set_defaults(run_command=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a trained run on its test split; write results/<run>/")
    evaluate.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    overrides(evaluate)
    evaluate.set_defaults(run_command=_evaluate)

    predict = commands.add_parser("predict", help="tag raw text with a trained run")
    predict.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    given = predict.add_mutually_exclusive_group(required=True)
    given.add_argument("texts", nargs="*", default=[], metavar="TEXT", help="texts to tag, each one argument")
    given.add_argument("--input", metavar="FILE", help="a UTF-8 file with one text per line ('-': standard input)")
    predict.add_argument("--format", choices=FORMATS, default="pretty", help="output format (default: %(default)s)")
    predict.add_argument("--threshold", type=_probability, default=0.0, metavar="X",
                         help="flag entities whose confidence is below X for review (default: %(default)s)")
    predict.add_argument("--mc-samples", type=_non_negative, default=0, metavar="T",
                         help="confidence from T Monte-Carlo dropout samples at the run's uncertainty settings; "
                              "0: from the softmax (default)")
    predict.set_defaults(run_command=_predict)

    uncertainty = commands.add_parser(
        "uncertainty", help="MC-dropout uncertainty study of a trained run; write results/uncertainty/<run>/")
    uncertainty.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    overrides(uncertainty)
    uncertainty.add_argument("--mc-samples", type=_positive, metavar="T",
                             help="T Monte-Carlo dropout samples (default: the run's uncertainty.mc_samples)")
    uncertainty.add_argument("--output", metavar="DIR",
                             help="directory to write the study to (default: results/uncertainty/<run name>/)")
    uncertainty.set_defaults(run_command=_uncertainty)

    export = commands.add_parser("export", help="write a serving SavedModel (tokenisation inside the graph)")
    export.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    export.add_argument("--output", required=True, metavar="DIR", help="directory to write the SavedModel to")
    export.set_defaults(run_command=_export)
    return parser


if __name__ == "__main__":
    main()
