"""Configuration as data: YAML files validated into typed, frozen dataclasses at the edge.

A model file (e.g. `config/bert_ner.yaml`) names a `base` file (normally `config.yaml`) whose values it
overrides key by key. After loading, command-line overrides (`key.path=value`, values parsed as YAML) and
two environment variables apply:

- `NER_GMB_PATH` replaces `data.gmb_path`;
- `NER_CONLL_DIR` replaces the directory of `data.conll_train_path`, `data.conll_validation_path` and
  `data.conll_test_path` (the file names stay);
- `NER_OOD_PATH` replaces `data.ood_path` (out-of-domain sentences for uncertainty, a CoNLL/BIO file);
- `NER_ENCODER_HANDLE` replaces `encoder.handle`.

Every problem — a missing file, an unknown key, a wrong type, a value out of range — raises `ConfigError`
naming the file and the dotted key, and saying what was expected.
"""
import dataclasses
import math
import os
import re
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import yaml

from ner import readers, registry, tagging
from ner.errors import ConfigError
from ner.registry import (DISTRIBUTE_STRATEGIES, EARLY_STOPPING_MONITORS, ENCODER_LAYER_CHOICES, KL_REDUCTIONS,
                          LABELLED_SELECTIONS, LEXICAL_TEMPLATE_SETS, LONG_SENTENCE_POLICIES, PRECISIONS,
                          PRIOR_SOURCES, RNN_CELLS, SPLIT_PROTOCOLS, WORD_POOLINGS)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "config"
DEFAULT_ENCODER_HANDLE = "saved_models/encoders/all-MiniLM-L6-v2"
ENV_OVERRIDES = {"NER_GMB_PATH": "data.gmb_path", "NER_OOD_PATH": "data.ood_path",
                 "NER_ENCODER_HANDLE": "encoder.handle"}
CONLL_DIR_VARIABLE = "NER_CONLL_DIR"
CONLL_PATH_KEYS = ("conll_train_path", "conll_validation_path", "conll_test_path")

# The choice lists are defined where they are implemented (`ner.registry`, `ner.tagging`, `ner.readers`, all
# free of TensorFlow); these names are what the config's checks read.
TAG_SCHEMES = tagging.TAG_SCHEMES
CORPORA = tuple(registry.CORPORA)
CONLL_TAG_FORMATS = readers.CONLL_SCHEMES
MODEL_TYPES = tuple(registry.MODELS)
KL_LOSSES = tuple(registry.UNLABELLED_LOSSES)


@dataclass(frozen=True)
class DataConfig:
    """Which corpus to read, where it is, and how sentences become tensors.

    `corpus` "gmb" reads the GMB CSV at `gmb_path` and splits it by the `split` section. "conll" reads
    three CoNLL column files whose parts are fixed: `conll_train_path` is the labelled part,
    `conll_validation_path` the validation part (monitored, and used for model selection), `conll_test_path`
    the test part; nothing is unlabelled. `conll_tags` says how those files write tags: "iob1" (CoNLL-2003)
    or "bio" (WNUT-17). The entity types are the ones the corpus uses.

    `max_pieces_per_word` keeps only each word's first word pieces up to that number (1 is seed 001's input,
    one piece per word); null keeps them all.
    """

    corpus: str = "gmb"
    gmb_path: str = "../shared/data/gmb/ner_dataset.csv"
    conll_train_path: str = "../shared/data/conll2003/train.txt"
    conll_validation_path: str = "../shared/data/conll2003/valid.txt"
    conll_test_path: str = "../shared/data/conll2003/test.txt"
    conll_tags: str = "iob1"
    ood_path: str = "../shared/data/wnut17/emerging.test.annotated"
    encoding: str = "latin-1"
    tag_scheme: str = "io"
    max_seq_length: int = 128
    long_sentences: str = "split"
    max_pieces_per_word: Optional[int] = None

    def problems(self) -> list:
        out = []
        if self.corpus not in CORPORA:
            out.append(("corpus", f"one of {CORPORA}", self.corpus))
        if self.conll_tags not in CONLL_TAG_FORMATS:
            out.append(("conll_tags", f"one of {CONLL_TAG_FORMATS}", self.conll_tags))
        if self.tag_scheme not in TAG_SCHEMES:
            out.append(("tag_scheme", f"one of {TAG_SCHEMES}", self.tag_scheme))
        if self.long_sentences not in LONG_SENTENCE_POLICIES:
            out.append(("long_sentences", f"one of {LONG_SENTENCE_POLICIES}", self.long_sentences))
        if not 8 <= self.max_seq_length <= 512:
            out.append(("max_seq_length", "an integer in [8, 512]", self.max_seq_length))
        if self.max_pieces_per_word is not None and self.max_pieces_per_word < 1:
            out.append(("max_pieces_per_word", "null or an integer ≥ 1", self.max_pieces_per_word))
        return out


@dataclass(frozen=True)
class SplitConfig:
    """Seeded split by sentence id (GMB): test, labelled train, validation; the rest is unlabelled train.

    The sizes are sentence counts. `fractions` [test, labelled, validation], when set, replaces them with
    those fractions of the corpus, each rounded to whole sentences (e.g. [0.1, 0.8, 0.1] for an 80/10/10
    split with nothing unlabelled).

    `labelled_selection` is how the labelled part is drawn from the sentences left after the test part:
    "random" (seeded, like the rest), or "fewer_outside", a biased sample preferring sentences with a
    smaller fraction of `O` tags (seed 001's future work); validation and unlabelled come from the rest.

    `protocol` "leak_free" (the default) is the above: disjoint parts, fixed once. "seed001" is seed 001's
    original, **leaky** protocol (`ner.seed001_protocol`), kept only to reproduce its table on its own
    terms: sentences of 48 or more words are skipped (and counted), and every pass over a part re-draws
    the parts from one pipeline reshuffled with a 2,048-sentence buffer, in batches of
    `training.batch_size`: the first `test_size` sentences are "test", the next `labelled_size`
    "labelled", the rest "unlabelled". Parts therefore overlap across passes: the model trains on test
    sentences, each semi-supervised step sees a fresh labelled batch, and each evaluation (the per-epoch
    one included) reads a fresh "test" draw. `test_size` and `labelled_size` must be multiples of the
    batch size; `validation_size`, `fractions` and `labelled_selection` do not apply.

    `added_labelled_file`, when set, names a text file of sentence ids (one a line) moved from the
    unlabelled part to the end of the labelled part: the labelled set of an active-learning round
    (`ner.preprocessor.add_labelled_from_file`; `examples/active_learning.py`).

    `mention_replacement_copies` > 0 adds that many new sentences per labelled sentence with an entity, in
    which each entity is replaced with probability `mention_replacement_rate` by another of its type from
    the labelled part (`ner.augmentation`; seeded by `seed`). They are trained on with the labelled part
    and never saved in the split, which keeps the corpus's ids; rate 0 copies the same sentences unchanged
    (the control with as many steps).
    """

    seed: int = 1
    test_size: int = 9600
    labelled_size: int = 2560
    validation_size: int = 960
    fractions: Optional[Tuple[float, ...]] = None
    labelled_selection: str = "random"
    protocol: str = "leak_free"
    added_labelled_file: Optional[str] = None
    mention_replacement_copies: int = 0
    mention_replacement_rate: float = 0.5

    def problems(self) -> list:
        out = [(name, "a positive integer", value)
               for name, value in (("test_size", self.test_size), ("labelled_size", self.labelled_size),
                                   ("validation_size", self.validation_size)) if value < 1]
        if self.protocol not in SPLIT_PROTOCOLS:
            out.append(("protocol", f"one of {SPLIT_PROTOCOLS}", self.protocol))
        elif self.protocol == "seed001":
            if self.fractions is not None:
                out.append(("fractions", "null under protocol seed001 (its parts are counted in batches)",
                            list(self.fractions)))
            if self.labelled_selection != "random":
                out.append(("labelled_selection", "random under protocol seed001 (its draws are random)",
                            self.labelled_selection))
            if self.added_labelled_file is not None:
                out.append(("added_labelled_file", "null under protocol seed001 (its draws are random)",
                            self.added_labelled_file))
            if self.mention_replacement_copies:
                out.append(("mention_replacement_copies", "0 under protocol seed001 (its labelled part is "
                                                          "re-drawn every pass)", self.mention_replacement_copies))
        if self.fractions is not None and (len(self.fractions) != 3 or any(not 0.0 < f < 1.0 for f in self.fractions)
                                           or sum(self.fractions) > 1.0 + 1e-9):
            out.append(("fractions", "null or three numbers in (0, 1) (test, labelled, validation) summing to "
                                     "at most 1", list(self.fractions)))
        if self.labelled_selection not in LABELLED_SELECTIONS:
            out.append(("labelled_selection", f"one of {LABELLED_SELECTIONS}", self.labelled_selection))
        if self.mention_replacement_copies < 0:
            out.append(("mention_replacement_copies", "0 (off) or a positive integer", self.mention_replacement_copies))
        if not 0.0 <= self.mention_replacement_rate <= 1.0:
            out.append(("mention_replacement_rate", "a probability in [0, 1]", self.mention_replacement_rate))
        if self.added_labelled_file is not None and not self.added_labelled_file.strip():
            out.append(("added_labelled_file", "null or the path of a file of sentence ids", self.added_labelled_file))
        return out

    def sizes(self, num_sentences: int) -> Tuple[int, int, int]:
        """(test, labelled, validation) sentence counts for a corpus of `num_sentences`."""
        if self.fractions is None:
            return self.test_size, self.labelled_size, self.validation_size
        counts = [int(round(f * num_sentences)) for f in self.fractions]
        return counts[0], counts[1], min(counts[2], num_sentences - counts[0] - counts[1])


@dataclass(frozen=True)
class EncoderConfig:
    """A TF-Hub BERT encoder: a local SavedModel directory or a tfhub.dev / Kaggle handle."""

    handle: str = DEFAULT_ENCODER_HANDLE
    trainable: bool = False

    def problems(self) -> list:
        return [("handle", "a non-empty string", self.handle)] if not self.handle.strip() else []


@dataclass(frozen=True)
class HeadConfig:
    """The MLP head shared by the baseline and BERT NER models.

    `l2` is the L2 weight decay on the head's Dense kernels (`l2 · Σ w²` per kernel, added to the training
    loss; 0: none).
    """

    hidden_units: Tuple[int, ...] = (256, 128, 64)
    latent_dim: int = 32
    dropout_rate: float = 0.1
    l2: float = 0.0

    def problems(self) -> list:
        out = []
        if not self.hidden_units or any(units < 1 for units in self.hidden_units):
            out.append(("hidden_units", "a non-empty list of positive integers", list(self.hidden_units)))
        if self.latent_dim < 1:
            out.append(("latent_dim", "a positive integer", self.latent_dim))
        if not 0.0 <= self.dropout_rate < 1.0:
            out.append(("dropout_rate", "a number in [0, 1)", self.dropout_rate))
        if not self.l2 >= 0.0:
            out.append(("l2", "a non-negative number", self.l2))
        return out


@dataclass(frozen=True)
class RnnConfig:
    """The recurrent layers of the bilstm, gru, bert_gru and bert_bilstm_crf models.

    `cell` is "lstm" or "gru"; null takes the cell the model type names (bilstm and bert_bilstm_crf:
    lstm; gru and bert_gru: gru). `units` is per direction.
    """

    cell: Optional[str] = None
    units: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    dropout_rate: float = 0.1

    def problems(self) -> list:
        out = []
        if self.cell is not None and self.cell not in RNN_CELLS:
            out.append(("cell", f"one of {RNN_CELLS} or null", self.cell))
        if self.units < 1:
            out.append(("units", "a positive integer", self.units))
        if self.num_layers < 1:
            out.append(("num_layers", "a positive integer", self.num_layers))
        if not 0.0 <= self.dropout_rate < 1.0:
            out.append(("dropout_rate", "a number in [0, 1)", self.dropout_rate))
        return out


@dataclass(frozen=True)
class ModelConfig:
    """Which model to build; `embedding_dim` is used by the models without an encoder (ner_baseline,
    bilstm, gru), `encoder_layers` (the last layer, a learned mix of all, or all side by side) by the ones
    with one, `word_pooling` (a word's vector: its first piece's, or the mean over its pieces; `mean` in
    the model types that take it, bert_crf) by those too, `rnn` by the recurrent ones, `crf_constraints`
    (forbid transitions the tag scheme does not allow when decoding) by the CRF models (bert_crf,
    bert_bilstm_crf). `casing_dim` > 0 gives every model an embedding of each word's casing class
    (`ner.casing`) beside the encoder's vectors; 0 leaves it out.
    `lexical_features` adds learned scores of the word's hashed lexical features (`ner.lexical`) to a CRF
    model's emission scores; `lexical_templates` chooses them: `crf`, the feature CRF's, or `extended`, with
    prefixes, words two away and word bigrams (`ner.lexical.TEMPLATE_SETS`). `char_cnn_filters` > 0
    appends to the encoder's vectors (with casing) the max-pooled features of that many filters of a
    character CNN over each word (`ner.chars`, `ner.models.word_shape.CharCNN`) in the model types that take
    one (bert_ner, bert_crf); 0 leaves it out. `word_rnn` puts the `rnn` section's recurrent stack over the
    words between the encoder's vectors (with casing) and the head of a model type that takes one
    (bert_crf), so that it also trains on cached features."""

    type: str = "bert_ner"
    embedding_dim: int = 784
    encoder_layers: str = "last"
    word_pooling: str = "first"
    head: HeadConfig = field(default_factory=HeadConfig)
    rnn: RnnConfig = field(default_factory=RnnConfig)
    crf_constraints: bool = True
    casing_dim: int = 0
    lexical_features: bool = False
    lexical_templates: str = "crf"
    char_cnn_filters: int = 0
    word_rnn: bool = False

    @property
    def lexical_template_set(self) -> Optional[str]:
        """The lexical features the model reads (a key of `ner.lexical.TEMPLATE_SETS`), None without them."""
        return self.lexical_templates if self.lexical_features else None

    @property
    def reads_char_ids(self) -> bool:
        """Whether the model reads the words' character ids (`ner.chars`): it has a character CNN."""
        return self.char_cnn_filters > 0

    def problems(self) -> list:
        out = []
        if self.type not in MODEL_TYPES:
            out.append(("type", f"one of {MODEL_TYPES}", self.type))
        if self.embedding_dim < 1:
            out.append(("embedding_dim", "a positive integer", self.embedding_dim))
        if self.lexical_features and self.type in MODEL_TYPES and not registry.model_type(self.type).owns_loss:
            out.append(("lexical_features", "false: lexical features add to a CRF's emission scores, so they "
                        f"need a CRF model type ({', '.join(t for t in MODEL_TYPES if registry.model_type(t).owns_loss)})",
                        self.lexical_features))
        if self.word_rnn and self.type in MODEL_TYPES and not registry.model_type(self.type).takes_word_rnn:
            out.append(("word_rnn", "false: a recurrent stack over the words goes under the head of "
                        f"{', '.join(t for t in MODEL_TYPES if registry.model_type(t).takes_word_rnn)}",
                        self.word_rnn))
        if self.casing_dim < 0:
            out.append(("casing_dim", "0 (no casing features) or a positive integer", self.casing_dim))
        if self.char_cnn_filters < 0:
            out.append(("char_cnn_filters", "0 (no character CNN) or a positive integer", self.char_cnn_filters))
        elif self.char_cnn_filters and self.type in MODEL_TYPES and not registry.model_type(self.type).takes_char_cnn:
            out.append(("char_cnn_filters", "0: a character CNN goes beside the encoder's vectors of "
                        f"{', '.join(t for t in MODEL_TYPES if registry.model_type(t).takes_char_cnn)}",
                        self.char_cnn_filters))
        if self.encoder_layers not in ENCODER_LAYER_CHOICES:
            out.append(("encoder_layers", f"one of {ENCODER_LAYER_CHOICES}", self.encoder_layers))
        if self.word_pooling not in WORD_POOLINGS:
            out.append(("word_pooling", f"one of {WORD_POOLINGS}", self.word_pooling))
        elif (self.word_pooling != "first" and self.type in MODEL_TYPES
              and not registry.model_type(self.type).takes_word_pooling):
            out.append(("word_pooling", "first: averaging a word's pieces needs a model type that reads where words "
                        f"start ({', '.join(t for t in MODEL_TYPES if registry.model_type(t).takes_word_pooling)})",
                        self.word_pooling))
        if self.lexical_templates not in LEXICAL_TEMPLATE_SETS:
            out.append(("lexical_templates", f"one of {LEXICAL_TEMPLATE_SETS}", self.lexical_templates))
        return out


@dataclass(frozen=True)
class TrainingConfig:
    """Supervised training: batches, epochs and the Adam learning rate.

    With `feature_cache` (and a frozen encoder) the encoder runs once per sentence and the head trains
    on its cached word vectors (`ner.feature_cache`); a fine-tuned encoder always runs live.

    `clip_norm` clips the global norm of each step's gradients (null: no clipping). A fine-tuned
    encoder's variables train at `encoder_learning_rate` when it is set, warming up linearly from 0 over
    the first `encoder_warmup_fraction` of all steps and then decaying linearly to 0 at the last step;
    the other variables keep `learning_rate`. Null: every variable trains at `learning_rate`.

    `group_by_length` fills each shuffled training batch with rows of similar length, so that less of
    it is padding (`ner.preprocessor.length_grouped_batches`); worth it for a fine-tuned encoder.
    `jit_compile` compiles the training steps with XLA (see `benchmarks/benchmark_jit.py` for whether it
    pays off).

    `length_buckets` (e.g. [16, 32, 64, 128], increasing; the last at least `data.max_seq_length`) pads
    every batch (training, evaluation and prediction, live or cached features) up to the smallest width
    that holds its longest row, so that XLA and the kernels see a few shapes only; null: each batch is
    trimmed to its own longest row.

    `precision` is the Keras dtype policy the model is built under (`ner.precision`): "float32", or
    "mixed_bfloat16" / "mixed_float16" (16-bit compute, float32 variables, softmax, CRF and loss; float16
    scales the loss, and so cannot be combined with `encoder_learning_rate`'s second optimiser).

    `distribute` trains (supervised; the semi-supervised stage runs on one device) under a
    `tf.distribute` strategy (`ner.distribute`): "none", "mirrored" (this host's GPUs) or "multi_worker"
    (hosts from `TF_CONFIG`). `batch_size` is then the global batch, split between the replicas.

    `early_stopping_patience` (null: off) stops supervised training once that many epochs in a row have
    not improved `early_stopping_monitor` on the validation part ("val_loss": lower is better;
    "val_accuracy", "val_accuracy_without_o": higher is better; the earliest of equal values counts), and
    makes the best epoch's weights the run's final weights, whether it stopped early or ran all `epochs`.
    It selects the model on the validation part, so it needs one: not under `split.protocol: seed001`,
    whose monitored part is a draw of the test part. The semi-supervised stage runs its `pairs` without it.

    `logit_adjustment` is τ of the logit-adjusted loss (Menon et al., ICLR 2021), for rare classes: the
    supervised loss (training and validation) reads each word's scores plus τ · log of the labelled
    words' label distribution, so a frequent label must win by a wider margin; evaluation and prediction
    read the plain scores. 0 (the default) is the plain loss; Menon et al. use τ = 1.

    `init_run` (null: off) starts supervised training from another run's final weights instead of a fresh
    head: a run (name under `paths.saved_models_dir`, or a directory) with the same data and model sections
    and encoder handle, whose split this run reuses. Its encoder may have been frozen: a head trained on
    cached features, then fine-tuned with the encoder, is linear probing then fine-tuning (LP-FT, Kumar et
    al., ICLR 2022). The optimiser and the schedule start afresh; `--resume` continues from this run's own
    checkpoints.
    """

    batch_size: int = 128
    epochs: int = 20
    learning_rate: float = 1e-3
    seed: int = 1
    clip_norm: Optional[float] = None
    encoder_learning_rate: Optional[float] = None
    encoder_warmup_fraction: float = 0.1
    feature_cache: bool = True
    jit_compile: bool = False
    group_by_length: bool = False
    length_buckets: Optional[Tuple[int, ...]] = None
    precision: str = "float32"
    distribute: str = "none"
    early_stopping_patience: Optional[int] = None
    early_stopping_monitor: str = "val_loss"
    logit_adjustment: float = 0.0
    init_run: Optional[str] = None

    def problems(self) -> list:
        out = []
        if self.init_run is not None and not self.init_run.strip():
            out.append(("init_run", "null or the name or directory of a trained run", self.init_run))
        if not 0.0 <= self.logit_adjustment < float("inf"):
            out.append(("logit_adjustment", "a non-negative number (τ; 0: the plain loss)", self.logit_adjustment))
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            out.append(("early_stopping_patience", "null (no early stopping) or a positive integer (epochs)",
                        self.early_stopping_patience))
        if self.early_stopping_monitor not in EARLY_STOPPING_MONITORS:
            out.append(("early_stopping_monitor", f"one of {tuple(EARLY_STOPPING_MONITORS)}",
                        self.early_stopping_monitor))
        if self.distribute not in DISTRIBUTE_STRATEGIES:
            out.append(("distribute", f"one of {DISTRIBUTE_STRATEGIES}", self.distribute))
        if self.precision not in PRECISIONS:
            out.append(("precision", f"one of {PRECISIONS}", self.precision))
        elif self.precision == "mixed_float16" and self.encoder_learning_rate is not None:
            out.append(("precision", "float32 or mixed_bfloat16 with an encoder_learning_rate (one loss scale "
                                     "cannot serve two optimisers)", self.precision))
        buckets = self.length_buckets
        if buckets is not None and (not buckets or buckets[0] < 1
                                    or any(a >= b for a, b in zip(buckets, buckets[1:]))):
            out.append(("length_buckets", "null or increasing positive widths, e.g. [16, 32, 64, 128]",
                        list(buckets)))
        if self.batch_size < 1:
            out.append(("batch_size", "a positive integer", self.batch_size))
        if self.epochs < 1:
            out.append(("epochs", "a positive integer", self.epochs))
        if not 0.0 < self.learning_rate < 1.0:
            out.append(("learning_rate", "a number in (0, 1)", self.learning_rate))
        if self.clip_norm is not None and not self.clip_norm > 0.0:
            out.append(("clip_norm", "a positive number or null", self.clip_norm))
        if self.encoder_learning_rate is not None and not 0.0 < self.encoder_learning_rate < 1.0:
            out.append(("encoder_learning_rate", "a number in (0, 1) or null", self.encoder_learning_rate))
        if not 0.0 <= self.encoder_warmup_fraction < 1.0:
            out.append(("encoder_warmup_fraction", "a number in [0, 1)", self.encoder_warmup_fraction))
        return out


@dataclass(frozen=True)
class UncertaintyConfig:
    """Monte-Carlo dropout at prediction time (`ner.uncertainty`): T passes with dropout on, averaged.

    `mc_dropout_rate` is the head's dropout rate while sampling; null (the default) samples at the rate
    the head was trained with (`model.head.dropout_rate`), as variational dropout assumes, and a number
    overrides it (`sampling_rate`). With `encoder_dropout` the encoder's own dropout (at the rate its
    SavedModel was exported with) is sampled too, which costs T encoder passes instead of one; BERT
    models only.
    """

    mc_samples: int = 20
    mc_dropout_rate: Optional[float] = None
    encoder_dropout: bool = False

    def sampling_rate(self, training_rate: float) -> float:
        """The head's dropout rate while sampling: `mc_dropout_rate`, or the head's `training_rate` when null."""
        return training_rate if self.mc_dropout_rate is None else self.mc_dropout_rate

    def problems(self) -> list:
        out = []
        if self.mc_samples < 1:
            out.append(("mc_samples", "a positive integer", self.mc_samples))
        if self.mc_dropout_rate is not None and not 0.0 <= self.mc_dropout_rate < 1.0:
            out.append(("mc_dropout_rate", "null (the training rate) or a number in [0, 1)", self.mc_dropout_rate))
        return out



@dataclass(frozen=True)
class SelfTrainingConfig:
    """Self-training with uncertainty (`ner.self_training`; after UST, Mukherjee & Awadallah 2020).

    Each of `rounds` rounds, the current model (first the stage's `init_run`: the teacher) tags the first
    `pool_size` sentences of the unlabelled part; the `keep_fraction` it is most confident of, by
    `confidence`, become the unlabelled batches of the round's `pairs / rounds` pairs, learnt with the
    model's own loss (cross-entropy, or the CRF's likelihood of the Viterbi path).

    `student`: "continue" trains the teacher itself on, "reinitialise" trains a student from the model's
    initial weights each round (classic self-training and Noisy Student, Xie et al. 2020); a new student
    needs about as many pairs as the teacher had supervised steps.

    `confidence`: "marginal", a sentence's smallest word probability of its predicted label (one pass);
    "mc_dropout", one minus its largest word mutual information (BALD) over `mc_samples` passes with the
    head's dropout on at its training rate. `control` keeps the schedule and puts labelled batches where
    the pseudo-labelled ones would be: the same extra steps without the unlabelled data.

    `teachers`: other trained CRF runs of the same split and labels (names under `paths.saved_models_dir`
    or run directories; any encoder, features and head) that tag the pool together with the current model,
    as one CRF ensemble (`ner.crf_ensemble`): the pseudo-labels are the Viterbi path of the members' mean
    potentials, and the "marginal" confidence reads that CRF's marginals. The student stays one model.
    """

    rounds: int = 2
    pool_size: int = 10000
    keep_fraction: float = 0.5
    confidence: str = "marginal"
    mc_samples: int = 10
    student: str = "continue"
    control: bool = False
    teachers: Tuple[str, ...] = ()

    def problems(self) -> list:
        out = []
        if self.teachers and (self.control or self.confidence != "marginal"):
            out.append(("teachers", "empty unless confidence is marginal and control is false (a CRF ensemble's "
                        "confidence is its marginals; the control tags nothing)", list(self.teachers)))
        for name, value in (("rounds", self.rounds), ("pool_size", self.pool_size), ("mc_samples", self.mc_samples)):
            if value < 1:
                out.append((name, "a positive integer", value))
        if not 0.0 < self.keep_fraction <= 1.0:
            out.append(("keep_fraction", "a number in (0, 1]", self.keep_fraction))
        if self.confidence not in registry.PSEUDO_LABEL_CONFIDENCES:
            out.append(("confidence", f"one of {registry.PSEUDO_LABEL_CONFIDENCES}", self.confidence))
        if self.student not in registry.SELF_TRAINING_STUDENTS:
            out.append(("student", f"one of {registry.SELF_TRAINING_STUDENTS}", self.student))
        return out


@dataclass(frozen=True)
class SemiSupervisedConfig:
    """The semi-supervised stage, starting from a trained supervised run: alternating steps on unlabelled
    batches and cross-entropy steps on labelled ones.

    The unlabelled steps minimise `losses` (`ner.losses`: KL terms, summed with `loss_weights`) and, with
    `self_training`, the model's own loss on the teacher's pseudo-labels (`SelfTrainingConfig`); at least
    one of the two. `prior` is the target of the data-distribution KL; null takes it from `prior_source`:
    "labelled", the label distribution of the labelled split, computed, or "seed001", seed 001's
    hard-coded whole-corpus distribution (io tags of GMB only); either is saved with the run. Seed 001's
    schedule: 40 pairs for data-distribution KL, 80 for confidence KL, evaluated every 10, both learning
    rates 1e-3.

    Seed 001's KL details, each a switch (`ner.losses.KLOptions`; the defaults are this package's, seed
    001's value in brackets): `kl_special_tokens` false [true], whether [CLS] and [SEP] enter the KL masks
    beside the words (needs live encoder features: `training.feature_cache: false`);
    `confidence_stop_gradient` true [false], whether the confidence KL's target is held fixed;
    `confidence_reduction` "mean" ["sum"] over the masked positions.
    """

    init_run: str = "bert_ner"
    losses: Tuple[str, ...] = ("data_distribution",)
    loss_weights: Tuple[float, ...] = (1.0,)
    pairs: int = 40
    evaluate_every: int = 10
    learning_rate: float = 1e-3
    unlabelled_learning_rate: float = 1e-3
    prior: Optional[Tuple[float, ...]] = None
    prior_source: str = "labelled"
    kl_special_tokens: bool = False
    confidence_stop_gradient: bool = True
    confidence_reduction: str = "mean"
    self_training: Optional[SelfTrainingConfig] = None

    def problems(self) -> list:
        out = []
        if any(loss not in KL_LOSSES for loss in self.losses) or not (self.losses or self.self_training):
            out.append(("losses", f"a list of {KL_LOSSES}, non-empty without self_training", list(self.losses)))
        if len(self.loss_weights) != len(self.losses) or any(w < 0 for w in self.loss_weights):
            out.append(("loss_weights", "one non-negative weight per loss", list(self.loss_weights)))
        for name, value in (("pairs", self.pairs), ("evaluate_every", self.evaluate_every)):
            if value < 1:
                out.append((name, "a positive integer", value))
        for name, value in (("learning_rate", self.learning_rate),
                            ("unlabelled_learning_rate", self.unlabelled_learning_rate)):
            if not 0.0 < value < 1.0:
                out.append((name, "a number in (0, 1)", value))
        if self.prior is not None and (any(p < 0 for p in self.prior) or abs(sum(self.prior) - 1.0) > 1e-6):
            out.append(("prior", "null or non-negative numbers summing to 1", list(self.prior)))
        if self.prior_source not in PRIOR_SOURCES:
            out.append(("prior_source", f"one of {PRIOR_SOURCES}", self.prior_source))
        elif self.prior is not None and self.prior_source != "labelled":
            out.append(("prior_source", "labelled (the default) when a prior is given", self.prior_source))
        if self.confidence_reduction not in KL_REDUCTIONS:
            out.append(("confidence_reduction", f"one of {KL_REDUCTIONS}", self.confidence_reduction))
        if self.self_training is not None and self.pairs < self.self_training.rounds:
            out.append(("pairs", f"at least self_training.rounds ({self.self_training.rounds})", self.pairs))
        return out


@dataclass(frozen=True)
class PathsConfig:
    """Where runs (weights, checkpoints) and results (tables, plots) are written."""

    saved_models_dir: str = "saved_models"
    results_dir: str = "results"
    feature_cache_dir: str = "saved_models/feature_cache"


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs; `run_name` names its directories."""

    run_name: str = "bert_ner"
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    semi_supervised: Optional[SemiSupervisedConfig] = None

    def problems(self) -> list:
        valid = self.run_name and all(c.isalnum() or c in "-_." for c in self.run_name)
        out = [] if valid else [("run_name", "letters, digits, '-', '_' or '.'", self.run_name)]
        if (self.uncertainty.encoder_dropout and self.model.type in registry.MODELS
                and not registry.model_type(self.model.type).has_encoder):
            out.append(("uncertainty.encoder_dropout",
                        f"false for model.type {self.model.type} (it has no encoder)", True))
        buckets = self.training.length_buckets
        if buckets and buckets[-1] < self.data.max_seq_length:
            out.append(("training.length_buckets", f"widths up to at least data.max_seq_length "
                                                   f"({self.data.max_seq_length})", list(buckets)))
        if self.training.init_run is not None and self.semi_supervised is not None:
            out.append(("training.init_run", "null with a semi_supervised section (the stage starts from "
                                             "semi_supervised.init_run)", self.training.init_run))
        return out + self._seed001_problems()

    def _seed001_problems(self) -> list:
        """What seed 001's protocol and KL switches need of the other sections."""
        out, stage, batch = [], self.semi_supervised, self.training.batch_size
        if self.split.protocol == "seed001":
            for name, size in (("test_size", self.split.test_size), ("labelled_size", self.split.labelled_size)):
                if size % batch:
                    out.append((f"split.{name}", f"a multiple of training.batch_size ({batch}) under protocol "
                                                 "seed001 (its parts are whole batches)", size))
            if self.training.group_by_length:
                out.append(("training.group_by_length", "false under split.protocol seed001 (its batches are "
                                                        "the draw's order)", True))
            if self.training.early_stopping_patience is not None:
                out.append(("training.early_stopping_patience", "null under split.protocol seed001 (it has no "
                                                                "validation part: training monitors a draw of the "
                                                                "test part)", self.training.early_stopping_patience))
            if stage is not None and stage.self_training is not None:
                out.append(("semi_supervised.self_training", "null under split.protocol seed001 (the protocol "
                                                             "has no fixed unlabelled pool)", "a section"))
        if stage is not None and stage.prior_source == "seed001" and self.data.tag_scheme != "io":
            out.append(("semi_supervised.prior_source", "labelled unless data.tag_scheme is io (seed 001's "
                                                        "prior is per entity type)", stage.prior_source))
        cached = (self.training.feature_cache and not self.encoder.trainable and self.model.type in registry.MODELS
                  and registry.model_type(self.model.type).can_train_on_cached_features)
        if stage is not None and stage.kl_special_tokens and cached:
            out.append(("semi_supervised.kl_special_tokens", "false with cached features (they hold words only, no "
                                                             "[CLS] or [SEP]); set training.feature_cache: false",
                        True))
        return out

    def run_dir(self) -> Path:
        """`saved_models/<run name>/`: weights, checkpoints, config and split of this run."""
        return resolve_path(self.paths.saved_models_dir) / self.run_name

    def results_dir(self) -> Path:
        """`results/<run name>/`: tables and plots of this run."""
        return resolve_path(self.paths.results_dir) / self.run_name

    def to_dict(self) -> dict:
        return _to_plain(dataclasses.asdict(self))


def resolve_path(path: str) -> Path:
    """A relative path is taken from the current directory if it exists there, else from the repo root."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return REPO_ROOT / candidate


def member_environ() -> Dict[str, str]:
    """The environment for reading a run that joins another run's CRF ensemble: `os.environ` without the
    variables that replace `encoder.handle`, so that the member keeps its own encoder."""
    return {name: value for name, value in os.environ.items() if ENV_OVERRIDES.get(name) != "encoder.handle"}


def load_config(path: os.PathLike, overrides: Sequence[str] = (),
                environ: Optional[Mapping[str, str]] = None) -> ExperimentConfig:
    """Loads a model YAML file (merged over its `base`), applies overrides, and validates it.

    Args:
      path: the model's YAML file, e.g. `config/bert_ner.yaml`.
      overrides: `dotted.key=value` strings; values are parsed as YAML (`training.epochs=2`).
      environ: the environment to read `NER_*` overrides from (default `os.environ`).
    """
    path = resolve_path(str(path))
    raw = _read_with_base(path, seen=())
    expected = "expected key.path=value, e.g. training.epochs=2"
    for item in overrides:
        key, sep, value = item.partition("=")
        source = f"override '{item}'"
        if not sep or not key.strip():
            raise ConfigError(f"{source}: {expected}")
        _set_dotted(raw, key.strip(), _parse_yaml(value, source, f"{expected} with a YAML value"), source=source)
    environ = os.environ if environ is None else environ
    for variable, key in ENV_OVERRIDES.items():
        if environ.get(variable):
            _set_dotted(raw, key, environ[variable], source=f"environment variable {variable}")
    if environ.get(CONLL_DIR_VARIABLE):
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        for key in CONLL_PATH_KEYS:
            name = Path(str(data.get(key, getattr(DataConfig, key)))).name
            _set_dotted(raw, f"data.{key}", str(Path(environ[CONLL_DIR_VARIABLE]) / name),
                        source=f"environment variable {CONLL_DIR_VARIABLE}")
    source = str(path) + (f" with overrides {', '.join(overrides)}" if overrides else "")
    return build_dataclass(ExperimentConfig, raw, source=source)


def save_config(config: ExperimentConfig, path: os.PathLike) -> None:
    """Writes the fully resolved config (atomically) so a run can be repeated or evaluated later."""
    from ner.utils import write_text_atomic

    write_text_atomic(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def build_dataclass(cls, values: Any, source: str, prefix: str = ""):
    """Builds dataclass `cls` from a mapping, rejecting unknown keys and wrong types by dotted name."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: '{where}' must be a mapping of keys to values, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields), key=str)  # YAML keys may be numbers, dates, null
    if unknown:
        raise ConfigError(f"{source}: unknown key '{prefix}{unknown[0]}'; "
                          f"expected one of: {', '.join(prefix + name for name in fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, source, f"{prefix}{name}") for name, value in values.items()}
    instance = cls(**kwargs)
    for key, expected, got in instance.problems() if hasattr(instance, "problems") else ():
        raise ConfigError(f"{source}: key '{prefix}{key}' must be {expected}, got {got!r}")
    return instance


_EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _coerce(hint, value, source: str, key: str):
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, source, prefix=f"{key}.")
    origin = typing.get_origin(hint)
    if origin is typing.Union:  # Optional[X]: null, or a value of type X
        if value is None:
            return None
        (hint,) = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _coerce(hint, value, source, key)
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{source}: key '{key}' must be a list of {item_type.__name__}, got {value!r}")
        return tuple(_coerce(item_type, item, source, f"{key}[{i}]") for i, item in enumerate(value))
    if hint is float and isinstance(value, str) and _EXPONENT_NUMBER.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 (PyYAML) reads 5e-5 as a string: it wants 5.0e-5
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > sys.float_info.max:
            raise ConfigError(f"{source}: key '{key}' must be a number, got an integer of {len(str(value))} digits")
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{source}: key '{key}' must be a finite number, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{source}: key '{key}' must be true or false, got {value!r}")
    if hint is int and isinstance(value, bool) or not isinstance(value, hint):
        raise ConfigError(f"{source}: key '{key}' must be of type {hint.__name__}, got {value!r}")
    return value


def _read_with_base(path: Path, seen: Tuple[Path, ...]) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    expected = "expected a YAML config file (a mapping of keys to values, e.g. base: config.yaml)"
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                          f"{error.start}); {expected}") from None
    raw = _parse_yaml(text, str(path), expected)
    if raw is None:
        raise ConfigError(f"{path} is empty; {expected}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values at the top level")
    base = raw.pop("base", None)
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ConfigError(f"{path}: key 'base' must be the file name of the base config, e.g. config.yaml, "
                          f"got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in seen:
        raise ConfigError(f"{path}: key 'base' makes a cycle through {base_path}")
    merged = _read_with_base(base_path, seen + (path.resolve(),))
    _deep_update(merged, raw)
    return merged


def _parse_yaml(text: str, source: str, expected: str):
    """`yaml.safe_load(text)`; ConfigError naming `source`, the place and the problem, then `expected`, for
    text that is not YAML or holds a value its explicit tag cannot take (`!!int 1.5`, `!!timestamp x`)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{source}{_yaml_error_place(error)}: not valid YAML ({problem}); {expected}") from None
    except (ValueError, TypeError, AttributeError, OverflowError) as error:  # from PyYAML's constructors
        raise ConfigError(f"{source}: not valid YAML (a value its tag cannot take: {error}); {expected}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply to read; {expected}") from None


def _yaml_error_place(error: yaml.YAMLError) -> str:
    """Where in its file a YAML error is: " line L column C" (1-based), " position P", or ""."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        return f" line {mark.line + 1} column {mark.column + 1}"
    position = getattr(error, "position", None)
    return "" if position is None else f" position {position}"


def _deep_update(target: dict, update: Mapping) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = value


def _set_dotted(raw: dict, dotted: str, value, source: str) -> None:
    *parents, last = dotted.split(".")
    node = raw
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: '{part}' in '{dotted}' is not a section")
        node = child
    node[last] = value


def _to_plain(value):
    if isinstance(value, dict):
        return {key: _to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_plain(item) for item in value]
    return value
