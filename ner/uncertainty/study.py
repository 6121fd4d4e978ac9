"""The uncertainty study of a trained run: what `ner uncertainty` and `examples.example_uncertainty` run.

`run_study` loads a run, runs T dropout passes (`uncertainty.mc_samples`, head dropout at its training
rate or `uncertainty.mc_dropout_rate`) over its test split and over out-of-domain sentences
(`data.ood_path`, a CoNLL/BIO file whose tags are ignored), fits the temperature on the validation part's
words and the Mahalanobis scorer on the labelled part's latent vectors, optionally runs the members of a
deep ensemble (other runs of the same split), and computes `ner.uncertainty.analysis.analyse`.
`write_study` writes `uncertainty.md` and `.csv` (one table: accuracy and ECE per method, AUROC of each
score for token and span errors, OOD AUROC, entity ECE, entity-error AUROC and selective prediction per
entity confidence, prediction time) and the reliability diagrams, ROC curves, accuracy–rejection curves
and OOD score histograms as PNG, by default to `results/uncertainty/<run name>/`.
"""
import dataclasses
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ner.config import ExperimentConfig, UncertaintyConfig, load_config, resolve_path
from ner.data import ModelInputs, model_for, prepare_data
from ner.errors import NerError
from ner.models.crf_output import CrfOutput
from ner.prediction import EVERY_BATCH, FirstPiecePredictions, FirstPiecePredictor
from ner.preprocessor import DataSplit, Sentence, make_dataset
from ner.readers import read_conll
from ner.reporting import Row, markdown_table, write_csv
from ner.runs import CONFIG_FILE, SPLIT_FILE, find_run
from ner.tagging import OUTSIDE
from ner.trainers.trainer import load_weights
from ner.uncertainty.analysis import Baselines, UncertaintyAnalysis, WordPredictions, analyse
from ner.uncertainty.ensemble import ensemble_predictions
from ner.uncertainty.mc_dropout import MCDropoutPredictor
from ner.uncertainty_reporting import (plot_accuracy_rejection, plot_ood_histograms, plot_reliability_diagram,
                                       plot_roc_curves)
from ner.utils import PathLike, set_seed, write_text_atomic

MARKDOWN_FILE = "uncertainty.md"
CSV_FILE = "uncertainty.csv"


@dataclasses.dataclass(frozen=True, eq=False)
class UncertaintyStudy:
    """The study of one run.

    Attributes:
      config: the run's config, with the overrides applied.
      analysis: every number of the study.
      test_rows: featurized test rows (a long sentence may fill several).
      test_words: words in those rows.
      ood_sentences: out-of-domain sentences read from `config.data.ood_path`.
      mc_seconds: seconds of MC prediction on the test rows, with the deterministic pass that gives the
        latent vectors and decoded labels (and a CRF's span marginals), reading cached features included.
      ensemble_size: M, the runs averaged by the ensemble method (0: no ensemble).
    """

    config: ExperimentConfig
    analysis: UncertaintyAnalysis
    test_rows: int
    test_words: int
    ood_sentences: int
    mc_seconds: float
    ensemble_size: int = 0

    @property
    def uncertainty(self) -> UncertaintyConfig:
        return self.config.uncertainty

    def rows(self) -> List[Row]:
        """The study's table: one `{"metric", "value"}` row per number."""
        analysis = self.analysis
        rows = [{"metric": f"token accuracy, {k}", "value": v} for k, v in analysis.accuracy.items()]
        rows += [{"metric": f"ECE (15 bins), {k}", "value": c.ece} for k, c in analysis.calibration.items()]
        rows.append({"metric": "temperature T (fitted on the validation words)", "value": analysis.temperature})
        rows += [{"metric": f"token-error AUROC, {k}", "value": r.auroc} for k, r in analysis.token_errors.items()]
        rows += [{"metric": f"span-error AUROC, {k} (max over span)", "value": r.auroc}
                 for k, r in analysis.span_errors.items()]
        rows += [{"metric": f"OOD AUROC, {k} (GMB test vs {self.ood_sentences} OOD sentences)", "value": r.auroc}
                 for k, r in analysis.ood.items()]
        predicted, gold = analysis.entity_counts
        rows += [{"metric": "predicted test entities", "value": predicted},
                 {"metric": "gold test entities", "value": gold}]
        rows += [{"metric": f"entity ECE (15 bins), {k}", "value": c.ece}
                 for k, c in analysis.entity_calibration.items()]
        rows += [{"metric": f"entity-error AUROC, {k}", "value": r.auroc} for k, r in analysis.entity_errors.items()]
        for name, selective in analysis.selective.items():
            for rate, precision, f1 in zip(selective.rejection_rates, selective.precision, selective.f1):
                aside = f"least confident {rate:.0%} set aside"
                rows += [{"metric": f"entity precision, {name}, {aside}", "value": precision},
                         {"metric": f"entity F1, {name}, {aside}", "value": f1}]
        rows.append({"metric": f"MC prediction seconds on {self.test_rows} test rows (T = "
                               f"{self.uncertainty.mc_samples}, plus one pass for latent vectors and labels, "
                               "incl. reading cached features)",
                     "value": self.mc_seconds})
        return rows


def default_output_dir(config: ExperimentConfig) -> Path:
    """`results/uncertainty/<run name>/` (under the config's `paths.results_dir`)."""
    return config.results_dir().parent / "uncertainty" / config.run_name


def run_study(run: str, overrides: Sequence[str] = (), mc_samples: Optional[int] = None,
              ensemble: Sequence[str] = (), verbose: bool = True) -> UncertaintyStudy:
    """Runs the study on a trained run (a name under `paths.saved_models_dir`, or a run directory).

    `overrides` change keys of the run's config (e.g. `uncertainty.mc_dropout_rate=0.3`); `mc_samples`,
    when given, is T (`uncertainty.mc_samples`). Samples are seeded by `training.seed`. `ensemble` names
    other runs of the same split and model type (normally other `training.seed`s); with any, the run
    and they are averaged as a deep ensemble.

    Raises NerError for a run that does not exist or did not finish, a bad override, an ensemble run of
    another split or model type, a split without test or validation sentences, or a missing or malformed
    out-of-domain file.
    """
    overrides = list(overrides) + ([] if mc_samples is None else [f"uncertainty.mc_samples={mc_samples}"])
    run_dir = find_run(run, overrides)
    config = load_config(run_dir / CONFIG_FILE, overrides)
    if not (run_dir / "weights").is_dir():
        raise NerError(f"run '{run}' has no final weights in {run_dir / 'weights'}; its training did not finish")
    set_seed(config.training.seed)
    data = prepare_data(config, split=DataSplit.from_json(run_dir / SPLIT_FILE), verbose=verbose)
    for part in ("test", "validation"):
        if not data.split.parts()[part]:
            raise NerError(f"run '{run}' has no {part} sentences in {run_dir / SPLIT_FILE}; expected a non-empty part")
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    load_weights(inputs.trainable_model, run_dir)
    uncertainty = config.uncertainty
    is_crf = isinstance(inputs.model, CrfOutput)
    label_map = data.label_map

    def predict(model, dataset) -> WordPredictions:
        """MC dropout, the decoded labels and the latent vectors (and a CRF's span marginals) of every word."""
        prediction = FirstPiecePredictor(model, label_map.span_reading()).predict(
            dataset, latent_batches=EVERY_BATCH, mc_predictor=MCDropoutPredictor.from_config(model, uncertainty),
            span_marginals=is_crf)
        return WordPredictions(prediction.probabilities, prediction.mc.mean, prediction.mc.expected_entropy,
                               prediction.labels, prediction.row_lengths, prediction.label_ids, prediction.latent,
                               prediction.span_marginals)

    test_data = inputs.dataset("test", shuffle=False)
    start = time.perf_counter()
    test = predict(inputs.trainable_model, test_data)
    mc_seconds = time.perf_counter() - start
    one_pass = FirstPiecePredictor(inputs.trainable_model)
    validation = _single_pass(one_pass.predict(inputs.dataset("validation", shuffle=False), decode=False,
                                               probabilities=True))
    labelled = _single_pass(one_pass.predict(inputs.dataset("labelled", shuffle=False), decode=False,
                                             probabilities=True, latent_batches=EVERY_BATCH))
    encoded = data.encoded("test")
    sentences = data.sentences
    gold_tags = [sentences[sid].tags[offset:offset + count] for sid, offset, count
                 in zip(encoded.sentence_ids, encoded.word_offsets, encoded.num_words)]

    ood_sentences = [Sentence(s.sentence_id, s.words, (OUTSIDE,) * len(s.words))
                     for s in read_conll(resolve_path(config.data.ood_path), scheme_in="bio")]
    ood_encoded = data.featurizer.featurize(ood_sentences)
    if verbose:
        print(f"[uncertainty] out-of-domain: {len(ood_sentences):,} sentences from {config.data.ood_path}; "
              f"{ood_encoded.stats.summary()}")
    # Out-of-domain rows go through the live encoder (they are not in the feature cache) of the full model.
    ood_data = make_dataset(ood_encoded, config.training.batch_size, shuffle=False, seed=None,
                            first_piece_mask=inputs.model_type.reads_first_piece_mask,
                            length_buckets=config.training.length_buckets)
    ood = predict(inputs.model, ood_data)

    members = [inputs] + [_ensemble_member(name, config, data, overrides, verbose) for name in ensemble]
    ensemble_runs = None
    if ensemble:
        ensemble_runs = (_ensemble(ensemble_predictions([m.trainable_model for m in members], test_data)),
                         _ensemble(ensemble_predictions([m.model for m in members], ood_data)))
    analysis = analyse(test, gold_tags, label_map.to_bio, ood, label_map.labels,
                       Baselines(validation, labelled, ensemble_runs))
    return UncertaintyStudy(config, analysis, len(encoded.sentence_ids), int(test.row_lengths.sum()),
                            len(ood_sentences), mc_seconds, len(members) if ensemble else 0)


def _single_pass(prediction: FirstPiecePredictions) -> WordPredictions:
    """Predictions with dropout off only: the probabilities stand in for the mean, with zero expected entropy."""
    probabilities = prediction.probabilities
    return WordPredictions(probabilities, probabilities, np.zeros(len(probabilities)), prediction.labels,
                           prediction.row_lengths, latent=prediction.latent)


def _ensemble(prediction: tuple) -> WordPredictions:
    """An ensemble's `(first member's predictions, statistics over the members)` as word predictions."""
    first, statistics = prediction
    return WordPredictions(first.probabilities, statistics.mean, statistics.expected_entropy, first.labels,
                           first.row_lengths)


def _ensemble_member(run: str, config: ExperimentConfig, data, overrides: Sequence[str], verbose: bool) -> ModelInputs:
    """The model inputs of ensemble run `run`, its weights loaded; NerError unless it has the study run's split,
    model type and encoder (so that it reads the same batches)."""
    run_dir = find_run(run, overrides)
    member = load_config(run_dir / CONFIG_FILE)
    if not (run_dir / "weights").is_dir():
        raise NerError(f"ensemble run '{run}' has no final weights in {run_dir / 'weights'}; "
                       "its training did not finish")
    if DataSplit.from_json(run_dir / SPLIT_FILE).parts() != data.split.parts():
        raise NerError(f"ensemble run '{run}' has another split than run '{config.run_name}'; expected the same "
                       "split (runs that differ in training.seed only)")
    if (member.model.type, member.encoder, member.model.encoder_layers) != (
            config.model.type, config.encoder, config.model.encoder_layers):
        raise NerError(f"ensemble run '{run}' has another model type or encoder than run '{config.run_name}'; "
                       f"expected model.type {config.model.type} on the same encoder")
    inputs = ModelInputs(member, data, model_for(member, data), verbose)
    load_weights(inputs.trainable_model, run_dir)
    return inputs


def write_study(study: UncertaintyStudy, command: str, output: Optional[PathLike] = None) -> Path:
    """Writes the study's tables and figures to `output` (default: `default_output_dir`) and returns that
    directory. `uncertainty.md` names `command` (the command line that ran the study) as its provenance."""
    config, analysis, uncertainty = study.config, study.analysis, study.uncertainty
    out = default_output_dir(config) if output is None else Path(output)
    rows = study.rows()
    write_csv(out / CSV_FILE, rows)
    best_ood = max(analysis.ood, key=lambda key: analysis.ood[key].auroc)
    figures = [
        plot_reliability_diagram(analysis.calibration, out / "reliability.png", f"{config.run_name}: reliability"),
        plot_roc_curves(analysis.token_errors, out / "roc_token_errors.png", "token misclassification"),
        plot_roc_curves(analysis.span_errors, out / "roc_span_errors.png", "wrong predicted spans"),
        plot_accuracy_rejection(analysis.rejection, out / "accuracy_rejection.png", "accuracy–rejection"),
        plot_roc_curves(analysis.ood, out / "roc_ood.png", f"GMB test vs {config.data.ood_path} (sentences)"),
        plot_ood_histograms(*analysis.ood_scores[best_ood], out / "ood_histograms.png",
                            f"GMB test vs {config.data.ood_path}", best_ood,
                            labels=("GMB test (in-domain)", "out-of-domain")),
    ]
    if analysis.entity_calibration:
        figures += [
            plot_reliability_diagram(analysis.entity_calibration, out / "reliability_entities.png",
                                     f"{config.run_name}: entity reliability (correct = exact span and type)",
                                     items="entities", confidence="of the predicted entity"),
            plot_roc_curves(analysis.entity_errors, out / "roc_entity_errors.png", "wrong predicted entities"),
        ]
    ensemble = (f"; ensemble of {study.ensemble_size} runs (this run first)" if study.ensemble_size else "")
    write_text_atomic(out / MARKDOWN_FILE, "\n".join([
        f"# Uncertainty: {config.run_name}",
        "",
        f"Produced by `{command}`: T = {uncertainty.mc_samples} samples, head dropout "
        f"{uncertainty.sampling_rate(config.model.head.dropout_rate)} "
        f"(training rate {config.model.head.dropout_rate}), "
        f"encoder dropout {'on' if uncertainty.encoder_dropout else 'off'}; temperature T = "
        f"{analysis.temperature:.4f} fitted on the validation words; Mahalanobis distance on the head's latent "
        f"layer, fitted on the labelled words{ensemble}; {study.test_rows:,} GMB test rows, "
        f"{study.test_words:,} words. Scores: `smp` = 1 − max p̄, `entropy` = H(p̄), "
        "`mutual_information` = H(p̄) − E[H(p_t)]; a span's score is its most uncertain word's; a sentence's "
        "is the max or mean over its words. Entities are the model's decoded ones (Viterbi for a CRF); an "
        "entity's confidence is the mean or min probability of its words' decoded labels, or a CRF's span "
        "marginal.",
        "",
        markdown_table(rows, float_format=".4f"),
        "".join(f"![{path.name}]({path.name})\n\n" for path in figures),
    ]))
    return out
