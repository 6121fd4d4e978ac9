"""Tagging raw text with a trained run: the Python side of `ner predict`.

    import ner
    tagger = ner.load("bert_ner")            # a run name under saved_models/, or a run directory
    [result] = tagger.predict(["John Smith flew to London on Monday."])
    for entity in result.entities:
        print(entity.type, entity.text, entity.start, entity.end, round(entity.confidence, 2))

Texts are split into sentences and words by the rule-based `ner.text` (see there). A sentence longer
than the run's `data.max_seq_length` word pieces is cut at word boundaries into several rows, which are
joined again, whatever the run's `data.long_sentences` says, so every word gets a label; rows go through
the model in batches of `training.batch_size` (sorted by length within a call, so that a batch pads
little, and put back in input order; padded to `training.length_buckets` when set), so a text may be of
any length. A text without words
(empty, whitespace) gets no sentences and no entities.

Labels and confidence. Each word gets the probability vector at its first word piece: the model's
softmax (a CRF model's marginals) with dropout off, or with `mc_samples` = T > 0 the mean of T
Monte-Carlo dropout samples (`ner.uncertainty`, at the head's training rate unless the run's
`uncertainty.mc_dropout_rate` names another, through the
encoder too if `uncertainty.encoder_dropout`; call `ner.utils.set_seed` first for repeatable samples). A
word's label is the model's decoded label (`TokenClassifier.decode`: the argmax of that vector, the
Viterbi path of a CRF model), or with T > 0 the argmax of the mean; its confidence is the probability of
that label. Entities are the spans of the labels read as IOB2 (the way the evaluator
reads predictions: `LabelMap.to_bio`). An entity's confidence is, for a CRF model with dropout off, the
marginal probability of its exact span and type under the CRF (forward-backward over the row's words, from
the pass that gives the labels: `CrfOutput.predict_span_outputs`, as the serving SavedModel computes it),
and otherwise the mean confidence of its words. (A span that crosses the cut between two rows of a long
sentence belongs to no one CRF and gets the mean too.) `review` marks the
entities whose confidence is below `threshold`.

An ensemble (`ner.load(run, ensemble=[other, ...])`, `ner predict --ensemble`): CRF runs of the same labels,
on any encoders, tag together as one CRF (`ner.crf_ensemble`): each reads the words through its own
featurizer, their word emission and transition scores are averaged, and each sentence is decoded whole with
Viterbi; word probabilities are that CRF's marginals and an entity's confidence its span marginal. An
ensemble tags with dropout off (no `mc_samples`) and does not `select`.

Choosing sentences to annotate: `tagger.select(pool, budget, strategy="mnlp")` takes a pool of sentences
(each a list of words) and returns the `budget` best to label next (`ner.selection`: the strategies and
the optional diversity term).
"""
import dataclasses
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ner.config import ExperimentConfig, load_config, member_environ
from ner.crf_ensemble import (average_potentials, check_member, marginal_probabilities, span_marginal_probabilities,
                              viterbi_label_ids, word_potentials)
from ner.encoders.hub_encoder import EncoderVocab, encoder_vocab
from ner.errors import NerError
from ner.models import build_model
from ner.models.crf_output import CrfOutput
from ner.prediction import FirstPiecePredictor, restore_row_order
from ner.preprocessor import EncodedSentences, Sentence, WordPieceFeaturizer, length_order, make_dataset, select_rows
from ner.registry import ACQUISITIONS, lookup, model_type
from ner.runs import CONFIG_FILE, read_label_map, run_dir_for
from ner.selection import Selection, acquisition_scores, check_budget_and_diversity, pool_outputs, select
from ner.tagging import OUTSIDE, LabelMap
from ner.text import Token, tokenize
from ner.trainers.trainer import WEIGHTS_DIR, load_weights
from ner.uncertainty.mc_dropout import MCDropoutPredictor
from ner.uncertainty.metrics import span_uncertainties

CONFIDENCE_DIGITS = 4  # decimals of the confidences `ner predict` and `ner tag-corpus` write


@dataclass(frozen=True)
class TaggedWord:
    """A word of the text (`text == source[start:end]`) with its prediction.

    `label` is in the run's tag scheme ("geo" for IO, "B-geo" for BIO); `tag` is the word's IOB2 tag in
    the sentence's entity spans; `confidence` is the max of the word's probability vector.
    """

    text: str
    start: int
    end: int
    label: str
    tag: str
    confidence: float


@dataclass(frozen=True)
class Entity:
    """A predicted entity: `text == source[start:end]`, its type, its confidence (a CRF model's span
    marginal, else the mean confidence of its words: module docstring), and whether that is below the
    threshold given to `Tagger.predict` (`review`)."""

    text: str
    type: str
    start: int
    end: int
    confidence: float
    review: bool


@dataclass(frozen=True)
class SentencePrediction:
    """One sentence's words: label ids int32 [n_words], probabilities float32 [n_words, C], and for a CRF
    model with dropout off each word's span marginal within its row float32 [n_words] (`FirstPiecePredictions`)
    and the word offsets where its rows start (int [rows]; a long sentence fills several rows)."""

    label_ids: np.ndarray
    probabilities: np.ndarray
    span_marginals: Optional[np.ndarray] = None
    row_starts: Optional[np.ndarray] = None


@dataclass(frozen=True)
class TaggedText:
    """One input text: its sentences of tagged words, and its entities in text order."""

    text: str
    sentences: Tuple[Tuple[TaggedWord, ...], ...]
    entities: Tuple[Entity, ...]

    def to_dict(self, with_tokens: bool = False) -> dict:
        """`{"text": ..., "entities": [{"text", "type", "start", "end", "confidence", "review"}, ...]}`; with
        `with_tokens` also `"tokens": [{"text", "start", "end", "sentence", "label", "tag", "confidence"}, ...]`,
        every word in text order with the index of its sentence."""
        record = {"text": self.text, "entities": [dataclasses.asdict(entity) for entity in self.entities]}
        if with_tokens:
            record["tokens"] = [{"sentence": index, **dataclasses.asdict(word)}
                                for index, sentence in enumerate(self.sentences) for word in sentence]
        return record

    def to_rounded_dict(self, with_tokens: bool = False) -> dict:
        """`to_dict` with every confidence rounded to `CONFIDENCE_DIGITS` decimals (what `ner predict` prints)."""
        record = self.to_dict(with_tokens)
        for item in record["entities"] + record.get("tokens", []):
            item["confidence"] = round(item["confidence"], CONFIDENCE_DIGITS)
        return record


class Tagger:
    """A trained model with the word-piece featurizer of its run, tagging raw text (module docstring).

    Args:
      config: the run's resolved config (its `config.yaml`).
      model: the run's model with its weights loaded; built by `build_model`, so a BERT model runs its
        encoder on word pieces (a run trained on cached encoder features included).
      vocab: the encoder's vocabulary (`encoder_vocab`).
      label_map: the labels the model predicts, in id order (the run's `labels.json`).
      members: other CRF taggers of the same labels that tag together with this one (module docstring).
    """

    def __init__(self, config: ExperimentConfig, model: keras.Model, vocab: EncoderVocab, label_map: LabelMap,
                 members: Sequence["Tagger"] = ()):
        self.config = config
        self.model = model
        self.vocab = vocab
        self.label_map = label_map
        self.members = tuple(members)
        for tagger in (self, *self.members) if members else ():  # an ensemble's every tagger
            check_member(tagger.config.run_name, tagger.model, tagger.config.model.type, tagger.label_map.labels,
                         config.run_name, label_map.labels)
        self.featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, config.data.max_seq_length,
                                              self.label_map, long_sentences="split",
                                              lexical_templates=config.model.lexical_template_set,
                                              char_features=config.model.reads_char_ids,
                                              max_pieces_per_word=config.data.max_pieces_per_word)
        self._predictor = FirstPiecePredictor(model, label_map.span_reading())

    @classmethod
    def from_run(cls, run: str, saved_models_dir: str = "saved_models", ensemble: Sequence[str] = (),
                 environ: Optional[Mapping[str, str]] = None) -> "Tagger":
        """Loads the trained run `run`: a name under `saved_models_dir`, or a run directory; with `ensemble`, the
        other CRF runs it tags with (each read with its own config and encoder: `member_environ`). `environ`
        is that of `load_config`."""
        run_dir = run_dir_for(run, saved_models_dir)
        config = load_config(run_dir / CONFIG_FILE, environ=environ)
        if not (run_dir / WEIGHTS_DIR).is_dir():
            raise NerError(f"run '{run}' has no final weights in {run_dir / WEIGHTS_DIR}; its training did not finish")
        vocab = encoder_vocab(config.encoder.handle)
        label_map = read_label_map(run_dir)
        model = build_model(config.model, config.encoder, label_map.num_labels, vocab.vocab_size, label_map=label_map,
                            precision=config.training.precision)
        load_weights(model, run_dir)
        members = [cls.from_run(other, saved_models_dir, environ=member_environ()) for other in ensemble]
        return cls(config, model, vocab, label_map, members)

    def predict(self, texts: Sequence[str], mc_samples: int = 0, threshold: float = 0.0) -> List[TaggedText]:
        """Tags each text; see the module docstring for how words, labels and confidences are made.

        Args:
          texts: the texts, each any string (a list even for one text).
          mc_samples: 0 for the softmax, T > 0 for the mean of T MC-dropout samples.
          threshold: entities with a confidence below it get `review=True`; in [0, 1].
        """
        if isinstance(texts, str):
            raise TypeError("predict takes a sequence of texts; wrap a single text in a list")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        documents = [tokenize(text) for text in texts]
        sentences = [[word.text for word in sentence] for document in documents for sentence in document]
        predictions = iter(self._predict_sentences(sentences, mc_samples))
        results = []
        for text, document in zip(texts, documents):
            predicted = [next(predictions) for _ in document]
            labels = [[self.label_map.labels[i] for i in prediction.label_ids] for prediction in predicted]
            confidences = [np.take_along_axis(prediction.probabilities, prediction.label_ids[:, None], axis=-1)[:, 0]
                           for prediction in predicted]
            results.append(tag_text(
                text, document, labels, confidences, self.label_map, threshold,
                lambda index, start, end, _, mean: self._span_confidence(predicted[index], start, end, mean)))
        return results

    def predict_words(self, sentences: Sequence[Sequence[str]], mc_samples: int = 0,
                      sort_by_length: bool = True) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per sentence of words, each word's label id (int32 [n_words]) and probabilities at its first
        piece (float32 [n_words, C]): the decoded labels and the probabilities with dropout off, or with
        `mc_samples` > 0 the mean of that many MC-dropout samples and its argmax (module docstring).
        `sort_by_length` False batches the rows in input order instead (what `benchmarks/benchmark_predict.py`
        compares)."""
        return [(p.label_ids, p.probabilities) for p in
                self._predict_sentences(sentences, mc_samples, sort_by_length, span_marginals=False)]

    def _span_confidence(self, prediction: SentencePrediction, start: int, end: int,
                         mean_word_confidence: float) -> float:
        """The CRF marginal of the entity `start:end` within its row (word `start`'s span marginal: within a
        row the row's reading of the labels has the same span there); else `mean_word_confidence`."""
        if prediction.span_marginals is None:
            return mean_word_confidence
        row_ends = np.r_[prediction.row_starts[1:], len(prediction.label_ids)]
        row = int(np.searchsorted(prediction.row_starts, start, side="right")) - 1
        if end > row_ends[row]:  # the span crosses a row cut
            return mean_word_confidence
        return float(prediction.span_marginals[start])

    def _predict_sentences(self, sentences: Sequence[Sequence[str]], mc_samples: int,
                           sort_by_length: bool = True, span_marginals: bool = True) -> List[SentencePrediction]:
        """`predict_words`, plus a CRF model's span marginals and row starts when `mc_samples` is 0 and
        `span_marginals` (they cost one more pass over the spans)."""
        if mc_samples < 0:
            raise ValueError(f"mc_samples must be 0 (softmax) or positive, got {mc_samples}")
        if mc_samples and self.members:
            raise ValueError("an ensemble tags with its CRF potentials, dropout off; expected mc_samples 0")
        if not sentences:
            return []
        if self.members:
            return self._predict_ensemble(sentences, sort_by_length, span_marginals)
        encoded, order, dataset = self._dataset(sentences, sort_by_length)
        if mc_samples:
            prediction = restore_row_order(
                self._predictor.predict(dataset, decode=False, mc_predictor=self._mc_predictor(mc_samples)), order)
            probabilities = prediction.mc.mean
            label_ids = probabilities.argmax(axis=-1).astype(np.int32)
        else:
            with_spans = span_marginals and isinstance(self.model, CrfOutput)
            prediction = restore_row_order(self._predictor.predict(
                dataset, probabilities=True, span_marginals=with_spans), order)
            probabilities, label_ids = prediction.probabilities, prediction.label_ids
        # Rows are in sentence order and words in row order, so the words of a sentence are consecutive.
        lengths = [len(words_of_sentence) for words_of_sentence in sentences]
        if len(label_ids) != sum(lengths):
            raise RuntimeError(f"{len(label_ids)} first pieces for {sum(lengths)} words; the rows lost words")
        cuts = np.cumsum(lengths)[:-1]
        per_sentence = [np.split(values, cuts) for values in (label_ids, probabilities)]
        if prediction.span_marginals is None:
            return [SentencePrediction(ids, p) for ids, p in zip(*per_sentence)]
        row_offsets = np.r_[0, np.cumsum(prediction.row_lengths)[:-1]]  # [R] first word of each row
        sentence_starts = np.r_[0, cuts]
        row_starts = [row_offsets[encoded.sentence_ids == index] - sentence_starts[index]
                      for index in range(len(sentences))]
        return [SentencePrediction(ids, p, scores, starts) for ids, p, scores, starts
                in zip(*per_sentence, np.split(prediction.span_marginals, cuts), row_starts)]

    def _predict_ensemble(self, sentences: Sequence[Sequence[str]], sort_by_length: bool,
                          span_marginals: bool) -> List[SentencePrediction]:
        """`_predict_sentences` for an ensemble: every member's word emission scores, averaged with their CRF
        parameters, each sentence decoded whole (one row)."""
        lengths = [len(words_of_sentence) for words_of_sentence in sentences]
        potentials = []
        for tagger in (self, *self.members):
            _, order, dataset = tagger._dataset(sentences, sort_by_length)
            scores = restore_row_order(tagger._predictor.predict(dataset, decode=False, emission_scores=True),
                                       order).emission_scores
            if len(scores) != sum(lengths):
                raise RuntimeError(f"{len(scores)} first pieces for {sum(lengths)} words; the rows lost words")
            potentials.append(word_potentials(tagger.model, scores))
        pooled = average_potentials(potentials)
        label_ids = viterbi_label_ids(pooled, lengths)
        probabilities = marginal_probabilities(pooled, lengths)
        spans = (span_marginal_probabilities(pooled, lengths, label_ids, self.label_map.span_reading())
                 if span_marginals else None)
        cuts = np.cumsum(lengths)[:-1]
        per_sentence = [np.split(values, cuts) for values in (label_ids, probabilities)]
        if spans is None:
            return [SentencePrediction(ids, p) for ids, p in zip(*per_sentence)]
        one_row = np.zeros(1, np.int64)  # each sentence is decoded whole
        return [SentencePrediction(ids, p, span, one_row) for ids, p, span in zip(*per_sentence, np.split(spans, cuts))]

    def select(self, sentences: Sequence[Sequence[str]], budget: int, strategy: str = "mnlp",
               diversity: float = 0.0, mc_samples: Optional[int] = None, seed: int = 0) -> Selection:
        """The `budget` sentences of a pool (each a non-empty sequence of words) to label next, best first.

        Args:
          strategy: a name of `ner.registry.ACQUISITIONS` (`ner.selection` says what each scores).
          diversity: w >= 0, the weight of the penalty for sentences close to those already picked.
          mc_samples: T MC-dropout samples for `bald` (default: the run's `uncertainty.mc_samples`;
            call `ner.utils.set_seed` first for repeatable samples); other strategies run none.
          seed: the seed of `random`.

        Raises:
          ValueError: an empty sentence (named by its index), or a value out of range.
          ConfigError: an unknown strategy.
          NerError: an ensemble (selection reads one model).
        """
        if self.members:
            raise NerError("selection reads one model's outputs; load the run without an ensemble to select")
        reads = lookup(ACQUISITIONS, strategy, "acquisition strategy").reads
        check_budget_and_diversity(budget, diversity)
        empty = [index for index, words in enumerate(sentences) if not words]
        if empty:
            raise ValueError(f"pool sentences {empty[:10]} (0-based) have no words")
        if not sentences:
            return select(np.zeros(0), budget)
        encoded, _, dataset = self._dataset(sentences)  # input order: latent points stay with their rows
        mc_predictor = None
        if reads == "mc":
            mc_predictor = self._mc_predictor(self.config.uncertainty.mc_samples if mc_samples is None else mc_samples)
        outputs = pool_outputs(self._predictor, dataset, encoded.sentence_ids, reads, mc_predictor,
                               embeddings=diversity > 0)
        words = [len(words_of_sentence) for words_of_sentence in sentences]
        if not np.array_equal(outputs.word_counts, words):
            raise RuntimeError(f"{outputs.word_counts.sum()} first pieces for {sum(words)} words; the rows lost words")
        return select(acquisition_scores(strategy, outputs, seed), budget, outputs.embeddings, diversity)

    def _dataset(self, sentences: Sequence[Sequence[str]],
                 sort_by_length: bool = False) -> Tuple[EncodedSentences, np.ndarray, tf.data.Dataset]:
        """The sentences (sentence id = index) featurized in order with labels all `O`, the order [R] in
        which the dataset reads their rows (sorted by length, so that batches pad little, or input order;
        `restore_row_order` undoes it), and the dataset."""
        records = [Sentence(i, tuple(words), (OUTSIDE,) * len(words)) for i, words in enumerate(sentences)]
        encoded = self.featurizer.featurize(records)
        order = length_order(encoded) if sort_by_length else np.arange(len(encoded.label_ids))  # [R]
        return encoded, order, make_dataset(
            select_rows(encoded, order), self.config.training.batch_size, shuffle=False, seed=None,
            first_piece_mask=model_type(self.config.model.type).reads_first_piece_mask,
            length_buckets=self.config.training.length_buckets)

    def _mc_predictor(self, mc_samples: int) -> MCDropoutPredictor:
        """T = `mc_samples` MC-dropout samples at the run's `uncertainty` rate and sampling path."""
        return MCDropoutPredictor.from_config(self.model, self.config.uncertainty, mc_samples)


def tag_text(text: str, document: Sequence[Sequence[Token]], labels: Sequence[Sequence[str]],
             confidences: Sequence[np.ndarray], label_map: LabelMap, threshold: float = 0.0,
             span_confidence: Optional[Callable[[int, int, int, str, float], float]] = None) -> TaggedText:
    """`text` with its words tagged and its entities read from the tags (module docstring).

    Args:
      document: the sentences of words of `text` (`ner.text.tokenize`).
      labels: per sentence, each word's label in `label_map`'s scheme [n_words].
      confidences: per sentence, each word's confidence, float [n_words].
      threshold: entities with a confidence below it get `review=True`.
      span_confidence: `(sentence index, start word, end word, type, mean word confidence)` -> the
        entity's confidence; default: the mean word confidence.
    """
    tagged, entities = [], []
    for index, (sentence, sentence_labels, confidence) in enumerate(zip(document, labels, confidences)):
        tags = label_map.to_bio(list(sentence_labels))
        tagged.append(tuple(TaggedWord(word.text, word.start, word.end, label, tag, float(score))
                            for word, label, tag, score in zip(sentence, sentence_labels, tags, confidence)))
        for span in span_uncertainties([tags], [confidence]):
            start, end = sentence[span.start].start, sentence[span.end - 1].end
            score = span.mean_score if span_confidence is None else span_confidence(
                index, span.start, span.end, span.type, span.mean_score)
            entities.append(Entity(text[start:end], span.type, start, end, score, score < threshold))
    return TaggedText(text, tuple(tagged), tuple(entities))


def load(run: str, saved_models_dir: str = "saved_models", ensemble: Sequence[str] = ()) -> Tagger:
    """The trained run `run` (a name under `saved_models_dir`, or a run directory) as a `Tagger`; with
    `ensemble`, tagging together with those other CRF runs (module docstring)."""
    return Tagger.from_run(run, saved_models_dir, ensemble)
