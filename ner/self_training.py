"""Pseudo-labels for self-training: a teacher tags unlabelled sentences, and its confidence in each
sentence decides which ones a student learns from.

The teacher's labels are its decoded labels (the argmax, or a CRF's Viterbi path); a sentence's
confidence is the confidence of its least sure word, so one doubtful word is enough to set a sentence
aside — a wrong label inside a kept sentence is learnt as if it were right. Two word confidences:

- "marginal": the word's probability of its predicted label (a CRF's forward-backward marginal), one
  deterministic pass;
- "mc_dropout": one minus the word's mutual information between label and dropout mask (BALD; the
  uncertainty UST selects by, Mukherjee & Awadallah, NeurIPS 2020), from MC-dropout samples.

The stage that trains on them is `ner.experiment` (`semi_supervised.self_training`); this module scores and
selects, in NumPy, over the outputs of `ner.prediction.FirstPiecePredictor`.
"""
import math
from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np

from ner.errors import NerError
from ner.preprocessor import DataSplit
from ner.uncertainty.metrics import entropy


@dataclass(frozen=True)
class PseudoLabels:
    """The kept sentences of a pool and the teacher's labels for them.

    Attributes:
      rows: int64 [K], the kept rows (indices into the featurized corpus), in pool order.
      word_labels: int32 [n], the teacher's label of each word of the kept rows, rows in order.
      confidence: float32 [K], the kept rows' sentence confidence.
      pool_rows: how many rows the teacher tagged.
      kept_accuracy, dropped_accuracy: word accuracy of the teacher's labels against the corpus's own labels
        on the kept and the set-aside rows (a diagnostic of the selection on a corpus that has labels; NaN
        where there are no words). Training never reads the corpus's labels of pool rows.
    """

    rows: np.ndarray
    word_labels: np.ndarray
    confidence: np.ndarray
    pool_rows: int
    kept_accuracy: float
    dropped_accuracy: float

    def summary(self) -> Dict[str, float]:
        """One line of a run's `self_training.csv`."""
        return {"pool_rows": self.pool_rows, "kept_rows": len(self.rows), "kept_words": len(self.word_labels),
                "mean_confidence": float(self.confidence.mean()) if len(self.rows) else math.nan,
                "kept_accuracy": self.kept_accuracy, "dropped_accuracy": self.dropped_accuracy}


def marginal_confidence(probabilities: np.ndarray, label_ids: np.ndarray) -> np.ndarray:
    """Each word's probability of its predicted label: [n, C] and [n] → [n]."""
    return probabilities[np.arange(len(label_ids)), label_ids]


def bald_confidence(mc_mean: np.ndarray, expected_entropy: np.ndarray) -> np.ndarray:
    """One minus each word's mutual information H[mean] − E[H[sample]] (BALD), in nats: [n, C], [n] → [n]."""
    return 1.0 - (entropy(mc_mean) - expected_entropy)


def sentence_confidence(word_confidence: np.ndarray, row_lengths: np.ndarray) -> np.ndarray:
    """The smallest word confidence of each row: [n] and [R] (summing to n) → [R]; 1 for a row without words."""
    starts = np.concatenate([[0], np.cumsum(row_lengths)[:-1]]).astype(np.int64)
    padded = np.append(word_confidence, 1.0)  # a row without words reads this 1
    lowest = np.minimum.reduceat(padded, np.minimum(starts, len(word_confidence)))
    return np.where(np.asarray(row_lengths) > 0, lowest, 1.0)


def most_confident(confidence: np.ndarray, keep_fraction: float) -> np.ndarray:
    """Indices of the ceil(keep_fraction · R) most confident of R rows (ties: the earlier row), ascending."""
    keep = math.ceil(keep_fraction * len(confidence))
    return np.sort(np.argsort(-np.asarray(confidence), kind="stable")[:keep])


def check_pool(split: DataSplit, pool_ids: Sequence[int]) -> None:
    """Raises NerError if a pool sentence is also a test, labelled or validation sentence."""
    pool = set(pool_ids)
    for part in ("test", "labelled", "validation"):
        shared = pool.intersection(split.parts()[part])
        if shared:
            raise NerError(f"{len(shared):,} sentences of the self-training pool (e.g. id {min(shared)}) are in the "
                           f"{part} part; expected the pool to come from the unlabelled part only")


def select_pseudo_labels(rows: np.ndarray, row_lengths: np.ndarray, label_ids: np.ndarray,
                         word_confidence: np.ndarray, keep_fraction: float,
                         corpus_labels: np.ndarray) -> PseudoLabels:
    """Keeps the most confident rows of a tagged pool with their predicted labels.

    Args:
      rows: int64 [R], the pool's rows in the order they were tagged.
      row_lengths: [R], words per row (summing to n).
      label_ids: int32 [n], the teacher's label of each word.
      word_confidence: [n], e.g. `marginal_confidence` or `bald_confidence`.
      keep_fraction: the share of rows kept, in (0, 1].
      corpus_labels: int32 [n], the corpus's own labels (only for the accuracy diagnostic).
    """
    confidence = sentence_confidence(word_confidence, row_lengths)
    kept = most_confident(confidence, keep_fraction)
    row_of_word = np.repeat(np.arange(len(rows)), row_lengths)
    kept_words = np.isin(row_of_word, kept)
    correct = label_ids == corpus_labels

    def accuracy(words: np.ndarray) -> float:
        return float(correct[words].mean()) if words.any() else math.nan

    return PseudoLabels(rows=np.asarray(rows, np.int64)[kept], word_labels=label_ids[kept_words].astype(np.int32),
                        confidence=confidence[kept].astype(np.float32), pool_rows=len(rows),
                        kept_accuracy=accuracy(kept_words), dropped_accuracy=accuracy(~kept_words))
