"""The `ner` command (installed by setup.py; `python -m ner.cli` works too).

    ner train --config config/bert_ner.yaml [--set training.epochs=2 ...] [--resume | --overwrite]
    ner evaluate --run bert_ner [--set key=value ...]
    ner predict --run bert_ner [TEXT ... | --input FILE] [--format json|jsonl|conll|pretty|html] [--threshold X]
                [--mc-samples T]
    ner uncertainty --run bert_ner [--set key=value ...] [--mc-samples T] [--ensemble RUN ...] [--output DIR]
    ner select --run bert_ner --pool FILE --budget N [--strategy mnlp|bald|entropy|random] [--diversity W]
               [--pool-format text|conll] [--exclude FILE ...] [--format conll|jsonl] [--output FILE]
               [--mc-samples T] [--seed S]
    ner export --run bert_ner --output DIR [--ensemble RUN ...]
    ner tag-corpus --run bert_ner --input FILE --output FILE [--input-format text|jsonl] [--text-field NAME]
                   [--errors FILE] [--workers N] [--batch-size N] [--threads N] [--ensemble RUN ...]

`predict` prints, for `json`, one JSON object per text and line: the text and its entities, each with
its character offsets (`start`, `end`), `type`, `confidence` (a CRF model's span marginal, else the
mean probability of its words' labels) and `review` (below `--threshold`); for
`jsonl`, the same objects with every word too (`tokens`: offsets, sentence index, label, IOB2 tag and
confidence); for `html`, one self-contained page that highlights the entities by type, shaded by
confidence and outlined when below `--threshold` (`ner.html_view`); for `conll`, a `-DOCSTART-` line
per text, then one `word<TAB>IOB2 tag` line per word and a blank line after each sentence (readable by
`ner.readers.read_conll(path, scheme_in="bio")`); for `pretty`, each text followed by a table of its
entities. `--input FILE` reads one text per line (UTF-8; `-`: standard input).
How text is split and confidences are made: `ner.api`. `uncertainty`: the uncertainty study of
`ner.uncertainty.study` (MC dropout, temperature scaling, Mahalanobis distance, a deep ensemble with
`--ensemble`, entity confidence), written to `results/uncertainty/<run>/` (or `--output DIR`). `export`: `ner.serving`.
`predict`, `export` and `tag-corpus` with `--ensemble RUN ...` tag with the run and those other CRF runs (any
encoder) as one CRF (`ner.crf_ensemble`); `export` writes them into one SavedModel.
`tag-corpus` (needs the `bulk` extra, Ray Data): `ner.bulk`; it writes one `jsonl` record per good input
line, keyed by its `line` number and in input order, and each bad line with its number and reason to
`--errors` (default: the output's name + `.errors.jsonl`), and counts them on stderr.

`select` ranks the sentences of a pool by how much labelling them should teach the model (the strategies
and the diversity term: `ner.selection`) and writes the `--budget` best, best first: for `conll`, one
`word<TAB>O` line per word and a blank line after each sentence, ready to annotate; for `jsonl`, one
object per sentence with its `rank`, `number` (its line in a text pool, its sentence number in a CoNLL
pool, from 1), `words`, `score` and `penalty` (the diversity term). A text pool has one sentence per line
(split into words by `ner.text`, not into sentences); a CoNLL pool is read by `ner.readers.read_conll`.
Pool sentences whose words equal those of a sentence in an `--exclude` CoNLL file (e.g. the batches
labelled so far) are left out, and counted on stderr.

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
from typing import Callable, List, Optional, Sequence, Tuple

from ner.bulk_input import INPUT_FORMATS
from ner.errors import DataError, NerError
from ner.registry import ACQUISITIONS

FORMATS = ("json", "jsonl", "conll", "pretty", "html")
POOL_FORMATS = ("text", "conll")  # `ner select --pool-format`
SELECTION_FORMATS = ("conll", "jsonl")  # `ner select --format`


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


def evaluate_run(run: str, overrides: Sequence[str], command: str, ensemble: Sequence[str] = (),
                 output: Optional[str] = None) -> Path:
    """Evaluates a trained run on its test split, decoded with the CRF runs of `ensemble` when given, writes
    its results to `output` (`ner.evaluation.write_results`, quoting `command` as their provenance) and
    prints the headline numbers; returns the results directory."""
    for name in (run, *ensemble):
        check_run(name, overrides)
    from ner.evaluation import evaluate, write_results

    evaluation = evaluate(run, overrides, ensemble=ensemble)
    results_dir = write_results(evaluation, command, output)
    summary = evaluation.report.summary_row()
    print(f"[evaluate] {evaluation.config.run_name}: accuracy {summary['accuracy']:.2%}, "
          f"accuracy without O {summary['accuracy_without_o']:.2%}, mean F1 {summary['mean_f1']:.4f}, "
          f"entity F1 {summary['entity_f1']:.4f}")
    print(f"[evaluate] tables and plots written to {results_dir}")
    return results_dir


def uncertainty_run(run: str, overrides: Sequence[str], command: str, mc_samples: Optional[int] = None,
                    output: Optional[str] = None, ensemble: Sequence[str] = ()) -> Path:
    """Runs the uncertainty study of a trained run (`ner.uncertainty.study`; `mc_samples` sets
    `uncertainty.mc_samples`; `ensemble` names the other runs of a deep ensemble), writes its tables and
    figures to `output` (default `results/uncertainty/<run name>/`, quoting `command` as their provenance)
    and prints its numbers; returns the directory written."""
    check_run(run, overrides)
    from ner.uncertainty.study import run_study, write_study

    study = run_study(run, overrides, mc_samples=mc_samples, ensemble=ensemble)
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


def check_runs(*runs: str) -> None:
    """`check_run` on each run a command reads (a run and the members of its ensemble)."""
    for run in runs:
        check_run(run)


def _train(args: argparse.Namespace, command: str) -> None:
    train_run(args.config, args.overrides, args.resume, args.overwrite)


def _evaluate(args: argparse.Namespace, command: str) -> None:
    evaluate_run(args.run, args.overrides, command, args.ensemble, args.output)


def _predict(args: argparse.Namespace, command: str) -> None:
    texts = args.texts if args.input is None else read_texts(args.input)
    check_runs(args.run, *args.ensemble)
    from ner.api import load
    from ner.utils import set_seed

    tagger = load(args.run, ensemble=args.ensemble)
    set_seed(tagger.config.training.seed)  # repeatable MC-dropout samples
    results = tagger.predict(texts, mc_samples=args.mc_samples, threshold=args.threshold)
    if args.format == "html":
        from ner.html_view import render_html

        print(render_html(results, tagger.label_map.entity_types, args.threshold), end="")
    elif args.format in ("json", "jsonl"):
        _write_json(results, with_tokens=args.format == "jsonl")
    else:
        {"conll": _write_conll, "pretty": _write_pretty}[args.format](results)
    if args.threshold > 0:
        entities = [entity for result in results for entity in result.entities]
        flagged = sum(entity.review for entity in entities)
        print(f"[predict] {flagged} of {len(entities)} entities have a confidence below {args.threshold}: "
              "flagged for review", file=sys.stderr)


def _uncertainty(args: argparse.Namespace, command: str) -> None:
    uncertainty_run(args.run, args.overrides, command, args.mc_samples, args.output, args.ensemble)


def _select(args: argparse.Namespace, command: str) -> None:
    from ner.readers import read_conll
    from ner.utils import set_seed, write_text_atomic

    pool = read_pool(args.pool, args.pool_format)
    labelled = {sentence.words for path in args.exclude for sentence in read_conll(path, scheme_in="bio")}
    numbers = [number for number, words in enumerate(pool, start=1) if words not in labelled]  # from 1
    sentences = [pool[number - 1] for number in numbers]
    if args.exclude:
        print(f"[select] {len(pool) - len(sentences)} pool sentences are in the --exclude files: left out",
              file=sys.stderr)
    check_run(args.run)
    from ner.api import load

    tagger = load(args.run)
    seed = tagger.config.training.seed if args.seed is None else args.seed
    set_seed(seed)  # repeatable MC-dropout samples
    selection = tagger.select(sentences, args.budget, args.strategy, args.diversity, args.mc_samples, seed)
    if args.format == "conll":
        text = "".join("".join(f"{word}\tO\n" for word in sentences[i]) + "\n" for i in selection.indices)
    else:
        text = "".join(json.dumps({"rank": rank, "number": numbers[i], "words": list(sentences[i]),
                                   "score": round(float(score), 6), "penalty": round(float(penalty), 6)},
                                  ensure_ascii=False) + "\n"
                       for rank, (i, score, penalty) in enumerate(
                           zip(selection.indices, selection.scores, selection.penalties), start=1))
    if args.output is None:
        print(text, end="")
    else:
        write_text_atomic(args.output, text)
    if args.budget > len(sentences):
        print(f"[select] the budget {args.budget} is more than the pool's {len(sentences)} sentences: all are "
              "selected", file=sys.stderr)
    where = "" if args.output is None else f"; written to {args.output}"
    print(f"[select] {len(selection.indices)} of {len(sentences)} pool sentences by {args.strategy} "
          f"(diversity {args.diversity}){where}", file=sys.stderr)


def _export(args: argparse.Namespace, command: str) -> None:
    check_runs(args.run, *args.ensemble)
    from ner.api import load
    from ner.serving import SIGNATURE, export_serving

    output = export_serving(load(args.run, ensemble=args.ensemble), args.output)
    members = f" with {', '.join(repr(run) for run in args.ensemble)} as one CRF" if args.ensemble else ""
    print(f"[export] serving SavedModel of run '{args.run}'{members} written to {output}")
    print(f"[export] signature '{SIGNATURE}': sentences [B] string (words separated by spaces) -> "
          "words, tags [B, W] string, scores, span_scores [B, W] float32, num_words [B] int64")


def _tag_corpus(args: argparse.Namespace, command: str) -> None:
    if not Path(args.input).is_file():
        raise DataError(f"input file not found: {args.input}; expected a UTF-8 {args.input_format} file")
    errors = args.errors or args.output + ".errors.jsonl"
    if len({Path(path).resolve() for path in (args.input, args.output, errors)}) < 3:
        raise NerError(f"the input, output and bad-lines files must be three different files, got {args.input}, "
                       f"{args.output} and {errors}")
    check_runs(args.run, *args.ensemble)
    require_bulk_engine()
    import tempfile

    from ner.api import load
    from ner.bulk import bulk_options, tag_corpus
    from ner.bulk_input import read_corpus
    from ner.serving import export_serving

    tagger = load(args.run, ensemble=args.ensemble)
    with tempfile.TemporaryDirectory(prefix="ner-export-") as tmp:
        export_dir = export_serving(tagger, Path(tmp) / "export")
        summary = tag_corpus(export_dir, tagger.label_map, read_corpus(args.input, args.input_format, args.text_field),
                             args.output, errors, bulk_options(args.workers, args.batch_size, args.threads))
    print(f"[tag-corpus] {summary.lines} lines: {summary.tagged} tagged, written to {args.output}; "
          f"{len(summary.bad)} bad, listed in {errors}", file=sys.stderr)
    for bad in summary.bad[:10]:
        print(f"[tag-corpus] {args.input} line {bad.line}: {bad.error}", file=sys.stderr)
    if len(summary.bad) > 10:
        print(f"[tag-corpus] ... and {len(summary.bad) - 10} more bad lines in {errors}", file=sys.stderr)


def require_bulk_engine() -> None:
    """Raises NerError naming the `bulk` extra unless Ray Data (`ner tag-corpus`'s engine) can be imported."""
    try:
        import ray.data  # noqa: F401
    except ImportError as error:
        raise NerError(f"ner tag-corpus runs on Ray Data, which is not installed ({error}); install the bulk "
                       "extra: pip install -e '.[bulk]'") from None


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


def read_pool(path: str, pool_format: str) -> List[Tuple[str, ...]]:
    """The sentences of a pool file as words: one per line of a text file (`read_texts`, split into words
    by `ner.text.split_words`), or those of a CoNLL file (`read_conll`, tags ignored).

    Raises DataError naming the file and every line without words (and `read_texts`' and `read_conll`'s).
    """
    from ner.readers import read_conll
    from ner.text import split_words

    if pool_format == "conll":
        return [sentence.words for sentence in read_conll(path, scheme_in="bio")]
    sentences = [tuple(word.text for word in split_words(text)) for text in read_texts(path)]
    empty = [number for number, words in enumerate(sentences, start=1) if not words]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (f" and {len(empty) - 10} more" if len(empty) > 10 else "")
        raise DataError(f"{path} line{'s' if len(empty) > 1 else ''} {shown}: no words; expected one sentence "
                        "per line (remove the empty lines)")
    return sentences


def _write_json(results, with_tokens: bool) -> None:
    for result in results:
        print(json.dumps(result.to_rounded_dict(with_tokens), ensure_ascii=False))


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


def _checked(convert: Callable[[str], float], accepts: Callable[[float], bool], expected: str):
    """An argparse `type`: `convert(text)`, refused with "expected <expected>, got <text>" unless `accepts`."""
    def parse(text: str):
        value = convert(text)
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = convert.__name__  # argparse names the type in its "invalid <type> value" message
    return parse


_probability = _checked(float, lambda value: 0.0 <= value <= 1.0, "a number in [0, 1]")
_non_negative = _checked(int, lambda value: value >= 0, "0 or a positive integer")
_non_negative_float = _checked(float, lambda value: value >= 0.0, "0 or a positive number")
_positive = _checked(int, lambda value: value >= 1, "a positive integer")


def crf_ensemble_option(command: argparse.ArgumentParser) -> None:
    """`--ensemble RUN ...` of the commands that tag with a run: other CRF runs to tag with as one CRF."""
    command.add_argument("--ensemble", nargs="+", default=[], metavar="RUN",
                         help="other CRF runs (any encoder) to tag with: one CRF of the runs' mean potentials")


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
    evaluate.add_argument("--ensemble", nargs="+", default=[], metavar="RUN",
                          help="other CRF runs of the same split (any encoder) to decode with: the Viterbi path "
                               "of the runs' mean CRF potentials")
    evaluate.add_argument("--output", metavar="DIR", help="results directory (default results/<run>/, or "
                                                          "results/<run>_ensemble<M>/ for an ensemble of M runs)")
    overrides(evaluate)
    evaluate.set_defaults(run_command=_evaluate)

    predict = commands.add_parser("predict", help="tag raw text with a trained run")
    predict.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    crf_ensemble_option(predict)
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
        "uncertainty", help="uncertainty study of a trained run; write results/uncertainty/<run>/")
    uncertainty.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    overrides(uncertainty)
    uncertainty.add_argument("--mc-samples", type=_positive, metavar="T",
                             help="T Monte-Carlo dropout samples (default: the run's uncertainty.mc_samples)")
    uncertainty.add_argument("--ensemble", nargs="+", default=[], metavar="RUN",
                             help="other runs of the same split (other training.seed) averaged with RUN as a deep "
                                  "ensemble")
    uncertainty.add_argument("--output", metavar="DIR",
                             help="directory to write the study to (default: results/uncertainty/<run name>/)")
    uncertainty.set_defaults(run_command=_uncertainty)

    select = commands.add_parser("select", help="choose the pool sentences to label next")
    select.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    select.add_argument("--pool", required=True, metavar="FILE",
                        help="the unlabelled sentences ('-': a text pool on standard input)")
    select.add_argument("--pool-format", choices=POOL_FORMATS, default="text",
                        help="text: one sentence per line; conll: word and tag columns (default: %(default)s)")
    select.add_argument("--budget", required=True, type=_positive, metavar="N", help="how many sentences to choose")
    select.add_argument("--strategy", choices=tuple(ACQUISITIONS), default="mnlp",
                        help="acquisition score, see ner.selection (default: %(default)s)")
    select.add_argument("--diversity", type=_non_negative_float, default=0.0, metavar="W",
                        help="weight of the penalty for sentences like those already chosen; 0: none (default)")
    select.add_argument("--mc-samples", type=_positive, metavar="T",
                        help="MC-dropout samples for bald (default: the run's uncertainty.mc_samples)")
    select.add_argument("--seed", type=int, metavar="S", help="seed of random and of MC dropout (default: the run's)")
    select.add_argument("--exclude", nargs="+", default=[], metavar="FILE",
                        help="CoNLL files of sentences already labelled: pool sentences with the same words are "
                             "left out")
    select.add_argument("--format", choices=SELECTION_FORMATS, default="conll",
                        help="conll: all-O tags to annotate; jsonl: with the scores (default: %(default)s)")
    select.add_argument("--output", metavar="FILE", help="file to write (default: standard output)")
    select.set_defaults(run_command=_select)

    export = commands.add_parser("export", help="write a serving SavedModel (tokenisation inside the graph)")
    export.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    export.add_argument("--output", required=True, metavar="DIR", help="directory to write the SavedModel to")
    crf_ensemble_option(export)
    export.set_defaults(run_command=_export)

    bulk = commands.add_parser("tag-corpus", help="tag a large text or JSONL corpus on Ray Data (the bulk extra)")
    bulk.add_argument("--run", required=True, help="run name under saved_models/, or a run directory")
    bulk.add_argument("--input", required=True, metavar="FILE", help="the corpus, UTF-8, one text per line")
    bulk.add_argument("--input-format", choices=INPUT_FORMATS, default="text",
                      help="text: each line is a text; jsonl: each line is a JSON object (default: %(default)s)")
    bulk.add_argument("--text-field", default="text", metavar="NAME",
                      help="the field of a jsonl line that holds its text (default: %(default)s)")
    bulk.add_argument("--output", required=True, metavar="FILE", help="JSONL file to write, one record per good line")
    bulk.add_argument("--errors", metavar="FILE",
                      help="JSONL file listing the bad lines (default: the output's name + .errors.jsonl)")
    bulk.add_argument("--workers", type=_positive, default=1, metavar="N",
                      help="Ray actors running the model (default: %(default)s)")
    bulk.add_argument("--batch-size", type=_positive, metavar="N",
                      help="lines per actor call, their sentences run in order of length "
                           "(default: ner.bulk.BulkOptions's, 1024)")
    bulk.add_argument("--threads", type=_positive, metavar="N",
                      help="TensorFlow threads per actor, and the Ray CPUs it reserves (default: TensorFlow's "
                           "own, every core, reserving one CPU)")
    crf_ensemble_option(bulk)
    bulk.set_defaults(run_command=_tag_corpus)
    return parser


if __name__ == "__main__":
    main()
