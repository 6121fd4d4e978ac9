"""A serving SavedModel of a trained run: sentences in, tags and scores out, without this package's code.

    ner export --run bert_ner --output exported/bert_ner

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops of the tokenizer inside the graph)
    serve = tf.saved_model.load("exported/bert_ner").signatures["serving_default"]
    out = serve(sentences=tf.constant(["John Smith flew to London on Monday ."]))

The signature `serving_default` takes `sentences`, tf.string [B]: one sentence per string, already split
into words that are separated by whitespace (for raw text, `" ".join` the words of `ner.text.tokenize`).
Inside the graph: words → casing classes (`ner.casing`, the same regular expressions as the featurizer),
lexical feature ids where the model uses them (`ner.lexical`, the featurizer's own function) and word pieces (tensorflow-text `BertTokenizer` on the encoder's vocab file,
exported as an asset, lower-cased as the encoder was; a word without pieces becomes [UNK], a word longer
than a row, or than `data.max_pieces_per_word`, keeps its first pieces) → rows of at most `data.max_seq_length` pieces with [CLS] and [SEP],
a long sentence cut at word boundaries into several rows as `WordPieceFeaturizer` does → the model with
dropout off → at each word's first piece, the argmax label (the Viterbi path for a CRF model) and the max
probability → the entity spans of each sentence's labels, read as `ner predict` reads them (IOB2,
`LabelMap.to_bio`), and each span's confidence. It returns:

    words        [B, W] string   the words; W is the most words of a sentence in the batch, padded with ""
    tags         [B, W] string   each word's label in the run's tag scheme ("O", "geo", ... for IO runs)
    scores       [B, W] float32  the probability of each word's tag (`ner predict`'s word confidence without
                                 MC dropout; for a CRF model, the marginal probability of the Viterbi tag)
    span_scores  [B, W] float32  the confidence of the entity that holds the word, the same on each of its
                                 words: `ner predict`'s entity confidence without MC dropout. For a CRF
                                 model, the marginal probability of the exact span and type under the CRF
                                 of the word's row (`ner.layers.crf.crf_span_marginals`); for a softmax
                                 model, and for a span cut between two rows of a long sentence, the mean
                                 of its words' `scores`. A word outside every entity ("O") is a span of its
                                 own: its `scores` value (under a CRF, its marginal p(O)).
    num_words    [B] int64       how many of the W positions are words

Padding positions hold "" and 0. Loading it needs TensorFlow and tensorflow-text, not this package.

An ensemble of CRF runs (`ner export --run A --ensemble B ...`, `ner.load(A, ensemble=[B, ...])`) exports as
one SavedModel with the same signature: every member's tokenizer (its own vocab file, casing, lexical and
character features) and weights, their word emission and CRF scores averaged, and each sentence decoded
whole as one CRF (`EnsembleServingModule`), so `scores` and `span_scores` are that CRF's marginals and span
marginals, as `ner predict --ensemble` gives them.
"""
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

from ner.api import Tagger
from ner.casing import WORD_CASING, casing_ids_in_graph
from ner.chars import CHAR_IDS, char_ids_in_graph
from ner.lexical import LEXICAL_IDS, lexical_ids_in_graph
from ner.encoders.hub_encoder import EncoderVocab
from ner.errors import NerError
from ner.layers.crf import CrfParameters, crf_marginals, crf_span_marginals, crf_viterbi, span_starts
from ner.models.crf_output import CrfOutput
from ner.registry import model_type
from ner.tagging import FIRST_PIECE_MASK, LabelMap, SpanReading
from ner.utils import PathLike, atomic_path

SIGNATURE = "serving_default"


class PieceFeaturizer(tf.Module):
    """One model's featurizer inside the graph: words → rows of word pieces and the features the model reads,
    as `WordPieceFeaturizer` makes them for `predict` (module docstring).

    Args:
      vocab: the model's encoder vocabulary (vocab file and lower-casing).
      max_seq_length: word pieces per row, [CLS] and [SEP] included.
      first_piece_mask: whether the model reads the `first_piece_mask` feature (the CRF taggers).
      lexical_templates: the lexical features the model reads (a set of `ner.lexical.TEMPLATE_SETS`); None: none.
      max_pieces_per_word: the most word pieces each word keeps (`data.max_pieces_per_word`); None: all.
      char_features: whether the model reads the words' character ids (`ner.chars`).
    """

    def __init__(self, vocab: EncoderVocab, max_seq_length: int, first_piece_mask: bool,
                 lexical_templates: Optional[str] = None, max_pieces_per_word: Optional[int] = None,
                 char_features: bool = False):
        super().__init__(name="piece_featurizer")
        self.vocab_file = tf.saved_model.Asset(str(vocab.vocab_path))
        self.table = tf.lookup.StaticVocabularyTable(
            tf.lookup.TextFileInitializer(self.vocab_file, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                          tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER),
            num_oov_buckets=1)
        self.tokenizer = tf_text.BertTokenizer(self.table, token_out_type=tf.int64, unknown_token="[UNK]",
                                               lower_case=vocab.do_lower_case)
        self.cls_id, self.sep_id, self.unk_id = (int(self.table.lookup(tf.constant(token)))
                                                 for token in ("[CLS]", "[SEP]", "[UNK]"))
        self.budget = max_seq_length - 2  # pieces per row besides [CLS] and [SEP]
        self.pieces_per_word = self.budget if max_pieces_per_word is None else min(self.budget, max_pieces_per_word)
        self.first_piece_mask = first_piece_mask
        self.lexical_templates = lexical_templates
        self.char_features = char_features

    @classmethod
    def of_tagger(cls, tagger: Tagger) -> "PieceFeaturizer":
        """The featurizer of a loaded run's model, from its config."""
        config = tagger.config
        return cls(tagger.vocab, config.data.max_seq_length, model_type(config.model.type).reads_first_piece_mask,
                   lexical_templates=config.model.lexical_template_set,
                   max_pieces_per_word=config.data.max_pieces_per_word, char_features=config.model.reads_char_ids)

    def __call__(self, words: tf.RaggedTensor) -> Tuple[Dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """`(features, first_piece, row_of_word)` for the sentences' words [B, (W)] string (N words in all):
        the model's features {name: [R, T, ...]} over R rows, `first_piece` [R, T] int32 (1 on each word's
        first piece) and `row_of_word` [N] int64, the row each word went to."""
        num_words = words.row_lengths()  # [B]
        pieces = self.tokenizer.tokenize(words.flat_values).merge_dims(1, 2)  # [N, (P)] over all N words
        no_pieces = tf.cast(tf.equal(pieces.row_lengths(), 0), tf.int64)  # [N]
        unknown = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(no_pieces)], tf.constant(self.unk_id, tf.int64)), no_pieces)  # [N, (0 or 1)]
        pieces = tf.concat([pieces, unknown], axis=1)[:, :self.pieces_per_word]  # [N, (P)], 1 <= P <= budget
        counts = pieces.row_lengths()  # [N]

        sentence_of_word = words.value_rowids()  # [N]
        first_word = tf.equal(tf.ragged.range(num_words).flat_values, 0)  # [N]
        row_in_sentence = _pack_rows(counts, first_word, self.budget)  # [N]
        # A sentence without words still gets one row ([CLS] [SEP]), as in WordPieceFeaturizer.
        rows_per_sentence = tf.maximum(
            tf.math.unsorted_segment_max(row_in_sentence, sentence_of_word, words.nrows()), 0) + 1  # [B]
        row_of_word = tf.gather(tf.cumsum(rows_per_sentence, exclusive=True), sentence_of_word) + row_in_sentence
        num_rows = tf.reduce_sum(rows_per_sentence)

        def rows(values: tf.RaggedTensor, first: int, last: int) -> tf.Tensor:
            """Per-word values [N, (P), ...] as rows [R, T, ...] (T: the longest row + 2), each between a
            `first` and a `last` column ([CLS] and [SEP] for the ids), padded with 0."""
            by_row = tf.RaggedTensor.from_value_rowids(values, row_of_word, nrows=num_rows).merge_dims(1, 2)
            shape = tf.concat([tf.stack([tf.cast(num_rows, tf.int64), 1]),
                               tf.shape(values.flat_values, out_type=tf.int64)[1:]], axis=0)  # [R, 1, ...]

            def column(value: int) -> tf.RaggedTensor:
                return tf.RaggedTensor.from_tensor(tf.fill(shape, tf.cast(value, values.dtype)))

            return tf.concat([column(first), by_row, column(last)], axis=1).to_tensor()

        first_piece_flags = pieces.with_flat_values(
            tf.cast(tf.equal(tf.ragged.range(counts).flat_values, 0), tf.int32))  # [N, (P)]: 1 on first pieces
        input_word_ids = tf.cast(rows(pieces, self.cls_id, self.sep_id), tf.int32)  # [R, T]
        input_mask = rows(tf.ones_like(first_piece_flags), 1, 1)  # [R, T] int32
        first_piece = rows(first_piece_flags, 0, 0)  # [R, T] int32

        def on_first_pieces(per_word: tf.Tensor) -> tf.Tensor:
            """Per-word values [N, ...] as rows [R, T, ...]: each word's value on its first piece, 0 on its
            other pieces and the padding (the featurizer's layout)."""
            flags = tf.reshape(first_piece_flags.flat_values, [-1] + [1] * (per_word.shape.rank - 1))  # [P, 1...]
            return rows(pieces.with_flat_values(tf.repeat(per_word, counts, axis=0) * flags), 0, 0)

        features = {"input_word_ids": input_word_ids, "input_mask": input_mask,
                    "input_type_ids": tf.zeros_like(input_word_ids),
                    WORD_CASING: on_first_pieces(casing_ids_in_graph(words.flat_values))}  # [R, T]
        if self.lexical_templates:
            features[LEXICAL_IDS] = on_first_pieces(lexical_ids_in_graph(words, self.lexical_templates))  # [R, T, K]
        if self.char_features:
            features[CHAR_IDS] = on_first_pieces(char_ids_in_graph(words.flat_values))  # [R, T, C]
        if self.first_piece_mask:
            features[FIRST_PIECE_MASK] = first_piece
        return features, first_piece, row_of_word


class _SignatureModule(tf.Module):
    """The exported signature `serve(sentences)` (module docstring) over `tag`, which subclasses define."""

    def __init__(self, name: str, label_map: LabelMap):
        super().__init__(name=name)
        self.labels = tf.constant(list(label_map.labels))
        self.span_reading = label_map.span_reading()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="sentences")])
    def serve(self, sentences: tf.Tensor) -> Dict[str, tf.Tensor]:
        words = tf.strings.split(sentences)  # [B, (W)]
        padded_words = words.to_tensor("")  # [B, W]
        label_ids, scores, span_scores = (values[:, :tf.shape(padded_words)[1]] for values in self.tag(words))
        num_words = words.row_lengths()  # [B]
        on_words = tf.sequence_mask(num_words, tf.shape(padded_words)[1])  # [B, W]
        return {"words": padded_words,
                "tags": tf.where(on_words, tf.gather(self.labels, label_ids), ""),
                "scores": tf.where(on_words, scores, 0.0),
                "span_scores": tf.where(on_words, span_scores, 0.0),
                "num_words": num_words}

    def tag(self, words: tf.RaggedTensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`(label_ids [B, W] int32, scores [B, W], span_scores [B, W])` of the words [B, (W)] string, W at
        least the most words of a sentence; positions past a sentence's words may hold anything."""
        raise NotImplementedError


class ServingModule(_SignatureModule):
    """A model under its in-graph featurizer; `serve(sentences)` is the exported signature (module docstring).

    Args:
      model: a built model of the package, weights loaded, mapping features to `(latent, probabilities)`.
      featurizer: the model's featurizer.
      label_map: the labels of the class ids and their scheme (how they read as entity spans).
    """

    def __init__(self, model: keras.Model, featurizer: PieceFeaturizer, label_map: LabelMap):
        super().__init__("ner_serving", label_map)
        # The SavedModel tracks the model's variables, not the Keras model: it then holds the signature
        # and the weights without every layer's own traced functions, and loads in about half the time
        # (`benchmarks/benchmark_serving_signature.py`). `object.__setattr__` keeps `tf.Module` from
        # tracking the attribute.
        object.__setattr__(self, "model", model)
        self.model_variables = list(model.variables)
        self.featurizer = featurizer

    def tag(self, words: tf.RaggedTensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        num_words = words.row_lengths()  # [B]
        features, first_piece, row_of_word = self.featurizer(words)
        # One pass: the probabilities and `decode`'s labels (argmax, or a CRF model's Viterbi path), [R, T, ...],
        # and a CRF model's span marginals [R, T].
        span_marginals = None
        if isinstance(self.model, CrfOutput):
            _, probabilities, label_ids, span_marginals = self.model.predict_span_outputs(features,
                                                                                          self.span_reading)
        else:
            _, probabilities, label_ids = self.model.predict_outputs(features)
        word_probabilities = tf.boolean_mask(probabilities, first_piece > 0)  # [N, C], in word order
        word_label_ids = tf.boolean_mask(label_ids, first_piece > 0)  # [N]

        def by_sentence(values: tf.Tensor, padding) -> tf.Tensor:  # [N] -> [B, W]
            return tf.RaggedTensor.from_row_lengths(values, num_words).to_tensor(padding)

        scores = by_sentence(tf.gather(word_probabilities, word_label_ids, batch_dims=1), 0.0)  # [B, W]
        if span_marginals is not None:
            span_marginals = by_sentence(tf.boolean_mask(span_marginals, first_piece > 0), 0.0)  # [B, W]
        label_ids = by_sentence(word_label_ids, 0)
        return label_ids, scores, _span_scores(label_ids, scores, by_sentence(row_of_word, -1), span_marginals,
                                               self.span_reading)


class EnsembleServingModule(_SignatureModule):
    """CRF models of the same labels, each under its own in-graph featurizer, tagging as one CRF
    (`ner.crf_ensemble`, as `ner.load(run, ensemble=...)` tags): each model's emission scores at the words'
    first pieces and its CRF parameters are averaged, and each sentence is decoded whole with Viterbi; a
    word's score is that CRF's marginal and an entity's its span marginal. `serve` is the exported signature.

    Args:
      models: built CRF models (`CrfOutput`), weights loaded, one per member.
      featurizers: each model's featurizer.
      label_map: the labels the models share.
    """

    def __init__(self, models: Sequence[keras.Model], featurizers: Sequence[PieceFeaturizer], label_map: LabelMap):
        super().__init__("ner_ensemble_serving", label_map)
        if len(models) != len(featurizers) or not models:
            raise ValueError(f"expected one featurizer per model and at least one model, got {len(models)} models "
                             f"and {len(featurizers)} featurizers")
        object.__setattr__(self, "models", tuple(models))  # variables only, as in `ServingModule`
        self.model_variables = [variable for model in models for variable in model.variables]
        self.featurizers = list(featurizers)

    def tag(self, words: tf.RaggedTensor) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        emissions, parameters = [], []
        for model, featurizer in zip(self.models, self.featurizers):
            features, first_piece, _ = featurizer(words)
            _, scores = model.latent_and_scores(features, training=False)  # [R, T, C]
            emissions.append(tf.boolean_mask(tf.cast(scores, tf.float32), first_piece > 0))  # [N, C], in word order
            parameters.append(model.crf.parameters(constrain=True))
        pooled = CrfParameters(*(tf.reduce_mean(tf.stack(values), axis=0) for values in zip(*parameters)))
        # One padding column more than the longest sentence: a batch of empty sentences still has a position.
        word_scores = tf.pad(tf.RaggedTensor.from_row_lengths(tf.reduce_mean(tf.stack(emissions), axis=0),
                                                              words.row_lengths()).to_tensor(0.0),
                             [[0, 0], [0, 1], [0, 0]])  # [B, W + 1, C]
        mask = tf.sequence_mask(words.row_lengths(), tf.shape(word_scores)[1])  # [B, W + 1]
        label_ids, _ = crf_viterbi(word_scores, mask, pooled)
        label_ids = tf.where(mask, label_ids, 0)  # [B, W + 1], "O" on padding
        scores = tf.gather(crf_marginals(word_scores, mask, pooled), label_ids, batch_dims=2)  # [B, W + 1]
        span_marginals = crf_span_marginals(word_scores, mask, pooled, label_ids, self.span_reading)
        one_row = tf.where(mask, tf.constant(0, tf.int64), -1)  # each sentence is decoded whole
        return label_ids, scores, _span_scores(label_ids, scores, one_row, span_marginals, self.span_reading)


def _span_scores(label_ids: tf.Tensor, scores: tf.Tensor, rows: tf.Tensor, span_marginals: Optional[tf.Tensor],
                 reading: SpanReading) -> tf.Tensor:
    """Each word's entity confidence [B, W] float32 (`span_scores`, module docstring).

    An "O" word takes its own `scores` value, not its span marginal: both are p(y = O), and the span marginal
    (float64 inside) differs from the CRF's float32 forward-backward by its round-off (~1e-5 on long rows).

    Args:
      label_ids: [B, W] int32, the sentences' label ids, 0 ("O") on padding.
      scores: [B, W] float32, the probability of each word's label.
      rows: [B, W] int64, the model row each word went through (-1 on padding).
      span_marginals: [B, W] float32, each word's CRF span marginal within its row; None without a CRF.
      reading: how the labels read as spans (`LabelMap.span_reading`).
    """
    # Every sentence starts a span, so one cumsum numbers the spans of the whole batch.
    span_of_word = tf.cumsum(tf.cast(tf.reshape(span_starts(label_ids, reading), [-1]), tf.int32)) - 1  # [B·W]
    num_spans = tf.size(span_of_word)  # a bound: segment ids without words are never gathered

    def per_span(reduce, values: tf.Tensor) -> tf.Tensor:  # [B, W] -> [B·W], reduced over each word's span
        return tf.gather(reduce(tf.reshape(values, [-1]), span_of_word, num_spans), span_of_word)

    confidence = per_span(tf.math.unsorted_segment_mean, scores)  # an "O" word's own score
    if span_marginals is not None:  # a span cut between two rows, and an "O" word, keep the mean
        cut = per_span(tf.math.unsorted_segment_max, rows) > per_span(tf.math.unsorted_segment_min, rows)
        outside = tf.equal(tf.gather(tf.constant(reading.types, tf.int32), tf.reshape(label_ids, [-1])), 0)
        confidence = tf.where(cut | outside, confidence, tf.reshape(span_marginals, [-1]))
    return tf.reshape(confidence, tf.shape(label_ids))


def _pack_rows(counts: tf.Tensor, first_word: tf.Tensor, budget: int) -> tf.Tensor:
    """The row of each word within its sentence, rows filled greedily as `WordPieceFeaturizer` does.

    counts: [N] int64 pieces per word (each <= budget); first_word: [N] bool, True where a sentence
    starts. Returns [N] int64: 0, 0, 1, 1, 2, ... restarting at 0 with each sentence.
    """
    zero = tf.constant(0, tf.int64)

    def step(state, word):
        row, used = state
        count, first = word
        row, used = tf.where(first, zero, row), tf.where(first, zero, used)
        full = used + count > budget
        return tf.where(full, row + 1, row), tf.where(full, count, used + count)

    row_of_word, _ = tf.scan(step, (counts, first_word), initializer=(zero, zero))
    return row_of_word


def export_serving(tagger: Tagger, output_dir: PathLike) -> Path:
    """Writes `tagger`'s model as a serving SavedModel (module docstring) to `output_dir`, atomically; a tagger
    loaded with an ensemble (`ner.load(run, ensemble=...)`) as one of every member under its own featurizer
    (`EnsembleServingModule`).

    An existing `output_dir` is replaced only if it is a SavedModel (a previous export); anything else
    there raises NerError, so a mistyped path never deletes other files.
    """
    output_dir = Path(output_dir)
    if output_dir.exists() and not (output_dir / "saved_model.pb").is_file():
        raise NerError(f"export output {output_dir} exists and is not a SavedModel; expected a new directory "
                       "or a previous export to replace")
    if tagger.members:
        taggers = (tagger, *tagger.members)
        module = EnsembleServingModule([member.model for member in taggers],
                                       [PieceFeaturizer.of_tagger(member) for member in taggers], tagger.label_map)
    else:
        module = ServingModule(tagger.model, PieceFeaturizer.of_tagger(tagger), tagger.label_map)
    with atomic_path(output_dir) as tmp:
        tf.saved_model.save(module, str(tmp), signatures={SIGNATURE: module.serve.get_concrete_function()})
    return output_dir
