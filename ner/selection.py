"""Which pool sentences to label next: an acquisition score per sentence, and a greedy pick of a batch.

The strategies (`ner.registry.ACQUISITIONS`) each give one score per sentence; higher means "label it
first":

- `mnlp`, maximum normalised log-probability (Shen et al., ICLR 2018): −log p(ŷ | x) / n for the
  decoded labels ŷ of the sentence's n words. For a CRF model ŷ is the Viterbi path, the most probable
  labelling, and p its probability under the CRF; for a softmax model ŷ is each word's argmax and
  log p(ŷ | x) the sum of the words' log max probabilities. Dividing by n keeps long sentences from
  coming first by their length alone.
- `bald`, Bayesian active learning by disagreement (Houlsby et al. 2011; Siddhant & Lipton, EMNLP 2018):
  the mean over words of the mutual information between a word's label and the model, estimated from T
  MC-dropout samples as H(p̄) − mean_t H(p_t) (`ner.uncertainty.metrics.token_scores`).
- `entropy`: the mean over words of the entropy of the probabilities with dropout off (a CRF model's
  marginals).
- `random`: uniform draws from a generator seeded by `seed`, the baseline every strategy must beat.

Diversity. Picking the top N by score tends to pick N near-copies of one confusing sentence. With a
weight w > 0, `select` picks greedily instead: each step takes the sentence with the highest
s_i − w · max(0, max_j cos(z_i, z_j)) over the sentences j already picked, where s is the score
min-max rescaled to [0, 1] over the pool (so w weighs the same for every strategy) and z_i is the
sentence's mean latent vector (the head's latent at its words). Latent vectors rather than n-gram
overlap: they come from the same model pass as the scores, and they are close for sentences the model
sees alike (same entity contexts in other words), which n-grams miss; n-grams would only catch literal
repeats. The cost is one [N, L] matrix-vector product per pick.

`pool_outputs` runs a model over a pool's rows for a strategy: raw sentences (`ner.api.Tagger.select`)
or a split's unlabelled rows on cached features (`examples/active_learning.py`).
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ner.registry import ACQUISITIONS, lookup, resolve
from ner.uncertainty.metrics import MCStatistics, entropy, sentence_scores, token_scores


@dataclass(frozen=True, eq=False)
class PoolOutputs:
    """A model's outputs over a pool of N sentences with n words in all, sentences in pool order and
    words in sentence order. The fields a strategy does not read (`Acquisition.reads`) may be None.

    Attributes:
      word_counts: int [N], words per sentence, each >= 1.
      log_probability: float [N], log p of each sentence's decoded labels (`decoded_log_probability`).
      probabilities: float [n, C], each word's probabilities with dropout off.
      mc: each word's MC-dropout statistics (`mean` [n, C], `expected_entropy` [n]).
      embeddings: float [N, L], each sentence's mean latent vector (for the diversity term).
    """

    word_counts: np.ndarray
    log_probability: Optional[np.ndarray] = None
    probabilities: Optional[np.ndarray] = None
    mc: Optional[MCStatistics] = None
    embeddings: Optional[np.ndarray] = None

    def per_sentence_mean(self, word_values: np.ndarray) -> np.ndarray:
        """float64 [N]: the mean of `word_values` [n] over each sentence's words."""
        if len(word_values) != self.word_counts.sum():
            raise ValueError(f"{len(word_values)} word values for {self.word_counts.sum()} words")
        return sentence_scores(np.split(word_values, np.cumsum(self.word_counts)[:-1]), reduction="mean")


@dataclass(frozen=True, eq=False)
class Selection:
    """The chosen sentences in the order picked (best first).

    Attributes:
      indices: int [k] into the pool, k = min(budget, N).
      scores: float64 [k], their acquisition scores (not rescaled).
      penalties: float64 [k], w · max(0, max cosine) to the sentences picked before each; 0 without diversity.
    """

    indices: np.ndarray
    scores: np.ndarray
    penalties: np.ndarray


def pool_outputs(predictor, dataset, row_sentences: np.ndarray, reads: Optional[str], mc_predictor=None,
                 embeddings: bool = False) -> PoolOutputs:
    """A model's outputs over a pool whose rows `dataset` reads in order, per sentence.

    Args:
      predictor: a `ner.prediction.FirstPiecePredictor` (the live encoder's model, or cached features').
      dataset: the pool's R rows, unshuffled; a sentence's rows may be several (a long sentence cut).
      row_sentences: int [R], the pool sentence (0 … N-1) of each row; every sentence has a row.
      reads: the field the strategy reads (`ner.registry.Acquisition.reads`); only it is computed.
      mc_predictor: the `ner.uncertainty.mc_dropout.MCDropoutPredictor` of a strategy reading "mc".
      embeddings: also each sentence's mean latent vector (the diversity term).

    The word counts are the positions the predictor kept per sentence; a sentence's log-probability is
    the sum of its rows'.
    """
    row_sentences = np.asarray(row_sentences, dtype=np.int64)
    count = int(row_sentences.max(initial=-1)) + 1
    prediction = predictor.predict(dataset, decode=False, probabilities=reads == "probabilities",
                                   mc_predictor=mc_predictor, log_probability=reads == "log_probability",
                                   latent_batches=len(row_sentences) if embeddings else 0)  # rows >= batches: all
    if len(prediction.row_lengths) != len(row_sentences):
        raise ValueError(f"the dataset read {len(prediction.row_lengths)} rows; row_sentences names {len(row_sentences)}")
    word_counts = np.bincount(row_sentences, weights=prediction.row_lengths, minlength=count).astype(np.int64)
    mean_latent = None
    if embeddings:  # rows are in sentence order, so a sentence's words are consecutive
        starts = np.concatenate([[0], np.cumsum(word_counts)[:-1]])
        mean_latent = np.add.reduceat(prediction.latent.astype(np.float64), starts, axis=0) / word_counts[:, None]
    log_probability = None
    if prediction.log_probability is not None:
        log_probability = np.bincount(row_sentences, weights=prediction.log_probability, minlength=count)
    return PoolOutputs(word_counts, log_probability, prediction.probabilities, prediction.mc, mean_latent)


def _needs(field: str, value):
    if value is None:
        raise ValueError(f"this strategy reads PoolOutputs.{field}, which was not computed")
    return value


def mnlp_scores(outputs: PoolOutputs, seed: int) -> np.ndarray:
    """−log p(ŷ | x) / n per sentence: float64 [N] (module docstring)."""
    log_probability = np.asarray(_needs("log_probability", outputs.log_probability), dtype=np.float64)
    return -log_probability / outputs.word_counts


def bald_scores(outputs: PoolOutputs, seed: int) -> np.ndarray:
    """The mean mutual information of each sentence's words: float64 [N]."""
    mc = _needs("mc", outputs.mc)
    return outputs.per_sentence_mean(token_scores(mc.mean, mc.expected_entropy).mutual_information)


def entropy_scores(outputs: PoolOutputs, seed: int) -> np.ndarray:
    """The mean entropy of each sentence's word probabilities: float64 [N]."""
    return outputs.per_sentence_mean(entropy(_needs("probabilities", outputs.probabilities)))


def random_scores(outputs: PoolOutputs, seed: int) -> np.ndarray:
    """Uniform draws in [0, 1) from `np.random.default_rng(seed)`: float64 [N]."""
    return np.random.default_rng(seed).random(len(outputs.word_counts))


def acquisition_scores(strategy: str, outputs: PoolOutputs, seed: int = 0) -> np.ndarray:
    """The scores float64 [N] of the registered strategy `strategy`; ConfigError for an unknown one."""
    return resolve(lookup(ACQUISITIONS, strategy, "acquisition strategy").scorer)(outputs, seed)


def check_budget_and_diversity(budget: int, diversity: float) -> None:
    """ValueError unless budget >= 1 and diversity >= 0 (checked before any model runs)."""
    if budget < 1:
        raise ValueError(f"budget must be at least 1, got {budget}")
    if not diversity >= 0:
        raise ValueError(f"diversity must be 0 or positive, got {diversity}")


def select(scores: np.ndarray, budget: int, embeddings: Optional[np.ndarray] = None,
           diversity: float = 0.0) -> Selection:
    """Picks min(budget, N) sentences: the highest `scores` [N], or with `diversity` w > 0 greedily with
    the cosine penalty of the module docstring on `embeddings` [N, L]. Ties go to the earlier sentence.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"scores must be [N], got shape {scores.shape}")
    check_budget_and_diversity(budget, diversity)
    count = min(budget, len(scores))
    if diversity == 0:
        indices = np.argsort(-scores, kind="stable")[:count]
        return Selection(indices, scores[indices], np.zeros(count))
    if embeddings is None or np.shape(embeddings)[0] != len(scores):
        raise ValueError(f"diversity needs embeddings [N={len(scores)}, L], got "
                         f"{None if embeddings is None else np.shape(embeddings)}")
    vectors = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)  # a zero vector is like none
    spread = scores.max() - scores.min()
    scaled = (scores - scores.min()) / spread if spread > 0 else np.zeros_like(scores)
    closest = np.zeros(len(scores))  # max(0, max cosine) to the sentences picked so far
    available = np.ones(len(scores), dtype=bool)
    indices, penalties = [], []
    for _ in range(count):
        gain = np.where(available, scaled - diversity * closest, -np.inf)
        best = int(np.argmax(gain))  # the first of equal gains
        indices.append(best)
        penalties.append(diversity * closest[best])
        available[best] = False
        closest = np.maximum(closest, unit @ unit[best])
    indices = np.array(indices, dtype=np.int64)
    return Selection(indices, scores[indices], np.array(penalties))
