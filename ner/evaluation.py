"""Evaluation of a trained run (or a CRF ensemble of runs) on a part of its split, and the results files
written from it."""
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ner.config import ExperimentConfig, load_config, member_environ, save_config
from ner.crf_ensemble import WordPotentials, average_potentials, check_member, viterbi_label_ids, word_potentials
from ner.data import ModelInputs, PreparedData, model_for, prepare_data
from ner.errors import ConfigError, NerError
from ner.model_evaluator import EvaluationReport, build_report, latent_pca
from ner.prediction import FirstPiecePredictor
from ner.preprocessor import SPLIT_PARTS, DataSplit
from ner.readers import Sentence
from ner.reporting import write_latent_plots, write_report
from ner.runs import CONFIG_FILE, SPLIT_FILE, find_run
from ner.tagging import IGNORE_LABEL, bio_tags
from ner.trainers.trainer import WEIGHTS_DIR, load_weights, weights_checksums
from ner.utils import atomic_path, file_sha256

PCA_BATCHES = 10
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one run on its test split, plus the latent points for the PCA plots.

    `latent` [n, latent_dim] holds the labelled positions of the first test batches, with their true and
    predicted label ids (`latent_true`, `latent_pred`, each [n]). `weights_sha256` names the weights
    evaluated (`ner.trainers.trainer.weights_checksums`), `evaluated_at` when (UTC, ISO 8601).
    `sentences` are the part's sentences in split order and `predicted_tags` their decoded IOB2 tags, one
    list per sentence (`ner.error_analysis` reads both). `ensemble` maps each other member of a CRF
    ensemble (`ner.crf_ensemble`) to its weights' SHA-256 sums; empty for one run.
    """

    config: ExperimentConfig
    split: DataSplit
    report: EvaluationReport
    latent: np.ndarray
    latent_true: np.ndarray
    latent_pred: np.ndarray
    labels: Sequence[str]
    run_dir: Path
    weights_sha256: Dict[str, str]
    evaluated_at: str
    sentences: Sequence[Sentence]
    predicted_tags: Sequence[Sequence[str]]
    ensemble: Dict[Path, Dict[str, str]]


def evaluate(run: str, overrides: Sequence[str] = (), verbose: bool = True, part: str = "test",
             saved_models_dir: Optional[str] = None, ensemble: Sequence[str] = ()) -> Evaluation:
    """Evaluates a trained run on a part of its own split (read back from the run's `split.json`): the
    test part, or "validation" for model selection.

    The run (a name or a run directory) is looked up in `saved_models_dir`; None takes the
    `paths.saved_models_dir` the overrides give (`ner.runs.find_run`), where training put it. The
    predicted labels are the model's `decode` (`ner.prediction`): the Viterbi path of a CRF model.

    `ensemble` names other CRF runs (names or run directories, looked up the same way, each read with its
    own saved config and `overrides`) to decode together with this one: the Viterbi path of the members'
    mean potentials (`ner.crf_ensemble`). They may use other encoders, features and heads, but must have
    this run's split, labels and words. The latent points stay this run's.
    """
    if part not in SPLIT_PARTS:
        raise ConfigError(f"cannot evaluate on part {part!r}; expected one of {', '.join(SPLIT_PARTS)}")
    run_dir = find_run(run, overrides, saved_models_dir)
    config = load_config(run_dir / CONFIG_FILE, overrides)
    data = prepare_data(config, split=DataSplit.from_json(run_dir / SPLIT_FILE), verbose=verbose)
    if not (run_dir / "weights").is_dir():
        raise NerError(f"run '{run}' has no final weights in {run_dir / 'weights'}; its training did not finish")
    if not data.split.parts()[part]:
        raise NerError(f"run '{run}' has no {part} sentences in {run_dir / SPLIT_FILE}; expected a non-empty part")
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    evaluated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    weights_sha256 = weights_checksums(run_dir)
    if ensemble:
        check_member(run, inputs.trainable_model, config.model.type, data.label_map.labels, run,
                     data.label_map.labels)
    load_weights(inputs.trainable_model, run_dir)
    # An ensemble decodes the pooled potentials, so this run's own Viterbi pass is skipped.
    prediction = FirstPiecePredictor(inputs.trainable_model).predict(inputs.dataset(part, shuffle=False),
                                                                      decode=not ensemble, latent_batches=PCA_BATCHES,
                                                                      emission_scores=bool(ensemble))
    word_ids, latent = prediction.label_ids, prediction.latent
    members = {}
    if ensemble:
        potentials = [word_potentials(inputs.trainable_model, prediction.emission_scores)]
        for member in ensemble:
            member_dir, member_inputs = load_crf_member(member, overrides, saved_models_dir, config, data)
            members[member_dir] = weights_checksums(member_dir)
            potentials.append(member_potentials(member, member_inputs, member_inputs.dataset(part, shuffle=False),
                                                prediction.labels, f"the {part} part"))
        word_ids = viterbi_label_ids(average_potentials(potentials), prediction.row_lengths)
    latent_true, latent_pred = prediction.labels[:len(latent)], word_ids[:len(latent)]
    encoded = data.encoded(part)
    piece_ids = np.full(encoded.label_ids.shape, IGNORE_LABEL, np.int32)
    piece_ids[encoded.label_ids != IGNORE_LABEL] = word_ids
    sentences = data.part_sentences(part)
    word_predictions = data.featurizer.words_labels(encoded, piece_ids)
    true_tags = [list(sentence.tags) for sentence in sentences]
    pred_tags = [data.label_map.to_bio([data.label_map.id_to_label(i) for i in word_predictions[s.sentence_id]])
                 for s in sentences]
    report = build_report(true_tags, pred_tags, bio_tags(data.label_map.entity_types))  # any scheme: BIO scores
    return Evaluation(config, data.split, report, latent, latent_true, latent_pred, data.label_map.labels,
                      run_dir, weights_sha256, evaluated_at, tuple(sentences), tuple(pred_tags), members)


def load_crf_member(run: str, overrides: Sequence[str], saved_models_dir: Optional[str], config: ExperimentConfig,
                    data: PreparedData) -> Tuple[Path, ModelInputs]:
    """`(run directory, model inputs with the weights loaded)` of CRF ensemble member `run`, read with its own
    saved config and `overrides`; NerError unless it is a finished CRF run with the split and labels of `data`
    (those of the run `config` describes). Its encoder, features and head may differ, so the environment
    variables that replace `encoder.handle` are not applied to it."""
    run_dir = find_run(run, overrides, saved_models_dir)
    member = load_config(run_dir / CONFIG_FILE, overrides, environ=member_environ())
    if not (run_dir / WEIGHTS_DIR).is_dir():
        raise NerError(f"ensemble run '{run}' has no final weights in {run_dir / WEIGHTS_DIR}; its training did not "
                       "finish")
    split = DataSplit.from_json(run_dir / SPLIT_FILE)
    if split.parts() != data.split.parts():
        raise NerError(f"ensemble run '{run}' has another split than run '{config.run_name}'; expected runs of the "
                       "same split (they may differ in encoder, model and training)")
    member_data = prepare_data(member, split=split, verbose=False)
    inputs = ModelInputs(member, member_data, model_for(member, member_data), verbose=False)
    check_member(run, inputs.trainable_model, member.model.type, member_data.label_map.labels, config.run_name,
                 data.label_map.labels)
    load_weights(inputs.trainable_model, run_dir)
    return run_dir, inputs


def member_potentials(run: str, inputs: ModelInputs, dataset, labels: np.ndarray, what: str) -> WordPotentials:
    """The potentials of member `run` (its `load_crf_member` inputs) on `dataset`, whose gold labels at the
    labelled positions must be `labels` (those the other members read on `what`); NerError otherwise."""
    prediction = FirstPiecePredictor(inputs.trainable_model).predict(dataset, decode=False, emission_scores=True)
    if not np.array_equal(prediction.labels, labels):
        raise NerError(f"ensemble run '{run}' reads other words or gold labels on {what} than the run it joins; "
                       "expected the same words in the same order")
    return word_potentials(inputs.trainable_model, prediction.emission_scores)


def default_results_dir(evaluation: Evaluation) -> Path:
    """`results/<run name>/`, or `results/<run name>_ensemble<M>/` for a CRF ensemble of M runs."""
    results_dir = evaluation.config.results_dir()
    if evaluation.ensemble:
        results_dir = results_dir.with_name(f"{results_dir.name}_ensemble{len(evaluation.ensemble) + 1}")
    return results_dir


def write_results(evaluation: Evaluation, command: str, output: Optional[Path] = None) -> Path:
    """Writes an evaluation to `output` (default `default_results_dir`): tables, plots and report.md
    (`ner.reporting`), the config and split it used, and `manifest.json`. report.md names as its provenance
    `command` (the command line that ran the evaluation), the run (and the other members of an ensemble),
    the SHA-256 of each of its weights files and the evaluation time, so results older than the run's
    weights show; `manifest.json` holds the same as data, plus the SHA-256 of every other results file. The
    files are written to a staging directory that then replaces the earlier results in one rename, so a
    failure or a kill leaves those whole. Returns the results directory."""
    config = evaluation.config
    output = default_results_dir(evaluation) if output is None else Path(output)
    with atomic_path(output) as results_dir:
        results_dir.mkdir()
        save_config(config, results_dir / CONFIG_FILE)
        evaluation.split.to_json(results_dir / SPLIT_FILE)
        write_latent_plots(results_dir, latent_pca(evaluation.latent), evaluation.latent_true,
                           evaluation.latent_pred, evaluation.labels, config.run_name)
        notes = (f"## Provenance\n\nProduced by `{command}` at {evaluation.evaluated_at} from the run in "
                 f"`{evaluation.run_dir}`, whose weights files had these SHA-256 sums: "
                 f"{_weights_text(evaluation.weights_sha256)}. "
                 + "".join(f"Decoded as a CRF ensemble with the run in `{member}` (weights SHA-256: "
                           f"{_weights_text(sums)}). " for member, sums in evaluation.ensemble.items())
                 + f"The config and split (sentence ids) it used are `{CONFIG_FILE}` and `{SPLIT_FILE}` here; "
                 f"`{MANIFEST_FILE}` lists every file of these results with its SHA-256.\n")
        write_report(results_dir, evaluation.report, config.run_name, extra_markdown=notes)
        manifest = {"command": command, "evaluated_at": evaluation.evaluated_at, "run_dir": str(evaluation.run_dir),
                    "weights_sha256": evaluation.weights_sha256,
                    "ensemble": {str(member): sums for member, sums in evaluation.ensemble.items()},
                    "files_sha256": {p.name: file_sha256(p) for p in sorted(results_dir.iterdir()) if p.is_file()}}
        (results_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return output


def _weights_text(weights_sha256: Dict[str, str]) -> str:
    """Markdown naming each weights file with its SHA-256."""
    return ", ".join(f"`{WEIGHTS_DIR}/{name}` `{digest}`" for name, digest in weights_sha256.items())
