"""The MC-dropout uncertainty study of a trained run: what `ner uncertainty` and `examples.example_uncertainty` run.

`run_study` loads a run, runs T dropout passes (`uncertainty.mc_samples`, head dropout at
`uncertainty.mc_dropout_rate`) over its test split and over out-of-domain sentences (`data.ood_path`, a
CoNLL/BIO file whose tags are ignored), and computes `ner.uncertainty.analysis.analyse`. `write_study`
writes `uncertainty.md` and `.csv` (accuracy and ECE with MC dropout off and on, AUROC of each score for
token and span errors, OOD AUROC, prediction time) and the reliability diagram, ROC curves,
accuracy–rejection curves and OOD score histograms as PNG, by default to `results/uncertainty/<run name>/`.
"""
import dataclasses
import time
from pathlib import Path
from typing import List, Optional, Sequence

from ner.config import ExperimentConfig, UncertaintyConfig, load_config, resolve_path
from ner.data import ModelInputs, model_for, prepare_data
from ner.errors import NerError
from ner.prediction import FirstPiecePredictor
from ner.preprocessor import DataSplit, Sentence, make_dataset
from ner.readers import read_conll
from ner.reporting import Row, markdown_table, write_csv
from ner.runs import CONFIG_FILE, SPLIT_FILE, find_run
from ner.tagging import OUTSIDE
from ner.trainers.trainer import load_weights
from ner.uncertainty.analysis import UncertaintyAnalysis, WordPredictions, analyse
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
      mc_seconds: seconds of MC prediction on the test rows (reading cached features included).
    """

    config: ExperimentConfig
    analysis: UncertaintyAnalysis
    test_rows: int
    test_words: int
    ood_sentences: int
    mc_seconds: float

    @property
    def uncertainty(self) -> UncertaintyConfig:
        return self.config.uncertainty

    def rows(self) -> List[Row]:
        """The study's table: one `{"metric", "value"}` row per number."""
        analysis = self.analysis
        rows = [{"metric": f"token accuracy, {k}", "value": v} for k, v in analysis.accuracy.items()]
        rows += [{"metric": f"ECE (15 bins), {k}", "value": c.ece} for k, c in analysis.calibration.items()]
        rows += [{"metric": f"token-error AUROC, {k}", "value": r.auroc} for k, r in analysis.token_errors.items()]
        rows += [{"metric": f"span-error AUROC, {k} (max over span)", "value": r.auroc}
                 for k, r in analysis.span_errors.items()]
        rows += [{"metric": f"OOD AUROC, {k} (GMB test vs {self.ood_sentences} OOD sentences)", "value": r.auroc}
                 for k, r in analysis.ood.items()]
        rows.append({"metric": f"MC prediction seconds on {self.test_rows} test rows (T = "
                               f"{self.uncertainty.mc_samples}, incl. reading cached features)",
                     "value": self.mc_seconds})
        return rows


def default_output_dir(config: ExperimentConfig) -> Path:
    """`results/uncertainty/<run name>/` (under the config's `paths.results_dir`)."""
    return config.results_dir().parent / "uncertainty" / config.run_name


def run_study(run: str, overrides: Sequence[str] = (), mc_samples: Optional[int] = None,
              verbose: bool = True) -> UncertaintyStudy:
    """Runs the study on a trained run (a name under `paths.saved_models_dir`, or a run directory).

    `overrides` change keys of the run's config (e.g. `uncertainty.mc_dropout_rate=0.3`); `mc_samples`,
    when given, is T (`uncertainty.mc_samples`). Samples are seeded by `training.seed`.

    Raises NerError for a run that does not exist or did not finish, a bad override, or a missing or
    malformed out-of-domain file.
    """
    overrides = list(overrides) + ([] if mc_samples is None else [f"uncertainty.mc_samples={mc_samples}"])
    run_dir = find_run(run, overrides)
    config = load_config(run_dir / CONFIG_FILE, overrides)
    if not (run_dir / "weights").is_dir():
        raise NerError(f"run '{run}' has no final weights in {run_dir / 'weights'}; its training did not finish")
    set_seed(config.training.seed)
    data = prepare_data(config, split=DataSplit.from_json(run_dir / SPLIT_FILE), verbose=verbose)
    if not data.split.parts()["test"]:
        raise NerError(f"run '{run}' has no test sentences in {run_dir / SPLIT_FILE}; expected a non-empty part")
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    load_weights(inputs.trainable_model, run_dir)
    uncertainty = config.uncertainty

    def predict(model, dataset) -> WordPredictions:
        prediction = FirstPiecePredictor(model).predict(dataset, decode=False,
                                                        mc_predictor=MCDropoutPredictor.from_config(model, uncertainty))
        return WordPredictions(prediction.probabilities, prediction.mc.mean, prediction.mc.expected_entropy,
                               prediction.labels, prediction.row_lengths)

    test_data = inputs.dataset("test", shuffle=False)
    start = time.perf_counter()
    test = predict(inputs.trainable_model, test_data)
    mc_seconds = time.perf_counter() - start
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

    label_map = data.label_map
    analysis = analyse(test, gold_tags, label_map.to_bio, ood, label_map.labels)
    return UncertaintyStudy(config, analysis, len(encoded.sentence_ids), int(test.row_lengths.sum()),
                            len(ood_sentences), mc_seconds)


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
        plot_ood_histograms(*analysis.ood_scores[best_ood], out / "ood_histograms.png",
                            f"GMB test vs {config.data.ood_path}", best_ood,
                            labels=("GMB test (in-domain)", "out-of-domain")),
    ]
    write_text_atomic(out / MARKDOWN_FILE, "\n".join([
        f"# MC-dropout uncertainty: {config.run_name}",
        "",
        f"Produced by `{command}`: T = {uncertainty.mc_samples} samples, head dropout "
        f"{uncertainty.mc_dropout_rate} (training rate {config.model.head.dropout_rate}), encoder dropout "
        f"{'on' if uncertainty.encoder_dropout else 'off'}; {study.test_rows:,} GMB test rows, "
        f"{study.test_words:,} words. Scores: `smp` = 1 − max p̄, `entropy` = H(p̄), "
        "`mutual_information` = H(p̄) − E[H(p_t)]; a span's score is its most uncertain word's; a sentence's "
        "is the max or mean over its words.",
        "",
        markdown_table(rows, float_format=".4f"),
        "".join(f"![{path.name}]({path.name})\n\n" for path in figures),
    ]))
    return out
