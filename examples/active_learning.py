"""Simulated active learning (issue #18): entity F1 against labelled sentences and labelled words when an
acquisition strategy picks each round's sentences, beside random sampling and the feature-CRF reference.

    python -m examples.active_learning                  # mnlp, bald, random; seeds 1-3; 256 … 2,560 by 256
    python -m examples.active_learning --seeds 1 --max-labelled 512 --strategies mnlp --pool-size 2000

Every seed starts from the first `--start` (256) labelled sentences of its split, which is the learning
curve's supervised `bert_crf` run of that size (`examples/learning_curve.py`): the split's test part is
the same at every size. Each round of a strategy scores the split's unlabelled part (never its labelled,
validation or test sentences; with `--pool-size`, a seeded random sample of that part) with the previous
round's run (`ner.selection`; BALD draws `--mc-samples`), adds the `--step` (256) sentences it ranks
highest, and trains `config/bert_crf.yaml` (frozen encoder, cached features) from scratch on the result.
The sentences a round added since the start, best first per round, are written to
`active_learning/ids/<strategy>_seed<seed>_n<labelled>.txt`, and the round's run names that file in its
config (`split.added_labelled_file`), so training and evaluation read exactly that labelled set.

Random acquisition needs no model: the split is a seeded random order, so the first N labelled sentences
are a uniform sample and the `random` rows are the learning curve's supervised runs of size N. They are
copied from its `runs.csv` (`--learning-curve`) where it has them, else evaluated or trained under its
run names (their validation part, only monitored, differs from a round's). The feature-CRF reference
rows are on the same first N (copied, or `examples.common.feature_crf_report` on the split that the
`split.*` and `data.*` keys of `--set` give). With `--min-steps`, as the learning curve's, every run
trains at least that many steps (run names end in `_minN`); point `--learning-curve` at the runs.csv of
a curve run with the same option.

Writes `results/active_learning.md`, `.csv` and `.png`, and every row in `results/active_learning/runs.csv`
(strategy, round, labelled sentences and words, seed, metrics, training and selection seconds, run name,
ids file, commit). A (strategy, labelled, seed) recorded there is not run again, and a round whose ids
file exists trains on it without selecting again, so an interrupted study resumes; `--fresh` starts over
and selects again.
"""
import argparse
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from examples import learning_curve
from examples.common import (METRICS, add_comparison_arguments, exit_on_error, feature_crf_report, git_commit,
                             invocation, read_records, summarise_runs, train_and_evaluate)
from ner.registry import ACQUISITIONS

FEATURE_CRF, RANDOM, SUPERVISED = learning_curve.FEATURE_CRF, "random", learning_curve.SUPERVISED
CONFIG_FILE = learning_curve.METHODS[SUPERVISED][0]
SHOWN = {FEATURE_CRF: "reference: feature CRF", RANDOM: "random", "mnlp": "MNLP", "bald": "BALD (MC dropout)",
         "entropy": "mean word entropy"}
COLUMNS = ("strategy", "round", "labelled", "words", "seed", *METRICS, "seconds", "select_seconds", "run",
           "ids_file", "commit")


@dataclass(frozen=True)
class Study:
    """The command line's settings, and the supervised and feature-CRF rows known so far by (method,
    labelled, seed): the learning curve's, then those this process ran."""

    output: Path
    start: int
    step: int
    pool_size: Optional[int]
    mc_samples: Optional[int]
    min_steps: int
    extra: Sequence[str]
    fresh: bool
    known: Dict[tuple, dict]


def run_name(strategy: str, labelled: int, seed: int, min_steps: int = 0) -> str:
    return f"al_{strategy}_n{labelled}_seed{seed}" + (f"_min{min_steps}" if min_steps else "")


def ids_file(study: Study, strategy: str, labelled: int, seed: int) -> Path:
    """The file of the sentence ids a strategy's round added to the seed's first `study.start`."""
    return study.output / "active_learning" / "ids" / f"{strategy}_seed{seed}_n{labelled}.txt"


def overrides_of(study: Study, strategy: str, labelled: int, seed: int) -> List[str]:
    """The `config/bert_crf.yaml` overrides of a row's run: the learning curve's supervised run on the seed's
    first `labelled` sentences for `random` and every strategy's start; else that run (its training steps
    included) with the first `study.start` sentences plus the round's ids file in their place, under the
    round's own name (the later overrides win)."""
    overrides = learning_curve.model_overrides(SUPERVISED, labelled, seed, study.extra, study.min_steps)
    if strategy == RANDOM or labelled == study.start:
        return overrides
    return [*overrides, f"run_name={run_name(strategy, labelled, seed, study.min_steps)}",
            f"split.labelled_size={study.start}",
            f"split.added_labelled_file={ids_file(study, strategy, labelled, seed).resolve()}"]


def measure(study: Study, strategy: str, labelled: int, seed: int) -> dict:
    """One row's metrics, `seconds` (training, evaluation included), `select_seconds`, `run`, `ids_file`
    and `commit`, reusing a known supervised or feature-CRF row (the learning curve's commit then)."""
    method = FEATURE_CRF if strategy == FEATURE_CRF else SUPERVISED
    if method == FEATURE_CRF or strategy == RANDOM or labelled == study.start:
        key = (method, labelled, seed)
        if key not in study.known:
            if method == FEATURE_CRF:
                keys = [o for o in study.extra if o.startswith(("split.", "data."))]
                report, seconds = feature_crf_report(seed, [*keys, f"split.labelled_size={labelled}"])
            else:
                report, seconds = learning_curve.run_method(SUPERVISED, labelled, seed, study.extra, study.min_steps)
            study.known[key] = {**report.summary_row(), "seconds": round(seconds, 1), "commit": git_commit()}
        run = "" if method == FEATURE_CRF else learning_curve.run_name(SUPERVISED, labelled, seed, study.min_steps)
        return {**{m: study.known[key][m] for m in METRICS}, "seconds": study.known[key]["seconds"],
                "select_seconds": 0.0, "run": run, "ids_file": "", "commit": study.known[key]["commit"]}
    from ner.utils import write_text_atomic

    path, select_seconds = ids_file(study, strategy, labelled, seed), 0.0
    if study.fresh or not path.is_file():
        begin = time.perf_counter()
        previous = labelled - study.step
        added = added_ids(study, strategy, previous, seed) + select_from_pool(
            trained_run(study, strategy, previous, seed), strategy, study, seed, labelled)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "".join(f"{i}\n" for i in added))
        select_seconds = time.perf_counter() - begin
    evaluation, seconds = train_and_evaluate(CONFIG_FILE, overrides_of(study, strategy, labelled, seed))
    return {**evaluation.report.summary_row(), "seconds": round(seconds, 1),
            "select_seconds": round(select_seconds, 1), "run": run_name(strategy, labelled, seed, study.min_steps),
            "ids_file": str(path.relative_to(study.output)), "commit": git_commit()}


def added_ids(study: Study, strategy: str, labelled: int, seed: int) -> List[int]:
    """The ids a strategy's round of `labelled` sentences added (none at the start), from its file."""
    if labelled == study.start:
        return []
    return [int(line) for line in ids_file(study, strategy, labelled, seed).read_text(encoding="utf-8").split()]


def trained_run(study: Study, strategy: str, labelled: int, seed: int) -> Path:
    """The run directory of a row's run, trained first if it has no final weights (a study resumed
    elsewhere, or the start run of a learning curve whose rows were copied)."""
    import tf_keras as keras

    from ner.config import load_config
    from ner.experiment import train
    from ner.trainers.trainer import WEIGHTS_DIR

    config = load_config(CONFIG_FILE, overrides_of(study, strategy, labelled, seed))
    if not (config.run_dir() / WEIGHTS_DIR).is_dir():
        train(config, verbose=False, overwrite=True)
        keras.backend.clear_session()
    return config.run_dir()


def select_from_pool(run_dir: Path, strategy: str, study: Study, seed: int, labelled: int) -> List[int]:
    """The `study.step` sentence ids of the run's unlabelled part (or of a sample of `study.pool_size` of
    them, seeded by seed and round) that `strategy` ranks highest with the run's model, best first; the
    model reads cached encoder features."""
    import tf_keras as keras

    from ner.config import load_config
    from ner.data import ModelInputs, model_for, prepare_data
    from ner.errors import NerError
    from ner.prediction import FirstPiecePredictor
    from ner.preprocessor import DataSplit
    from ner.registry import lookup
    from ner.runs import CONFIG_FILE as RUN_CONFIG, SPLIT_FILE
    from ner.selection import acquisition_scores, pool_outputs, select
    from ner.trainers.trainer import load_weights
    from ner.uncertainty.mc_dropout import MCDropoutPredictor
    from ner.utils import set_seed

    config = load_config(run_dir / RUN_CONFIG)
    data = prepare_data(config, split=DataSplit.from_json(run_dir / SPLIT_FILE), verbose=False)
    pool = np.asarray(data.split.unlabelled_ids, dtype=np.int64)
    if study.pool_size is not None and study.pool_size < len(pool):
        pool = np.random.default_rng([seed, labelled]).choice(pool, study.pool_size, replace=False)
    if len(pool) < study.step:
        raise NerError(f"run '{run_dir.name}' has {len(pool)} unlabelled sentences left; a round adds {study.step}")
    inputs = ModelInputs(config, data, model_for(config, data), verbose=False)
    load_weights(inputs.trainable_model, run_dir)
    rows = data.rows_of(pool)  # a sentence's rows together, sentences in pool order
    position = {sentence_id: index for index, sentence_id in enumerate(pool.tolist())}
    row_sentences = np.array([position[i] for i in data.encoded_all.sentence_ids[rows].tolist()], dtype=np.int64)
    reads = lookup(ACQUISITIONS, strategy, "acquisition strategy").reads
    set_seed(seed)  # repeatable MC-dropout samples
    sampler = (MCDropoutPredictor.from_config(inputs.trainable_model, config.uncertainty, study.mc_samples)
               if reads == "mc" else None)
    outputs = pool_outputs(FirstPiecePredictor(inputs.trainable_model),
                           inputs.rows_dataset(rows, shuffle=False, part="unlabelled"), row_sentences, reads, sampler)
    chosen = select(acquisition_scores(strategy, outputs, seed), study.step)
    keras.backend.clear_session()
    return pool[chosen.indices].tolist()


@lru_cache(maxsize=None)
def _corpus(data_config):
    from ner.corpora import read_corpus

    return read_corpus(data_config)


def labelled_words(study: Study, strategy: str, labelled: int, seed: int) -> int:
    """The words of a row's labelled sentences (the feature CRF's are random's)."""
    from ner.config import load_config
    from ner.data import make_corpus_split

    config = load_config(CONFIG_FILE, overrides_of(study, RANDOM if strategy == FEATURE_CRF else strategy,
                                                   labelled, seed))
    corpus = _corpus(config.data)
    return sum(len(corpus.sentences[i].words) for i in make_corpus_split(config, corpus).labelled_ids)


def shown_order(rows: List[Dict]) -> List[str]:
    """The strategies of `rows`: the reference, random, then the registry's order."""
    return [s for s in dict.fromkeys((FEATURE_CRF, RANDOM, *ACQUISITIONS)) if any(row["strategy"] == s for row in rows)]


def write_tables(output: Path, rows: List[Dict], command: str) -> str:
    """Writes `active_learning.{csv,md,png}` and `active_learning/runs.csv` from the rows so far; returns
    the Markdown."""
    from ner.reporting import write_csv
    from ner.utils import write_text_atomic

    write_csv(output / "active_learning" / "runs.csv", rows, COLUMNS)
    strategies, sizes = shown_order(rows), sorted({row["labelled"] for row in rows})
    summary = []
    for labelled in sizes:
        for strategy in strategies:
            runs = [row for row in rows if (row["strategy"], row["labelled"]) == (strategy, labelled)]
            if runs:
                numbers = {k: v for k, v in summarise_runs(strategy, runs)[0].items() if k != "model"}
                words = [row["words"] for row in runs]
                summary.append({"strategy": strategy, "labelled": labelled, **numbers,
                                "words_mean": float(np.mean(words)),
                                "words_std": float(np.std(words, ddof=1)) if len(words) > 1 else 0.0})
    write_csv(output / "active_learning.csv", summary)
    plot(output / "active_learning.png", summary, strategies)
    commits = ", ".join(sorted({str(row["commit"]) for row in rows}))
    markdown = "\n".join([
        "# Active learning: entity F1 against labelled sentences and words (seed-001 protocol)",
        "",
        f"Produced by `python -m examples.active_learning` (last invocation: `{command}`; commits {commits}, per "
        "row in `active_learning/runs.csv`). Each seed draws its own split (the test part the same in every "
        f"round) and starts from its first {sizes[0]:,} labelled sentences. Each round a strategy scores the "
        "split's unlabelled sentences with the previous round's `bert_crf` run (frozen encoder, cached "
        "features), adds those it ranks highest and trains `bert_crf` again from scratch; the ids each round "
        "added are in `active_learning/ids/`. `random` is the seed's first N labelled sentences (the learning "
        "curve's `bert_crf` runs), and the feature CRF is trained on the same sentences. Strict entity F1 "
        "(IOB2) on the seed's test part, mean ± sample std over seeds.",
        "",
        "Entity F1 by labelled sentences:",
        "",
        *size_table(summary, strategies, lambda row: f"{row['entity_f1_mean']:.4f} ± {row['entity_f1_std']:.4f}"),
        "",
        "Labelled words (mean over seeds; a strategy that prefers long sentences costs more to annotate):",
        "",
        *size_table(summary, strategies, lambda row: f"{row['words_mean']:,.0f}"),
        "",
        *against_random(rows, summary, strategies),
        "![entity F1 against labelled sentences and words](active_learning.png)",
        "",
    ])
    write_text_atomic(output / "active_learning.md", markdown)
    return markdown


def size_table(summary: List[Dict], strategies: Sequence[str], cell) -> List[str]:
    """Markdown lines: a row per labelled size, a column per strategy, `cell(summary row)` in each."""
    cells = {(row["labelled"], row["strategy"]): cell(row) for row in summary}
    sizes = sorted({row["labelled"] for row in summary})
    return ["| labelled | " + " | ".join(SHOWN.get(s, s) for s in strategies) + " |",
            "|---|" + "---|" * len(strategies),
            *(f"| {size:,} | " + " | ".join(cells.get((size, s), "—") for s in strategies) + " |" for size in sizes)]


def against_random(rows: List[Dict], summary: List[Dict], strategies: Sequence[str]) -> List[str]:
    """Markdown lines: each strategy's entity F1 minus random's on the same seed and size (mean ± std over
    seeds), and the first size at which its mean reaches random's at the largest size."""
    chosen = [s for s in strategies if s not in (FEATURE_CRF, RANDOM)]
    random = {(row["labelled"], row["seed"]): row["entity_f1"] for row in rows if row["strategy"] == RANDOM}
    if not chosen or not random:
        return []
    differences = []
    for strategy in chosen:
        for labelled in sorted({row["labelled"] for row in rows}):
            paired = [row["entity_f1"] - random[labelled, row["seed"]] for row in rows
                      if (row["strategy"], row["labelled"]) == (strategy, labelled)
                      and (labelled, row["seed"]) in random]
            if paired:
                differences.append({"strategy": strategy, "labelled": labelled, "mean": float(np.mean(paired)),
                                    "std": float(np.std(paired, ddof=1)) if len(paired) > 1 else 0.0})
    lines = ["Entity F1 minus random's on the same seed (mean ± std over seeds):", "",
             *size_table(differences, chosen, lambda row: f"{row['mean']:+.4f} ± {row['std']:.4f}"), ""]
    largest = max(row["labelled"] for row in summary if row["strategy"] == RANDOM)
    target = next(row for row in summary if (row["strategy"], row["labelled"]) == (RANDOM, largest))
    lines.append(f"Random sampling at {largest:,} sentences ({target['words_mean']:,.0f} words): entity F1 "
                 f"{target['entity_f1_mean']:.4f}. First size at which a strategy's mean reaches it:")
    lines.append("")
    for strategy in chosen:
        reached = [row for row in summary if row["strategy"] == strategy
                   and row["entity_f1_mean"] >= target["entity_f1_mean"]]
        lines.append(f"- {SHOWN.get(strategy, strategy)}: " + (
            f"{reached[0]['labelled']:,} sentences ({reached[0]['words_mean']:,.0f} words)" if reached
            else "not reached in the sizes run"))
    return lines + [""]


def plot(path: Path, summary: List[Dict], strategies: Sequence[str]) -> None:
    """Entity F1 (mean ± std over seeds) against labelled sentences and against labelled words (mean over
    seeds), one line per strategy, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ner.reporting import save_png

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for strategy in strategies:
        points = [row for row in summary if row["strategy"] == strategy]
        for ax, x in zip(axes, ("labelled", "words_mean")):
            ax.errorbar([row[x] for row in points], [row["entity_f1_mean"] for row in points],
                        yerr=[row["entity_f1_std"] for row in points], marker="o", capsize=3,
                        linestyle="--" if strategy == FEATURE_CRF else "-", label=SHOWN.get(strategy, strategy))
    axes[0].set_xlabel("labelled sentences")
    axes[1].set_xlabel("labelled words")
    axes[0].set_ylabel("test entity F1")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    save_png(figure, path)
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Simulated active learning on the seed-001 protocol.")
    parser.add_argument("--strategies", nargs="+", default=["mnlp", "bald", RANDOM], choices=list(ACQUISITIONS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--start", type=int, default=256, help="labelled sentences before the first round "
                                                                "(default: %(default)s)")
    parser.add_argument("--step", type=int, default=256, help="sentences a round adds (default: %(default)s)")
    parser.add_argument("--max-labelled", type=int, default=2560,
                        help="labelled sentences after the last round: start + a multiple of step "
                             "(default: %(default)s)")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="score a seeded random sample of this many unlabelled sentences (default: all of them)")
    parser.add_argument("--mc-samples", type=int, default=None,
                        help="MC-dropout samples of BALD (default: the run's uncertainty.mc_samples)")
    parser.add_argument("--min-steps", type=int, default=0,
                        help="train every run for at least this many steps, as the learning curve's --min-steps "
                             "(default: training.epochs at every size)")
    parser.add_argument("--learning-curve", default=None, help="the learning curve's runs.csv, whose bert_crf and "
                        "feature_crf rows are reused (default: <output>/learning_curve/runs.csv)")
    add_comparison_arguments(parser, "active_learning")
    args = parser.parse_args(argv)
    if args.start < 1 or args.step < 1:
        parser.error(f"--start and --step must be positive, got {args.start} and {args.step}")
    if args.max_labelled < args.start or (args.max_labelled - args.start) % args.step:
        parser.error(f"--max-labelled must be --start ({args.start}) plus a multiple of --step ({args.step}), "
                     f"got {args.max_labelled}")
    if args.pool_size is not None and args.pool_size < args.step:
        parser.error(f"--pool-size must be at least --step ({args.step}), got {args.pool_size}")
    if args.mc_samples is not None and args.mc_samples < 1:
        parser.error(f"--mc-samples must be positive, got {args.mc_samples}")
    if args.min_steps < 0:
        parser.error(f"--min-steps must be 0 or positive, got {args.min_steps}")
    command = invocation("examples.active_learning", argv)

    def run() -> None:
        output = Path(args.output)
        rows = [] if args.fresh else read_records(output / "active_learning" / "runs.csv")
        done = {(row["strategy"], row["labelled"], row["seed"]) for row in rows}
        curve = read_records(args.learning_curve or output / "learning_curve" / "runs.csv")
        study = Study(output, args.start, args.step, args.pool_size, args.mc_samples, args.min_steps, args.overrides,
                      args.fresh,
                      known={(row["method"], row["labelled"], row["seed"]): row for row in curve
                             if row["method"] in (SUPERVISED, FEATURE_CRF)})
        markdown = write_tables(output, rows, command) if rows else ""
        for labelled in range(args.start, args.max_labelled + 1, args.step):
            for seed in args.seeds:
                for strategy in (FEATURE_CRF, *args.strategies):
                    if (strategy, labelled, seed) in done:
                        continue
                    numbers = measure(study, strategy, labelled, seed)
                    rows.append({"strategy": strategy, "round": (labelled - args.start) // args.step,
                                 "labelled": labelled, "words": labelled_words(study, strategy, labelled, seed),
                                 "seed": seed, **numbers})
                    print(f"[active learning] {strategy}, {labelled} labelled ({rows[-1]['words']} words), seed "
                          f"{seed}: entity F1 {numbers['entity_f1']:.4f} ({numbers['seconds']:.0f} s training, "
                          f"{numbers['select_seconds']:.0f} s selection)", flush=True)
                    markdown = write_tables(output, rows, command)
        print(markdown)

    exit_on_error(run)


if __name__ == "__main__":
    main()
