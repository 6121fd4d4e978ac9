"""One run end to end, from a validated config: data → split → features → model → training → evaluation.

The examples and the command line call these functions; each piece they use (reader, featurizer, model,
trainer, evaluator) knows nothing of configs and takes plain arguments.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ner.config import ExperimentConfig, load_config, resolve_path, save_config
from ner.encoders.hub_encoder import encoder_vocab
from ner.errors import NerError
from ner.model_evaluator import EvaluationReport, build_report
from ner.models import build_model
from ner.preprocessor import (DataSplit, EncodedSentences, Sentence, WordPieceFeaturizer, make_dataset,
                              make_split, read_gmb_csv)
from ner.tagging import OUTSIDE, LabelMap
from ner.trainers.trainer import FEATURES_SPEC, Trainer, load_weights
from ner.utils import set_seed

CONFIG_FILE = "config.yaml"
SPLIT_FILE = "split.json"
PCA_BATCHES = 10


@dataclass
class PreparedData:
    """The corpus, its split and a featurizer; each part is featurized once, on first use."""

    sentences: Dict[int, Sentence]
    split: DataSplit
    label_map: LabelMap
    featurizer: WordPieceFeaturizer
    verbose: bool = True
    _encoded: Dict[str, EncodedSentences] = field(default_factory=dict)

    def part_sentences(self, part: str) -> List[Sentence]:
        """The sentences of `part`: 'test', 'labelled', 'validation' or 'unlabelled'."""
        return [self.sentences[i] for i in getattr(self.split, f"{part}_ids")]

    def encoded(self, part: str) -> EncodedSentences:
        if part not in self._encoded:
            self._encoded[part] = self.featurizer.featurize(self.part_sentences(part))
            if self.verbose:
                print(f"[data] {part}: {self._encoded[part].stats.summary()}")
        return self._encoded[part]


def prepare_data(config: ExperimentConfig, split: Optional[DataSplit] = None, verbose: bool = True) -> PreparedData:
    """Reads the GMB corpus the config names and makes (or reuses) the seeded split."""
    sentences = read_gmb_csv(resolve_path(config.data.gmb_path), encoding=config.data.encoding)
    by_id = {sentence.sentence_id: sentence for sentence in sentences}
    if split is None:
        split = make_split(sorted(by_id), test_size=config.split.test_size,
                           labelled_size=config.split.labelled_size,
                           validation_size=config.split.validation_size, seed=config.split.seed)
    vocab = encoder_vocab(config.encoder.handle)
    label_map = LabelMap.for_scheme(config.data.tag_scheme)
    featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, config.data.max_seq_length,
                                     label_map, long_sentences=config.data.long_sentences)
    if verbose:
        print(f"[data] {len(by_id):,} sentences from {config.data.gmb_path}: {len(split.test_ids):,} test, "
              f"{len(split.labelled_ids):,} labelled, {len(split.validation_ids):,} validation, "
              f"{len(split.unlabelled_ids):,} unlabelled (seed {split.seed})")
    return PreparedData(by_id, split, label_map, featurizer, verbose)


def model_for(config: ExperimentConfig, data: PreparedData) -> keras.Model:
    """Builds the config's model for the data's label set and vocabulary."""
    return build_model(config.model, config.encoder, data.label_map.num_labels, data.featurizer.vocab_size)


def train(config: ExperimentConfig, resume: bool = False, verbose: bool = True) -> Path:
    """Trains the config's model on the labelled split; returns the run directory.

    The run directory (`saved_models/<run name>/`) receives the resolved config, the split (sentence
    ids), a checkpoint per epoch, `history.csv` and the final weights.
    """
    set_seed(config.training.seed)
    run_dir = config.run_dir()
    split = DataSplit.from_json(run_dir / SPLIT_FILE) if resume and (run_dir / SPLIT_FILE).is_file() else None
    data = prepare_data(config, split=split, verbose=verbose)
    save_config(config, run_dir / CONFIG_FILE)
    data.split.to_json(run_dir / SPLIT_FILE)
    model = model_for(config, data)
    batch_size, seed = config.training.batch_size, config.training.seed
    train_data = make_dataset(data.encoded("labelled"), batch_size, shuffle=True, seed=seed)
    validation_data = make_dataset(data.encoded("validation"), batch_size, shuffle=False, seed=None)
    trainer = Trainer(model, run_dir, outside_id=data.label_map.label_to_id(OUTSIDE), verbose=verbose)
    trainer.fit(train_data, config.training.epochs, config.training.learning_rate,
                validation_data=validation_data, resume=resume)
    return run_dir


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one run on its test split, plus the latent points for the PCA plots.

    `latent` [n, latent_dim] holds the labelled positions of the first test batches, with their true and
    predicted label ids (`latent_true`, `latent_pred`, each [n]).
    """

    config: ExperimentConfig
    split: DataSplit
    report: EvaluationReport
    latent: np.ndarray
    latent_true: np.ndarray
    latent_pred: np.ndarray
    labels: Sequence[str]


def run_dir_for(run: str, saved_models_dir: str = "saved_models") -> Path:
    """A run is named (`bert_ner`) or given as its directory."""
    candidate = Path(run)
    run_dir = candidate if (candidate / CONFIG_FILE).is_file() else resolve_path(saved_models_dir) / run
    if not (run_dir / CONFIG_FILE).is_file():
        raise NerError(f"run '{run}' not found: expected {run_dir / CONFIG_FILE}; train it first "
                       f"(e.g. python -m examples.example_train_bert_ner)")
    return run_dir


def evaluate(run: str, overrides: Sequence[str] = (), verbose: bool = True) -> Evaluation:
    """Evaluates a trained run on its own test split (read back from the run's `split.json`)."""
    run_dir = run_dir_for(run)
    config = load_config(run_dir / CONFIG_FILE, overrides)
    data = prepare_data(config, split=DataSplit.from_json(run_dir / SPLIT_FILE), verbose=verbose)
    model = model_for(config, data)
    if not (run_dir / "weights").is_dir():
        raise NerError(f"run '{run}' has no final weights in {run_dir / 'weights'}; its training did not finish")
    load_weights(model, run_dir)
    encoded = data.encoded("test")
    probabilities, latent, latent_true, latent_pred = _predict(model, encoded, config.training.batch_size)
    predicted_ids = probabilities.argmax(-1).astype(np.int32)
    test_sentences = data.part_sentences("test")
    word_predictions = data.featurizer.words_labels(encoded, predicted_ids)
    true_tags = [list(sentence.tags) for sentence in test_sentences]
    pred_tags = [data.label_map.to_bio([data.label_map.id_to_label(i) for i in word_predictions[s.sentence_id]])
                 for s in test_sentences]
    report = build_report(true_tags, pred_tags, data.label_map.labels)
    return Evaluation(config, data.split, report, latent, latent_true, latent_pred, data.label_map.labels)


def _predict(model: keras.Model, encoded: EncodedSentences, batch_size: int):
    """Probabilities [N, T, C] padded to the featurizer's length, and the latent points of the first
    `PCA_BATCHES` batches [n, L] with their true and predicted label ids [n]."""
    dataset = make_dataset(encoded, batch_size, shuffle=False, seed=None)
    predict = tf.function(lambda features: model(features, training=False), input_signature=[FEATURES_SPEC])
    length = encoded.input_word_ids.shape[1]
    batches, latent_points, latent_true, latent_pred = [], [], [], []
    for index, (features, labels) in enumerate(dataset):
        latent, probabilities = predict(features)
        probabilities = probabilities.numpy()
        pad = length - probabilities.shape[1]
        batches.append(np.pad(probabilities, ((0, 0), (0, pad), (0, 0))))
        if index < PCA_BATCHES:
            labelled = labels.numpy() >= 0
            latent_points.append(latent.numpy()[labelled])
            latent_true.append(labels.numpy()[labelled])
            latent_pred.append(probabilities.argmax(-1)[labelled])
    return (np.concatenate(batches), np.concatenate(latent_points), np.concatenate(latent_true),
            np.concatenate(latent_pred))
