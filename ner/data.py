"""The data of a run and what its model reads: the corpus featurized once with its split
(`prepare_data`), and the batches the trainer and evaluator feed the model (`ModelInputs`), through the
live encoder or the feature cache.

Under `split.protocol: seed001` (seed 001's original, leaky protocol, `ner.seed001_protocol`) the split
is one draw, the one the run is evaluated on, and every shuffled pass over a part reads a fresh draw.
"""
import dataclasses
import itertools
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ner.augmentation import mention_replacement
from ner.config import ExperimentConfig, resolve_path
from ner.corpora import Corpus, read_corpus
from ner.encoders.hub_encoder import encoder_info, encoder_vocab, resolve_handle
from ner.errors import ConfigError, DataError
from ner.feature_cache import WordFeatureStore, make_encode_fn
from ner.models import build_model
from ner.models.bert_ner import word_feature_twin
from ner.precision import precision_policy
from ner.preprocessor import (DataSplit, EncodedSentences, Sentence, WordPieceFeaturizer, add_labelled_from_file,
                              make_dataset, make_split, outside_fractions, select_rows)
from ner.registry import model_type
from ner.seed001_protocol import Seed001Draws
from ner.tagging import IGNORE_LABEL, LabelMap


@dataclass
class PreparedData:
    """The corpus featurized once (rows in sentence-id order), its split, and the label set; `draws` are
    seed 001's per-pass draws under `split.protocol: seed001`, else None.

    `augmented_ids` are the sentences `split.mention_replacement_copies` made from the labelled part
    (`ner.augmentation`, numbered after the corpus's ids): in `sentences` and `encoded_all`, and in the
    "labelled" part of `parts()` after the split's own, but never in `split`, which holds corpus ids only.
    """

    sentences: Dict[int, Sentence]
    split: DataSplit
    label_map: LabelMap
    featurizer: WordPieceFeaturizer
    encoded_all: EncodedSentences
    draws: Optional[Seed001Draws] = None
    augmented_ids: Tuple[int, ...] = ()

    def parts(self) -> Dict[str, Tuple[int, ...]]:
        """The split's parts by name, the augmented sentences at the end of "labelled"."""
        parts = self.split.parts()
        return {**parts, "labelled": parts["labelled"] + self.augmented_ids}

    def part_sentences(self, part: str) -> List[Sentence]:
        """The sentences of `part`: 'test', 'labelled', 'validation' or 'unlabelled'."""
        return [self.sentences[i] for i in self.parts()[part]]

    def rows(self, part: str) -> np.ndarray:
        """Row indices into `encoded_all` of `part`'s sentences, in split order (a split sentence's
        rows stay consecutive)."""
        return self.rows_of(self.parts()[part])

    def rows_of(self, sentence_ids) -> np.ndarray:
        """Row indices into `encoded_all` of the sentences `sentence_ids`, in that order."""
        ids = np.asarray(sentence_ids, dtype=np.int64)
        starts = np.searchsorted(self.encoded_all.sentence_ids, ids, side="left")
        ends = np.searchsorted(self.encoded_all.sentence_ids, ids, side="right")
        return np.concatenate([np.zeros(0, np.int64)] + [np.arange(b, e) for b, e in zip(starts, ends)])

    def encoded(self, part: str) -> EncodedSentences:
        return select_rows(self.encoded_all, self.rows(part))


def corpus_draws(config: ExperimentConfig, corpus: Corpus) -> Optional[Seed001Draws]:
    """Seed 001's draws over the corpus under `split.protocol: seed001`; None under "leak_free"."""
    if config.split.protocol != "seed001":
        return None
    if corpus.fixed_parts is not None:
        raise ConfigError(f"split.protocol seed001 draws its parts from one corpus; {corpus.source} fixes its parts "
                          f"(data.corpus {config.data.corpus!r}); expected data.corpus gmb or split.protocol leak_free")
    return Seed001Draws.from_sentences(corpus.sentences, seed=config.split.seed, batch_size=config.training.batch_size,
                                       test_size=config.split.test_size, labelled_size=config.split.labelled_size)


def make_corpus_split(config: ExperimentConfig, corpus: Corpus) -> DataSplit:
    """The parts the corpus's files fix, or the config's seeded split of its sentence ids (plus the
    unlabelled sentences `split.added_labelled_file` moves to the labelled part), or under
    `split.protocol: seed001` the draw a run is evaluated on (`Seed001Draws.split`)."""
    draws = corpus_draws(config, corpus)
    if draws is not None:
        return draws.split()
    if corpus.fixed_parts is not None:
        split = DataSplit(test_ids=corpus.fixed_parts["test"], labelled_ids=corpus.fixed_parts["labelled"],
                          validation_ids=corpus.fixed_parts["validation"], unlabelled_ids=(), seed=config.split.seed)
    else:
        test_size, labelled_size, validation_size = config.split.sizes(len(corpus.sentences))
        split = make_split(sorted(corpus.sentences), test_size=test_size, labelled_size=labelled_size,
                           validation_size=validation_size, seed=config.split.seed,
                           labelled_selection=config.split.labelled_selection,
                           outside_fraction=outside_fractions(corpus.sentences.values()))
    if config.split.added_labelled_file is None:
        return split
    return add_labelled_from_file(split, resolve_path(config.split.added_labelled_file))


def prepare_data(config: ExperimentConfig, split: Optional[DataSplit] = None, verbose: bool = True) -> PreparedData:
    """Reads the config's corpus, featurizes it, and makes its split (or checks and reuses `split`, a
    saved run's)."""
    corpus = read_corpus(config.data)
    by_id = corpus.sentences
    draws = corpus_draws(config, corpus)
    if split is None:
        split = make_corpus_split(config, corpus)
    else:
        unknown = [i for ids in split.parts().values() for i in ids if i not in by_id]
        if unknown:
            raise DataError(f"the split names {len(unknown):,} sentence ids (e.g. {unknown[0]}) that {corpus.source} "
                            f"does not have; expected the corpus the run was trained on (data.corpus "
                            f"{config.data.corpus!r})")
    augmented = []
    if config.split.mention_replacement_copies:
        augmented = mention_replacement([by_id[i] for i in split.labelled_ids], config.split.mention_replacement_copies,
                                        config.split.mention_replacement_rate, seed=config.split.seed,
                                        first_id=max(by_id) + 1)
        by_id = {**by_id, **{sentence.sentence_id: sentence for sentence in augmented}}
    vocab = encoder_vocab(config.encoder.handle)
    label_map = LabelMap.for_scheme(config.data.tag_scheme, corpus.entity_types)
    featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, config.data.max_seq_length,
                                     label_map, long_sentences=config.data.long_sentences,
                                     lexical_templates=config.model.lexical_template_set,
                                     char_features=config.model.reads_char_ids,
                                     max_pieces_per_word=config.data.max_pieces_per_word)
    encoded_all = featurizer.featurize([by_id[i] for i in sorted(by_id)])
    if verbose:
        print(f"[data] {len(corpus.sentences):,} sentences from {corpus.source}: {len(split.test_ids):,} test, "
              f"{len(split.labelled_ids):,} labelled, {len(split.validation_ids):,} validation, "
              f"{len(split.unlabelled_ids):,} unlabelled (seed {split.seed})")
        if augmented:
            print(f"[data] {len(augmented):,} labelled sentences added by mention replacement (rate "
                  f"{config.split.mention_replacement_rate:g})")
        print(f"[data] {encoded_all.stats.summary()}")
        if draws is not None:
            print(f"[data] {draws.summary()}")
    return PreparedData(by_id, split, label_map, featurizer, encoded_all, draws,
                        tuple(sentence.sentence_id for sentence in augmented))


class ModelInputs:
    """What the trainer and evaluator feed a model: word pieces through the live encoder, or, for a
    frozen encoder with `training.feature_cache`, word vectors the encoder produced once.

    `model` is the full model (saved and used for prediction); `trainable_model` is what the loops
    call: the model itself, or its `WordFeatureNER` twin (`word_feature_twin`) that shares its head layers.
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
                use_all_layers=model.layer_mix is not None, num_layers=info.num_layers, hidden_size=info.hidden_size,
                word_pooling=config.model.word_pooling)
            with precision_policy(config.training.precision):
                self.trainable_model = word_feature_twin(model)
            self._encode = make_encode_fn(model.encoder, use_all_layers=model.layer_mix is not None)

    def dataset(self, part: str, shuffle: bool, limit: Optional[int] = None,
                epoch: Optional[tf.Variable] = None) -> tf.data.Dataset:
        """Batches of `(features, labels)` for a split part (`rows_dataset` of its rows).

        `limit` keeps only the part's first rows (the split order is random, so they are a random
        sample): a semi-supervised stage of P pairs reads at most P batches of unlabelled data, and
        only those need encoding.

        Under `split.protocol: seed001` a shuffled pass reads a fresh draw of the part instead
        (`draw_dataset`).
        """
        if shuffle and self.data.draws is not None:
            return self.draw_dataset(part, limit, epoch)
        return self.rows_dataset(self.data.rows(part)[:limit], shuffle, epoch=epoch, part=part)

    def monitor_dataset(self, epoch: Optional[tf.Variable] = None) -> tf.data.Dataset:
        """What training evaluates after each epoch (or every `evaluate_every` pairs): the validation part;
        under `split.protocol: seed001`, a fresh draw of the "test" part each time, as seed 001 evaluated
        (keyed by `epoch` when given, else by the pass)."""
        if self.data.draws is None:
            return self.dataset("validation", shuffle=False)
        return self.draw_dataset("test", epoch=epoch)

    def step_dataset(self, part: str, pairs: int) -> tf.data.Dataset:
        """The batches a semi-supervised stage of `pairs` pairs steps through on `part` ("labelled" or
        "unlabelled"; the trainer repeats it): the part reshuffled each pass (unlabelled: its first `pairs`
        batches, all the stage can read); under `split.protocol: seed001`, one batch per pass, the first
        of the part of a fresh draw (seed 001's `.take(1)` in its KL loops)."""
        batch_size = self.config.training.batch_size
        if self.data.draws is not None:
            return self.draw_dataset(part, limit=batch_size)
        return self.dataset(part, shuffle=True, limit=pairs * batch_size if part == "unlabelled" else None)

    def draw_dataset(self, part: str, limit: Optional[int] = None, epoch: Optional[tf.Variable] = None
                     ) -> tf.data.Dataset:
        """Seed 001's batches of `part` (its first `limit` sentences): each pass reads the draw keyed by
        `epoch`'s value when the pass starts, else by this dataset's pass count (0, 1, ...), in the draw's
        order (`ner.seed001_protocol.Seed001Draws.draw`). The rows any draw can reach are encoded first."""
        draws = self.data.draws
        reachable = self.data.rows_of(draws.reachable(part, limit))  # [m], ascending
        passes = itertools.count()

        def draw(key: np.ndarray) -> np.ndarray:  # key: int64 scalar, the epoch (-1 without one)
            rows = self.data.rows_of(draws.draw(part, int(key) if epoch is not None else next(passes), limit))
            return np.searchsorted(reachable, rows).astype(np.int64)  # [n] indices into `reachable`

        def positions(_) -> tf.Tensor:
            key = epoch.read_value() if epoch is not None else tf.constant(-1, tf.int64)
            return tf.ensure_shape(tf.numpy_function(draw, [key], tf.int64), [None])

        order = tf.data.Dataset.from_tensors(0).map(positions).unbatch()
        return self.rows_dataset(reachable, shuffle=False, part=part, order=order)

    def rows_dataset(self, rows: np.ndarray, shuffle: bool, epoch: Optional[tf.Variable] = None,
                     word_labels: Optional[np.ndarray] = None, seed: Optional[int] = None,
                     part: str = "", order: Optional[tf.data.Dataset] = None) -> tf.data.Dataset:
        """Batches of `(features, labels)` for rows of `data.encoded_all`; `shuffle` reshuffles each epoch
        (seeded by `seed`, default `training.seed`, and keyed by `epoch` when given: see
        `ner.preprocessor.row_order`), in batches of similar length with `training.group_by_length`, each
        padded to one of `training.length_buckets` when it is set.

        `word_labels` [n] int32 replaces the labels of the rows' n words (in row order), e.g. a teacher's
        pseudo-labels (`ner.self_training`). Rows not in the feature cache yet are encoded first (`part`
        names them in the progress line). `order` (indices into `rows`, a new sequence each pass) replaces
        the order `shuffle` gives (`draw_dataset`).
        """
        batch_size, buckets = self.config.training.batch_size, self.config.training.length_buckets
        seed = self.config.training.seed if seed is None else seed
        group_by_length = shuffle and self.config.training.group_by_length
        if self.store is None:
            encoded = select_rows(self.data.encoded_all, rows)
            if word_labels is not None:
                encoded = with_word_labels(encoded, word_labels)
            return make_dataset(encoded, batch_size, shuffle=shuffle, seed=seed,
                                first_piece_mask=self.model_type.reads_first_piece_mask, epoch=epoch,
                                group_by_length=group_by_length, length_buckets=buckets, order=order)
        missing = self.store.missing_rows(rows)
        if missing.size:
            progress = keras.utils.Progbar(missing.size, verbose=1 if self.verbose else 0, unit_name="row")
            if self.verbose:
                print(f"[cache] encoding {missing.size:,} {part} rows once into {self.store.directory}")
            self.store.fill(self.data.encoded_all, rows, self._encode, progress=progress.add)
        return self.store.dataset(rows, batch_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                  group_by_length=group_by_length, word_labels=word_labels,
                                  length_buckets=buckets, order=order)


def with_word_labels(encoded: EncodedSentences, word_labels: np.ndarray) -> EncodedSentences:
    """`encoded` with the labels of its n words (first pieces, in row order) replaced by `word_labels` [n]."""
    first_pieces = encoded.label_ids != IGNORE_LABEL
    if len(word_labels) != int(first_pieces.sum()):
        raise ValueError(f"word_labels has {len(word_labels)} labels for the {int(first_pieces.sum())} words of the rows")
    label_ids = encoded.label_ids.copy()
    label_ids[first_pieces] = word_labels
    return dataclasses.replace(encoded, label_ids=label_ids)


def model_for(config: ExperimentConfig, data: PreparedData) -> keras.Model:
    """Builds the config's model for the data's label set and vocabulary, under `training.precision`."""
    return build_model(config.model, config.encoder, data.label_map.num_labels, data.featurizer.vocab_size,
                       label_map=data.label_map, precision=config.training.precision)
