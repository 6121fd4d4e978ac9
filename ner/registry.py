"""The names a config may use, each defined once: model types, corpora, unlabelled losses, acquisition
strategies, and choice lists.

Every entry names its implementation as a lazy `"module:attribute"` path, so this module imports nothing
heavy; `ner.config` validates names against it without importing TensorFlow, and `resolve` imports an
implementation only when it is used. An unknown name is a `ConfigError` that lists the known ones.

Adding a model is: its module (the model class and a builder function), one row in `MODELS`, its config
YAML under `config/`, and its test.
Adding a corpus is: a reader `(DataConfig) -> Corpus` (see `ner.corpora`) and one row in `CORPORA`.
Adding an acquisition strategy (`ner select`) is: a scorer in `ner.selection` and one row in `ACQUISITIONS`.
"""
import importlib
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from ner.errors import ConfigError

LONG_SENTENCE_POLICIES = ("split", "truncate")  # `ner.preprocessor.WordPieceFeaturizer(long_sentences=)`
# the head reads the last encoder layer, a learned mix of all, or all side by side (`ner.models.layer_mix`)
ENCODER_LAYER_CHOICES = ("last", "mix", "concat")
# a word's vector: its first piece's, or the mean over its pieces (`ner.layers.word_pooling`)
WORD_POOLINGS = ("first", "mean")
# the lexical features a CRF model may weigh (`ner.lexical.TEMPLATE_SETS`, `model.lexical_templates`)
LEXICAL_TEMPLATE_SETS = ("crf", "extended")
RNN_CELLS = ("lstm", "gru")  # `ner.layers.recurrent.recurrent_layer`
LABELLED_SELECTIONS = ("random", "fewer_outside")  # how `ner.preprocessor.make_split` draws the labelled part
DISTRIBUTE_STRATEGIES = ("none", "mirrored", "multi_worker")  # `ner.distribute.make_strategy`
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")  # Keras dtype policies for a model (`ner.precision`)
# How a GMB run's sentences become parts (`split.protocol`): "leak_free", disjoint parts fixed once
# (`ner.preprocessor.make_split`); "seed001", seed 001's original, leaky protocol (`ner.seed001_protocol`).
SPLIT_PROTOCOLS = ("leak_free", "seed001")
KL_REDUCTIONS = ("mean", "sum")  # how the confidence KL reduces over positions (`ner.losses.KLOptions`)
# Where a null `semi_supervised.prior` comes from: the labelled part's label distribution, or seed 001's
# hard-coded whole-corpus distribution (`ner.seed001_protocol.SEED001_PRIOR`).
PRIOR_SOURCES = ("labelled", "seed001")
# What early stopping may monitor (`training.early_stopping_monitor`): the validation metrics of
# `ner.trainers.trainer.Trainer.evaluate`, with `val_`, and whether lower ("min") or higher ("max") is better.
EARLY_STOPPING_MONITORS: Dict[str, str] = {"val_loss": "min", "val_accuracy": "max", "val_accuracy_without_o": "max"}


@dataclass(frozen=True)
class ModelType:
    """One model type: how to build it and what the rest of the package needs to know about it.

    builder: `"module:function"` of `(model: ModelConfig, encoder: EncoderConfig, head: MLPHead,
      num_labels: int, vocab_size: int, label_map: Optional[LabelMap]) -> TokenClassifier`; `head` is
      already built (with a softmax unless `owns_loss`).
    has_encoder: it runs a TF-Hub BERT encoder (`model.encoder`), so `uncertainty.encoder_dropout` applies.
    reads_first_piece_mask: it reads the `first_piece_mask` feature [B, T] (`make_dataset(first_piece_mask=True)`).
    can_train_on_cached_features: with a frozen encoder its head can train on cached word vectors
      (`ner.feature_cache`, through a `WordFeatureNER` sharing its head and layer mix).
    owns_loss: its head gives scores, not probabilities, and its `forward_loss` is not cross-entropy (CRF).
    rnn_cell: the recurrent cell it uses unless `model.rnn.cell` names one; None for no recurrent layers.
    takes_word_rnn: `model.word_rnn` may put a recurrent stack (`model.rnn`, cell `rnn_cell`) over the words
      below its head.
    takes_char_cnn: `model.char_cnn_filters` may append a character CNN's features to its encoder's vectors.
    takes_word_pooling: `model.word_pooling: mean` may average each word's pieces (it reads the first-piece
      mask, which says where words start).
    """

    builder: str
    has_encoder: bool
    reads_first_piece_mask: bool = False
    can_train_on_cached_features: bool = False
    owns_loss: bool = False
    rnn_cell: Optional[str] = None
    takes_word_rnn: bool = False
    takes_char_cnn: bool = False
    takes_word_pooling: bool = False


MODELS: Dict[str, ModelType] = {
    "ner_baseline": ModelType("ner.models.baseline_ner:build_baseline_ner", has_encoder=False),
    "bert_ner": ModelType("ner.models.bert_ner:build_bert_ner", has_encoder=True, can_train_on_cached_features=True,
                          takes_char_cnn=True),
    "bert_crf": ModelType("ner.models.bert_ner:build_bert_crf_ner", has_encoder=True, reads_first_piece_mask=True,
                          can_train_on_cached_features=True, owns_loss=True, rnn_cell="lstm", takes_word_rnn=True,
                          takes_char_cnn=True, takes_word_pooling=True),
    "bilstm": ModelType("ner.models.rnn_ner:build_rnn_ner", has_encoder=False, rnn_cell="lstm"),
    "gru": ModelType("ner.models.rnn_ner:build_rnn_ner", has_encoder=False, rnn_cell="gru"),
    "bert_gru": ModelType("ner.models.bert_rnn_ner:build_bert_rnn_ner", has_encoder=True, rnn_cell="gru"),
    "bert_bilstm_crf": ModelType("ner.models.bert_rnn_ner:build_bert_rnn_crf_ner", has_encoder=True,
                                 reads_first_piece_mask=True, owns_loss=True, rnn_cell="lstm"),
}

# `"module:function"` of `(data: DataConfig) -> ner.corpora.Corpus`.
CORPORA: Dict[str, str] = {
    "gmb": "ner.corpora:read_gmb_corpus",
    "conll": "ner.corpora:read_conll_corpus",
}

# `"module:class"` of the losses a semi-supervised stage sums on unlabelled batches (`semi_supervised.losses`).
UNLABELLED_LOSSES: Dict[str, str] = {
    "data_distribution": "ner.losses:DataDistributionKL",
    "confidence": "ner.losses:ConfidenceKL",
}

# How a self-training teacher scores its confidence in a pseudo-labelled sentence (`ner.self_training`).
PSEUDO_LABEL_CONFIDENCES = ("marginal", "mc_dropout")
# Who learns from the pseudo-labels: the teacher itself, or a student from the initial weights.
SELF_TRAINING_STUDENTS = ("continue", "reinitialise")


@dataclass(frozen=True)
class Acquisition:
    """One way of ranking pool sentences for annotation (`ner select`, `ner.selection`).

    scorer: `"module:function"` of `(outputs: ner.selection.PoolOutputs, seed: int) -> float64 [N]`, one
      score per pool sentence, higher = label first; `seed` is read by the strategies that draw.
    reads: the `PoolOutputs` field the scorer reads, so the tagger computes it: "log_probability",
      "probabilities", "mc", or None (the word counts only).
    """

    scorer: str
    reads: Optional[str]


ACQUISITIONS: Dict[str, Acquisition] = {
    "mnlp": Acquisition("ner.selection:mnlp_scores", reads="log_probability"),
    "bald": Acquisition("ner.selection:bald_scores", reads="mc"),
    "entropy": Acquisition("ner.selection:entropy_scores", reads="probabilities"),
    "random": Acquisition("ner.selection:random_scores", reads=None),
}


def lookup(table: Mapping[str, Any], name: str, what: str) -> Any:
    """`table[name]`; ConfigError naming `what` (e.g. "model type"), `name` and the known names otherwise."""
    if name not in table:
        raise ConfigError(f"unknown {what} {name!r}; expected one of {', '.join(table)}")
    return table[name]


def model_type(name: str) -> ModelType:
    """The registered model type `name`; ConfigError for an unknown one."""
    return lookup(MODELS, name, "model type")


def resolve(path: str) -> Any:
    """Imports and returns the attribute a `"module:attribute"` path names."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
