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
Monte-Carlo dropout samples (`ner.uncertainty`, at the run's `uncertainty.mc_dropout_rate`, through the
encoder too if `uncertainty.encoder_dropout`; call `ner.utils.set_seed` first for repeatable samples). A
word's label is the model's decoded label (`TokenClassifier.decode`: the argmax of that vector, the
Viterbi path of a CRF model), or with T > 0 the argmax of the mean; its confidence is the probability of
that label. Entities are the spans of the labels read as IOB2 (the way the evaluator
reads predictions: `LabelMap.to_bio`), and an entity's confidence is the mean confidence of its words.
`review` marks the entities whose confidence is below `threshold`.
"""
import dataclasses
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
import tf_keras as keras

from ner.config import ExperimentConfig, load_config
from ner.encoders.hub_encoder import EncoderVocab, encoder_vocab
from ner.errors import NerError
from ner.models import build_model
from ner.prediction import FirstPiecePredictor, restore_row_order
from ner.preprocessor import Sentence, WordPieceFeaturizer, length_order, make_dataset, select_rows
from ner.registry import model_type
from ner.runs import CONFIG_FILE, read_label_map, run_dir_for
from ner.tagging import OUTSIDE, LabelMap
from ner.text import tokenize
from ner.trainers.trainer import WEIGHTS_DIR, load_weights
from ner.uncertainty.mc_dropout import MCDropoutPredictor
from ner.uncertainty.metrics import span_uncertainties


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
    """A predicted entity: `text == source[start:end]`, its type, the mean confidence of its words, and
    whether that is below the threshold given to `Tagger.predict` (`review`)."""

    text: str
    type: str
    start: int
    end: int
    confidence: float
    review: bool


@dataclass(frozen=True)
class TaggedText:
    """One input text: its sentences of tagged words, and its entities in text order."""

    text: str
    sentences: Tuple[Tuple[TaggedWord, ...], ...]
    entities: Tuple[Entity, ...]

    def to_dict(self) -> dict:
        """`{"text": ..., "entities": [{"text", "type", "start", "end", "confidence", "review"}, ...]}`."""
        return {"text": self.text, "entities": [dataclasses.asdict(entity) for entity in self.entities]}


class Tagger:
    """A trained model with the word-piece featurizer of its run, tagging raw text (module docstring).

    Args:
      config: the run's resolved config (its `config.yaml`).
      model: the run's model with its weights loaded; built by `build_model`, so a BERT model runs its
        encoder on word pieces (a run trained on cached encoder features included).
      vocab: the encoder's vocabulary (`encoder_vocab`).
      label_map: the labels the model predicts, in id order (the run's `labels.json`).
    """

    def __init__(self, config: ExperimentConfig, model: keras.Model, vocab: EncoderVocab, label_map: LabelMap):
        self.config = config
        self.model = model
        self.vocab = vocab
        self.label_map = label_map
        self.featurizer = WordPieceFeaturizer(vocab.vocab_path, vocab.do_lower_case, config.data.max_seq_length,
                                              self.label_map, long_sentences="split",
                                              lexical_features=config.model.lexical_features)
        self._predictor = FirstPiecePredictor(model)

    @classmethod
    def from_run(cls, run: str, saved_models_dir: str = "saved_models") -> "Tagger":
        """Loads the trained run `run`: a name under `saved_models_dir`, or a run directory."""
        run_dir = run_dir_for(run, saved_models_dir)
        config = load_config(run_dir / CONFIG_FILE)
        if not (run_dir / WEIGHTS_DIR).is_dir():
            raise NerError(f"run '{run}' has no final weights in {run_dir / WEIGHTS_DIR}; its training did not finish")
        vocab = encoder_vocab(config.encoder.handle)
        label_map = read_label_map(run_dir)
        model = build_model(config.model, config.encoder, label_map.num_labels, vocab.vocab_size, label_map=label_map,
                            precision=config.training.precision)
        load_weights(model, run_dir)
        return cls(config, model, vocab, label_map)

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
        predictions = iter(self.predict_words(sentences, mc_samples))
        results = []
        for text, document in zip(texts, documents):
            tagged, entities = [], []
            for sentence in document:
                label_ids, probabilities = next(predictions)  # [n_words], [n_words, C]
                labels = [self.label_map.labels[i] for i in label_ids]
                confidence = np.take_along_axis(probabilities, label_ids[:, None], axis=-1)[:, 0]
                tags = self.label_map.to_bio(labels)
                tagged.append(tuple(TaggedWord(word.text, word.start, word.end, label, tag, float(score))
                                    for word, label, tag, score in zip(sentence, labels, tags, confidence)))
                for span in span_uncertainties([tags], [confidence]):
                    start, end = sentence[span.start].start, sentence[span.end - 1].end
                    entities.append(Entity(text[start:end], span.type, start, end, span.mean_score,
                                           span.mean_score < threshold))
            results.append(TaggedText(text, tuple(tagged), tuple(entities)))
        return results

    def predict_words(self, sentences: Sequence[Sequence[str]], mc_samples: int = 0,
                      sort_by_length: bool = True) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Per sentence of words, each word's label id (int32 [n_words]) and probabilities at its first
        piece (float32 [n_words, C]): the decoded labels and the probabilities with dropout off, or with
        `mc_samples` > 0 the mean of that many MC-dropout samples and its argmax (module docstring).
        `sort_by_length` False batches the rows in input order instead (what `benchmarks/benchmark_predict.py`
        compares)."""
        if mc_samples < 0:
            raise ValueError(f"mc_samples must be 0 (softmax) or positive, got {mc_samples}")
        if not sentences:
            return []
        records = [Sentence(i, tuple(words), (OUTSIDE,) * len(words)) for i, words in enumerate(sentences)]
        encoded = self.featurizer.featurize(records)
        order = length_order(encoded) if sort_by_length else np.arange(len(encoded.label_ids))  # [R]
        dataset = make_dataset(select_rows(encoded, order), self.config.training.batch_size, shuffle=False,
                               seed=None, first_piece_mask=model_type(self.config.model.type).reads_first_piece_mask,
                               length_buckets=self.config.training.length_buckets)
        if mc_samples:
            uncertainty = self.config.uncertainty
            predictor = MCDropoutPredictor(self.model, mc_samples, uncertainty.mc_dropout_rate,
                                           uncertainty.encoder_dropout)
            prediction = restore_row_order(self._predictor.predict(dataset, decode=False, mc_predictor=predictor),
                                           order)
            probabilities = prediction.mc.mean
            label_ids = probabilities.argmax(axis=-1).astype(np.int32)
        else:
            prediction = restore_row_order(self._predictor.predict(dataset, probabilities=True), order)
            probabilities, label_ids = prediction.probabilities, prediction.label_ids
        # Rows are in sentence order and words in row order, so the words of a sentence are consecutive.
        lengths = [len(words_of_sentence) for words_of_sentence in sentences]
        if len(label_ids) != sum(lengths):
            raise RuntimeError(f"{len(label_ids)} first pieces for {sum(lengths)} words; the rows lost words")
        cuts = np.cumsum(lengths)[:-1]
        return list(zip(np.split(label_ids, cuts), np.split(probabilities, cuts)))


def load(run: str, saved_models_dir: str = "saved_models") -> Tagger:
    """The trained run `run` (a name under `saved_models_dir`, or a run directory) as a `Tagger`."""
    return Tagger.from_run(run, saved_models_dir)
