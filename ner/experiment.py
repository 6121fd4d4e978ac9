"""One run end to end, from a validated config: data → split → features → model → training → evaluation.

The examples and the command line call these functions; each piece they use (reader, featurizer, model,
trainer, evaluator) knows nothing of configs and takes plain arguments.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ner.config import ExperimentConfig, load_config, resolve_path, save_config
from ner.encoders.hub_encoder import encoder_info, encoder_vocab, resolve_handle
from ner.corpora import Corpus, read_corpus
from ner.errors import ConfigError, DataError, NerError
from ner.losses import label_prior, unlabelled_loss
from ner.model_evaluator import EvaluationReport, build_report, latent_pca
from ner.feature_cache import WordFeatureStore, make_encode_fn
from ner.models import WordFeatureNER, build_model
from ner.preprocessor import (SPLIT_PARTS, DataSplit, EncodedSentences, Sentence, WordPieceFeaturizer,
                              make_dataset, make_split, outside_fractions, select_rows)
from ner.registry import model_type
from ner.runs import CONFIG_FILE, PRIOR_FILE, SPLIT_FILE, find_run, run_dir_for, write_label_map
from ner.reporting import write_latent_plots, write_report
from ner.tagging import IGNORE_LABEL, OUTSIDE, LabelMap, bio_tags
from ner.trainers.trainer import Trainer, load_weights
from ner.utils import set_seed, write_text_atomic

PCA_BATCHES = 10


@dataclass
class PreparedData:
    """The corpus featurized once (rows in sentence-id order), its split, and the label set."""

    sentences: Dict[int, Sentence]
    split: DataSplit
    label_map: LabelMap
    featurizer: WordPieceFeaturizer
    encoded_all: EncodedSentences

    def part_sentences(self, part: str) -> List[Sentence]:
        """The sentences of `part`: 'test', 'labelled', 'validation' or 'unlabelled'."""
        return [self.sentences[i] for i in self.split.parts()[part]]

    def rows(self, part: str) -> np.ndarray:
        """Row indices into `encoded_all` of `part`'s sentences, in split order (a split sentence's
        rows stay consecutive)."""
        ids = np.asarray(self.split.parts()[part], dtype=np.int64)
        starts = np.searchsorted(self.encoded_all.sentence_ids, ids, side="left")
        ends = np.searchsorted(self.encoded_all.sentence_ids, ids, side="right")
        return np.concatenate([np.zeros(0, np.int64)] + [np.arange(b, e) for b, e in zip(starts, ends)])

    def encoded(self, part: str) -> EncodedSentences:
        return select_rows(self.encoded_all, self.rows(part))


def make_corpus_split(config: ExperimentConfig, corpus: Corpus) -> DataSplit:
    """The parts the corpus's files fix, or the config's seeded split of its sentence ids."""
    if corpus.fixed_parts is not None:
        return DataSplit(test_ids=corpus.fixed_parts["test"], labelled_ids=corpus.fixed_parts["labelled"],
                         validation_ids=corpus.fixed_parts["validation"], unlabelled_ids=(), seed=config.split.seed)
    test_size, labelled_size, validation_size = config.split.sizes(len(corpus.sentences))
    return make_split(sorted(corpus.sentences), test_size=test_size, labelled_size=labelled_size,
                      validation_size=validation_size, seed=config.split.seed,
                      labelled_selection=config.split.labelled_selection,
                      outside_fraction=outside_fractions(corpus.sentences.values()))


def prepare_data(config: ExperimentConfig, split: Optional[DataSplit] = None, verbose: bool = True) -> PreparedData:
    """Reads the config's corpus, featurizes it, and makes its split (or checks and reuses `split`, a
    saved run's)."""
    corpus = read_corpus(config.data)
    by_id = corpus.sentences
    if split is None:
        split = make_corpus_split(config, corpus)
    else:
        unknown = [i for ids in split.parts().values() for i in ids if i not in by_id]
        if unknown:
            raise DataError(f"the split names {len(unknown):,} sentence ids (e.g. {unknown[0]}) that {corpus.source} "
                            f"does not have; expected the corpus the run was trained on (data.corpus "
                            f"{config.data.corpus!r})")
    vocab = encoder_vocab(config.encoder.handle)
    label_map = LabelMap.for_scheme(config.data.tag_scheme, corpus.entity_types)
    featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, config.data.max_seq_length,
                                     label_map, long_sentences=config.data.long_sentences)
    encoded_all = featurizer.featurize([by_id[i] for i in sorted(by_id)])
    if verbose:
        print(f"[data] {len(by_id):,} sentences from {corpus.source}: {len(split.test_ids):,} test, "
              f"{len(split.labelled_ids):,} labelled, {len(split.validation_ids):,} validation, "
              f"{len(split.unlabelled_ids):,} unlabelled (seed {split.seed})")
        print(f"[data] {encoded_all.stats.summary()}")
    return PreparedData(by_id, split, label_map, featurizer, encoded_all)


class ModelInputs:
    """What the trainer and evaluator feed a model: word pieces through the live encoder, or, for a
    frozen encoder with `training.feature_cache`, word vectors the encoder produced once.

    `model` is the full model (saved and used for prediction); `trainable_model` is what the loops
    call: the model itself, or a `WordFeatureNER` that shares its head (and layer mix).
    """

    def __init__(self, config: ExperimentConfig, data: PreparedData, model: keras.Model, verbose: bool = True):
        self.config, self.data, self.model, self.verbose = config, data, model, verbose
        self.store: Optional[WordFeatureStore] = None
        self.trainable_model = model
        self.model_type = model_type(config.model.type)
        cached = (self.model_type.can_train_on_cached_features and not config.encoder.trainable
                  and config.training.feature_cache)
        if cached:
            info = encoder_info(model.encoder)
            self.store = WordFeatureStore.open(
                resolve_path(config.paths.feature_cache_dir), data.encoded_all, resolve_handle(config.encoder.handle),
                use_all_layers=model.layer_mix is not None, num_layers=info.num_layers, hidden_size=info.hidden_size)
            self.trainable_model = WordFeatureNER(model.head, model.layer_mix)
            self._encode = make_encode_fn(model.encoder, use_all_layers=model.layer_mix is not None)

    def dataset(self, part: str, shuffle: bool, limit: Optional[int] = None,
                epoch: Optional[tf.Variable] = None) -> tf.data.Dataset:
        """Batches of `(features, labels)` for a split part; `shuffle` reshuffles each epoch (seeded, and
        keyed by `epoch` when given: see `ner.preprocessor.row_order`), in batches of similar length with
        `training.group_by_length`.

        `limit` keeps only the part's first rows (the split order is random, so they are a random
        sample): a semi-supervised stage of P pairs reads at most P batches of unlabelled data, and
        only those need encoding.
        """
        batch_size, seed = self.config.training.batch_size, self.config.training.seed
        group_by_length = shuffle and self.config.training.group_by_length
        rows = self.data.rows(part)[:limit]
        if self.store is None:
            return make_dataset(select_rows(self.data.encoded_all, rows), batch_size, shuffle=shuffle, seed=seed,
                                first_piece_mask=self.model_type.reads_first_piece_mask, epoch=epoch,
                                group_by_length=group_by_length)
        missing = self.store.missing_rows(rows)
        if missing.size:
            progress = keras.utils.Progbar(missing.size, verbose=1 if self.verbose else 0, unit_name="row")
            if self.verbose:
                print(f"[cache] encoding {missing.size:,} {part} rows once into {self.store.directory}")
            self.store.fill(self.data.encoded_all, rows, self._encode, progress=progress.add)
        return self.store.dataset(rows, batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                  group_by_length=group_by_length)


def model_for(config: ExperimentConfig, data: PreparedData) -> keras.Model:
    """Builds the config's model for the data's label set and vocabulary."""
    return build_model(config.model, config.encoder, data.label_map.num_labels, data.featurizer.vocab_size,
                       label_map=data.label_map)


def train(config: ExperimentConfig, resume: bool = False, verbose: bool = True) -> Path:
    """Trains the config's model; returns the run directory.

    Without a `semi_supervised` section this is supervised training on the labelled split; with one, it
    is the semi-supervised stage started from the trained run `semi_supervised.init_run`, on that run's
    split. The run directory (`saved_models/<run name>/`) receives the resolved config, the split
    (sentence ids), `history.csv`, the final weights and, when supervised, a checkpoint per epoch.
    """
    set_seed(config.training.seed)
    if config.semi_supervised is not None:
        return _train_semi_supervised(config, verbose)
    run_dir = config.run_dir()
    split = DataSplit.from_json(run_dir / SPLIT_FILE) if resume and (run_dir / SPLIT_FILE).is_file() else None
    data = prepare_data(config, split=split, verbose=verbose)
    save_config(config, run_dir / CONFIG_FILE)
    data.split.to_json(run_dir / SPLIT_FILE)
    write_label_map(run_dir, data.label_map)
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    training = config.training
    trainer = Trainer(inputs.trainable_model, run_dir, outside_id=data.label_map.label_to_id(OUTSIDE),
                      verbose=verbose, seed=training.seed, jit_compile=training.jit_compile)
    # Epoch k's order depends only on (seed, k), so a resumed run reads the same batches as an uninterrupted one.
    train_data = inputs.dataset("labelled", shuffle=True, epoch=trainer.epoch)
    validation_data = inputs.dataset("validation", shuffle=False)
    trainer.fit(train_data, training.epochs, training.learning_rate, validation_data=validation_data, resume=resume,
                clip_norm=training.clip_norm, encoder_learning_rate=training.encoder_learning_rate,
                encoder_warmup_fraction=training.encoder_warmup_fraction)
    return run_dir


def _train_semi_supervised(config: ExperimentConfig, verbose: bool) -> Path:
    """Loads the supervised run named by `semi_supervised.init_run` and alternates KL and CE steps."""
    stage = config.semi_supervised
    init_dir = run_dir_for(stage.init_run, config.paths.saved_models_dir)
    init_config = load_config(init_dir / CONFIG_FILE)
    for section in ("data", "encoder", "model"):
        if getattr(init_config, section) != getattr(config, section):
            raise ConfigError(f"semi_supervised.init_run '{stage.init_run}' was trained with a different "
                              f"'{section}' section than this config; expected them to match")
    data = prepare_data(config, split=DataSplit.from_json(init_dir / SPLIT_FILE), verbose=verbose)
    run_dir = config.run_dir()
    save_config(config, run_dir / CONFIG_FILE)
    data.split.to_json(run_dir / SPLIT_FILE)
    write_label_map(run_dir, data.label_map)
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    load_weights(inputs.trainable_model, init_dir)
    num_labels = data.label_map.num_labels
    prior = np.asarray(stage.prior) if stage.prior is not None else label_prior(data.encoded("labelled").label_ids,
                                                                                num_labels)
    if prior.shape != (num_labels,):
        raise ConfigError(f"semi_supervised.prior has {prior.size} values; expected one per label "
                          f"({num_labels}: {', '.join(data.label_map.labels)})")
    write_text_atomic(run_dir / PRIOR_FILE, json.dumps(dict(zip(data.label_map.labels, prior.tolist())), indent=1))
    unlabelled = unlabelled_loss(stage.losses, stage.loss_weights, prior)
    batch_size = config.training.batch_size
    trainer = Trainer(inputs.trainable_model, run_dir, outside_id=data.label_map.label_to_id(OUTSIDE),
                      verbose=verbose, jit_compile=config.training.jit_compile)
    trainer.fit_alternating(
        inputs.dataset("labelled", shuffle=True),
        inputs.dataset("unlabelled", shuffle=True, limit=stage.pairs * batch_size),
        unlabelled, stage.pairs, stage.learning_rate, stage.unlabelled_learning_rate, stage.evaluate_every,
        validation_data=inputs.dataset("validation", shuffle=False))
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


def evaluate(run: str, overrides: Sequence[str] = (), verbose: bool = True, part: str = "test",
             saved_models_dir: Optional[str] = None) -> Evaluation:
    """Evaluates a trained run on a part of its own split (read back from the run's `split.json`): the
    test part, or "validation" for model selection.

    The run (a name or a run directory) is looked up in `saved_models_dir`; None takes the
    `paths.saved_models_dir` the overrides give (`ner.runs.find_run`), where training put it.
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
    load_weights(inputs.trainable_model, run_dir)
    word_ids, latent, latent_true, latent_pred = _predict(inputs.trainable_model, inputs.dataset(part, shuffle=False))
    encoded = data.encoded(part)
    piece_ids = np.full(encoded.label_ids.shape, IGNORE_LABEL, np.int32)
    piece_ids[encoded.label_ids != IGNORE_LABEL] = word_ids
    sentences = data.part_sentences(part)
    word_predictions = data.featurizer.words_labels(encoded, piece_ids)
    true_tags = [list(sentence.tags) for sentence in sentences]
    pred_tags = [data.label_map.to_bio([data.label_map.id_to_label(i) for i in word_predictions[s.sentence_id]])
                 for s in sentences]
    report = build_report(true_tags, pred_tags, bio_tags(data.label_map.entity_types))  # any scheme: BIO scores
    return Evaluation(config, data.split, report, latent, latent_true, latent_pred, data.label_map.labels)


def write_results(evaluation: Evaluation, command: str) -> Path:
    """Writes an evaluation to `results/<run name>/`: tables, plots and report.md (`ner.reporting`), and
    the config and split it used. report.md names `command` (the command line that ran the evaluation)
    as its provenance. Returns the results directory."""
    config = evaluation.config
    results_dir = config.results_dir()
    save_config(config, results_dir / CONFIG_FILE)
    evaluation.split.to_json(results_dir / SPLIT_FILE)
    write_latent_plots(results_dir, latent_pca(evaluation.latent), evaluation.latent_true, evaluation.latent_pred,
                       evaluation.labels, config.run_name)
    notes = (f"## Provenance\n\nProduced by `{command}` from the run in `{config.run_dir()}`; "
             f"the config and split (sentence ids) it used are `{CONFIG_FILE}` and `{SPLIT_FILE}` here.\n")
    write_report(results_dir, evaluation.report, config.run_name, extra_markdown=notes)
    return results_dir


def _predict(model: keras.Model, dataset: tf.data.Dataset):
    """Runs `model` over `dataset` (unshuffled) with dropout off.

    Returns the predicted label id of every labelled position [n_words], in row order, and the latent
    points of the first `PCA_BATCHES` batches [n, L] with their true and predicted label ids [n].
    """
    def forward(features):
        return model(features, training=False)

    predict = tf.function(forward, input_signature=[dataset.element_spec[0]])
    predictions, latent_points, latent_true, latent_pred = [], [], [], []
    for index, (features, labels) in enumerate(dataset):
        latent, probabilities = predict(features)
        labelled = labels.numpy() != IGNORE_LABEL
        predicted = probabilities.numpy().argmax(-1)[labelled].astype(np.int32)
        predictions.append(predicted)
        if index < PCA_BATCHES:
            latent_points.append(latent.numpy()[labelled])
            latent_true.append(labels.numpy()[labelled])
            latent_pred.append(predicted)
    return (np.concatenate(predictions), np.concatenate(latent_points), np.concatenate(latent_true),
            np.concatenate(latent_pred))
