"""Where a trained run's test entity errors lie (`ner.error_analysis`), with a sample to read by hand.

    python -m examples.error_analysis --run bert_crf [--set key=value ...] [--sample 40] [--sample-seed 7] \
        [--output results/error_analysis]
    python -m examples.error_analysis --feature-crf SEED [--output ...]     # the reference on seed SEED's split

Evaluates the run on its test part (or trains the feature-CRF reference on the labelled part of the
seed-001 protocol's split `SEED` and tags its test part) and writes to `<output>/<run>/` (or
`<output>/feature_crf_seed<SEED>/`):

- `recall_by_novelty.csv`: gold test mentions and the share predicted exactly, by type and by whether the
  mention's words are a gold mention of the labelled part, only of the unlabelled part, or of neither;
- `error_kinds.csv`: the errors by kind (wrong type, boundary, missed, spurious) and types;
- `summary.md`: both tables, and `--sample` errors drawn at random, each with its gold and predicted
  entities bracketed in a window of the sentence and an empty column for a reader's judgement.
"""
import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from examples.common import exit_on_error, git_commit, invocation
from ner.config import ExperimentConfig
from ner.error_analysis import (ERROR_KINDS, NOVELTIES, bracketed, entity_errors, error_kind_counts,
                                mention_texts, recall_by_novelty, sample_errors, spans_by_row)
from ner.preprocessor import DataSplit
from ner.readers import Sentence
from ner.uncertainty.entities import entity_spans

WINDOW = 8  # words shown either side of a sampled error


def novelty_rows(recall: dict, types: Sequence[str]) -> list:
    """`recall_by_novelty`'s counts as CSV rows, novelty by novelty, "all" types first."""
    return [{"novelty": novelty, "type": entity_type, "gold": total, "found": found,
             "recall": found / total}
            for novelty in NOVELTIES for entity_type in ("all", *types)
            for total, found in [recall.get((novelty, entity_type), (0, 0))] if total]


def sample_rows(errors, sentences, gold_tags, predicted_tags) -> list:
    """One row per error: its kind, the entity it is about, and the gold and predicted entities bracketed
    within WINDOW words of it."""
    gold_spans, predicted_spans = spans_by_row(gold_tags), spans_by_row(predicted_tags)
    rows = []
    for error in errors:
        words = sentences[error.row].words
        focus = error.gold or error.predicted[0]
        start, end = max(0, focus[1] - WINDOW), min(len(words), focus[2] + WINDOW)
        rows.append({"kind": error.kind, "entity": " ".join(words[focus[1]:focus[2]]) + f" ({focus[3]})",
                     "gold": bracketed(words, gold_spans.get(error.row, []), start, end),
                     "predicted": bracketed(words, predicted_spans.get(error.row, []), start, end),
                     "judgement": ""})
    return rows


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a trained run (name under paths.saved_models_dir, or a directory)")
    source.add_argument("--feature-crf", type=int, metavar="SEED",
                        help="the feature-CRF reference on the seed-001 protocol's split SEED")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the run's config (e.g. paths.feature_cache_dir), or of the "
                             "feature CRF's (config/bert_ner.yaml; e.g. model.lexical_templates=extended)")
    parser.add_argument("--sample", type=int, default=40, help="errors to draw for reading (default: %(default)s)")
    parser.add_argument("--sample-seed", type=int, default=7, help="seed of that draw (default: %(default)s)")
    parser.add_argument("--output", default="results/error_analysis", help="directory (default: %(default)s)")
    args = parser.parse_args(argv)
    command = invocation("examples.error_analysis", argv)
    exit_on_error(lambda: analyse(tagged_test_part(args.run, args.feature_crf, args.overrides), args.sample,
                                  args.sample_seed, Path(args.output), command))


@dataclass(frozen=True)
class TaggedTestPart:
    """A tagger's test part: its name, config (for the corpus), split, sentences and predicted IOB2 tags."""

    name: str
    config: ExperimentConfig
    split: DataSplit
    sentences: Sequence[Sentence]
    predicted_tags: Sequence[Sequence[str]]


def tagged_test_part(run: Optional[str], feature_crf_seed: Optional[int], overrides: Sequence[str]) -> TaggedTestPart:
    """The test part tagged by the trained `run`, or by the feature CRF trained on split `feature_crf_seed`
    (of `config/bert_ner.yaml` with `overrides`)."""
    if run is not None:
        from ner.experiment import evaluate

        evaluation = evaluate(run, overrides, verbose=False)
        return TaggedTestPart(evaluation.run_dir.name, evaluation.config, evaluation.split, evaluation.sentences,
                              evaluation.predicted_tags)
    from ner.baselines.feature_crf import predict_on_split
    from ner.config import load_config

    config = load_config("config/bert_ner.yaml", [f"split.seed={feature_crf_seed}", *overrides])
    predictions = predict_on_split(config)  # the config's templates: crf, or extended by --set
    sentences, predicted = predictions.parts["test"]
    return TaggedTestPart(f"feature_crf_seed{feature_crf_seed}", config, predictions.split, sentences, predicted)


def analyse(tagged: TaggedTestPart, sample: int, sample_seed: int, output: Path, command: str) -> Path:
    from ner.corpora import read_corpus
    from ner.model_evaluator import build_report
    from ner.reporting import markdown_table, write_csv
    from ner.tagging import bio_tags
    from ner.utils import write_text_atomic

    corpus = read_corpus(tagged.config.data)
    parts = tagged.split.parts()
    seen = {part: mention_texts([corpus.sentences[i].words for i in parts[part]],
                                [corpus.sentences[i].tags for i in parts[part]]) for part in ("labelled", "unlabelled")}
    sentences = tagged.sentences
    gold_tags = [list(sentence.tags) for sentence in sentences]
    types = sorted({span[3] for span in entity_spans(gold_tags)})
    recall = novelty_rows(recall_by_novelty([s.words for s in sentences], gold_tags, tagged.predicted_tags,
                                            seen["labelled"], seen["unlabelled"]), types)
    errors = entity_errors(gold_tags, tagged.predicted_tags)
    kinds = [{"kind": kind, "gold_type": gold, "predicted_type": predicted, "count": count}
             for (kind, gold, predicted), count in error_kind_counts(errors).most_common()]
    totals = Counter(error.kind for error in errors)
    entity = build_report(gold_tags, tagged.predicted_tags, bio_tags(corpus.entity_types)).entity
    directory = output / tagged.name
    write_csv(directory / "recall_by_novelty.csv", recall)
    write_csv(directory / "error_kinds.csv", kinds)
    lines = [f"# Test entity errors of `{tagged.name}`", "",
             f"Made by `{command}` at {git_commit()}. Entity F1 {entity.f1:.4f} (precision {entity.precision:.4f}, "
             f"recall {entity.recall:.4f}); {len(errors)} errors.", "",
             "## Recall by mention novelty", "",
             "A gold test mention is *labelled* when its lower-cased words are a gold mention in the labelled "
             "part, *unlabelled only* when they are one only in the unlabelled part, else *new*.", "",
             markdown_table(recall, ".3f"), "", "## Errors by kind", "",
             markdown_table([{"kind": kind, "errors": totals[kind]} for kind in ERROR_KINDS]), "",
             markdown_table(kinds[:20]), "",
             f"## {min(sample, len(errors))} errors drawn at random (seed {sample_seed})", "",
             markdown_table(sample_rows(sample_errors(errors, sample, sample_seed), sentences, gold_tags,
                                        tagged.predicted_tags)), ""]
    write_text_atomic(directory / "summary.md", "\n".join(lines))
    print(f"[error_analysis] {len(errors)} errors of {tagged.name} → {directory}")
    return directory


if __name__ == "__main__":
    main()
