"""A linear-chain conditional random field (CRF) over the words of a word-piece sequence.

Four parts, each usable and testable alone:

* Word compaction. Only a word's first piece carries a label, so the CRF runs over the labelled positions
  only: `word_positions` gathers each row's first pieces into a left-aligned [B, W] sequence with a word
  mask, and `spread_to_pieces` puts per-word values back on the pieces. Transitions then connect
  consecutive *words*, never a word and its own continuation piece, [CLS], [SEP] or padding.
* Pure functions on word sequences (emission scores [B, W, C], a left-aligned mask [B, W] and the
  parameters `CrfParameters`): `crf_log_partition` (forward algorithm, log-sum-exp over the previous
  tag), `crf_sequence_score`, `crf_marginals` (forward-backward) and `crf_viterbi` (max-product with
  back-pointers). All are vectorised over the batch and loop over the W words with `tf.scan`; masked
  positions change nothing. They need W >= 1 (`word_positions` guarantees it).
* Span marginals: `span_starts` reads a label path as entity spans (`LabelMap.span_reading`, the reading
  of `LabelMap.to_bio` and the evaluator), and `crf_span_marginals` gives each word the probability of the
  span of a given path (e.g. the Viterbi path) that holds it, by a constrained forward-backward.
* `CRF`, the Keras layer that owns the parameters and applies the above to word-piece tensors.

A path y_1..y_n over n words scores start[y_1] + sum_t scores[t, y_t] + sum_t transitions[y_{t-1}, y_t]
+ end[y_n]; p(y) = exp(score(y)) / Z. An optional `AllowedTransitions` (from `LabelMap.allowed_transitions`)
forbids moves such as O -> I-x or B-x -> I-y when decoding: the Viterbi path and the marginals use
`constrained` parameters, in which a forbidden move scores `FORBIDDEN`. The training likelihood uses
the unconstrained parameters, so gold data that breaks a rule (the "bio" scheme keeps a stray I-x from
the data) costs a finite loss instead of an enormous one; the learned transitions still make such moves
unlikely.
"""
from typing import NamedTuple, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ner.tagging import IGNORE_LABEL, AllowedTransitions, SpanReading

FORBIDDEN = -1e4  # score of a forbidden move: exp() underflows to 0 without the NaNs that -inf brings


class CrfParameters(NamedTuple):
    """transitions [C, C] (score of label j after label i at [i, j]), start [C], end [C]; float."""

    transitions: tf.Tensor
    start: tf.Tensor
    end: tf.Tensor


def constrained(parameters: CrfParameters, allowed: AllowedTransitions) -> CrfParameters:
    """The parameters with every move `allowed` forbids set to `FORBIDDEN`."""

    def restrict(values: tf.Tensor, mask) -> tf.Tensor:
        return tf.where(tf.constant(mask, dtype=tf.bool), values, tf.cast(FORBIDDEN, values.dtype))

    return CrfParameters(restrict(parameters.transitions, allowed.transitions),
                         restrict(parameters.start, allowed.start), restrict(parameters.end, allowed.end))


# ----------------------------------------------------------------------------------------------------
# Word compaction


def word_positions(first_piece_mask: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Where each row's words start, left-aligned.

    Args:
      first_piece_mask: [B, T] int or bool, non-zero on each word's first piece (T >= 1).
    Returns:
      positions [B, W] int32, the piece index of word w (0 where the row has fewer than W words), and
      word_mask [B, W] bool, True for real words; W = the most words in a row, at least 1.
    """
    is_first = tf.cast(first_piece_mask, tf.bool)  # [B, T]
    counts = tf.reduce_sum(tf.cast(is_first, tf.int32), axis=1)  # [B]
    width = tf.maximum(tf.reduce_max(tf.concat([counts, [0]], axis=0)), 1)
    # A stable sort on "not a first piece" lists each row's first pieces in order, then the rest.
    order = tf.argsort(tf.cast(~is_first, tf.int32), axis=1, stable=True)[:, :width]  # [B, W]
    word_mask = tf.range(width)[None, :] < counts[:, None]  # [B, W]
    return tf.where(word_mask, order, 0), word_mask


def spread_to_pieces(word_values: tf.Tensor, first_piece_mask: tf.Tensor, fill: tf.Tensor) -> tf.Tensor:
    """Puts per-word values back on the word pieces: word w's value on its first piece, `fill` elsewhere.

    Args:
      word_values: [B, W, ...] as laid out by `word_positions`.
      first_piece_mask: [B, T], the mask `word_positions` was given.
      fill: broadcastable to [B, T, ...], e.g. a scalar.
    Returns:
      [B, T, ...].
    """
    is_first = tf.cast(first_piece_mask, tf.bool)
    word_index = tf.maximum(tf.cumsum(tf.cast(is_first, tf.int32), axis=1) - 1, 0)  # [B, T]
    per_piece = tf.gather(word_values, word_index, batch_dims=1)  # [B, T, ...]
    mask = tf.reshape(is_first, tf.concat([tf.shape(is_first), tf.ones([tf.rank(per_piece) - 2], tf.int32)], 0))
    return tf.where(mask, per_piece, tf.cast(fill, per_piece.dtype))


# ----------------------------------------------------------------------------------------------------
# Pure CRF functions on word sequences: scores [B, W, C], mask [B, W] bool, left-aligned (a prefix per row)


def _time_major(tensor: tf.Tensor) -> tf.Tensor:
    """[B, W, ...] -> [W, B, ...]."""
    return tf.transpose(tensor, tf.concat([[1, 0], tf.range(2, tf.rank(tensor))], 0))


def _next_step(scores: tf.Tensor, mask: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """The scores [B, W, C] and mask [B, W] of position t + 1 at position t; the last position gets a
    masked zero column."""
    scores = tf.concat([scores[:, 1:], tf.zeros_like(scores[:, :1])], axis=1)
    mask = tf.concat([mask[:, 1:], tf.zeros_like(mask[:, :1])], axis=1)
    return scores, mask


def _forward(scores: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters) -> tf.Tensor:
    """alpha [B, W, C]: log of the summed exp-scores of all paths over words 0..t that end in each label
    (start included). A masked position repeats the previous alpha, so the last column is the last word's."""
    is_first = tf.range(tf.shape(scores)[1]) == 0  # [W]

    def step(alpha, inputs):
        score, keep, first = inputs  # [B, C], [B], []
        following = tf.reduce_logsumexp(alpha[:, :, None] + parameters.transitions[None], axis=1) + score
        new = tf.where(first, parameters.start[None] + score, following)
        return tf.where(keep[:, None] | first, new, alpha)

    alphas = tf.scan(step, (_time_major(scores), _time_major(mask), is_first), initializer=tf.zeros_like(scores[:, 0]))
    return _time_major(alphas)


def _backward(scores: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters) -> tf.Tensor:
    """beta [B, W, C]: log of the summed exp-scores of all continuations after word t from each label
    (end included); equal to `end` from the last word on."""
    next_scores, next_mask = _next_step(scores, mask)

    def step(beta, inputs):
        score, keep = inputs  # word t + 1: [B, C], [B]
        earlier = tf.reduce_logsumexp(parameters.transitions[None] + (score + beta)[:, None, :], axis=2)
        return tf.where(keep[:, None], earlier, beta)

    last = tf.broadcast_to(parameters.end[None], tf.shape(scores[:, 0]))
    betas = tf.scan(step, (_time_major(next_scores), _time_major(next_mask)), initializer=last, reverse=True)
    return _time_major(betas)


def _lengths(mask: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)


def crf_log_partition(scores: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters) -> tf.Tensor:
    """log Z [B]: log-sum-exp of the scores of all label paths over each row's words; 0 for no words."""
    alpha_last = _forward(scores, mask, parameters)[:, -1]  # [B, C]
    log_z = tf.reduce_logsumexp(alpha_last + parameters.end[None], axis=1)
    return tf.where(_lengths(mask) > 0, log_z, 0.0)


def crf_sequence_score(scores: tf.Tensor, tags: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters) -> tf.Tensor:
    """The score [B] of the label path `tags` [B, W] int (values at masked positions are ignored)."""
    tags = tf.where(mask, tf.cast(tags, tf.int32), 0)
    weights = tf.cast(mask, scores.dtype)
    emitted = tf.reduce_sum(tf.gather(scores, tags, batch_dims=2) * weights, axis=1)
    moves = tf.gather_nd(parameters.transitions, tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1))  # [B, W - 1]
    moved = tf.reduce_sum(moves * weights[:, 1:], axis=1)
    lengths = _lengths(mask)
    last = tf.gather(tags, tf.maximum(lengths - 1, 0), batch_dims=1)
    ends = tf.gather(parameters.start, tags[:, 0]) + tf.gather(parameters.end, last)
    return emitted + moved + tf.where(lengths > 0, ends, 0.0)


def crf_log_likelihood(scores: tf.Tensor, tags: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters) -> tf.Tensor:
    """log p(tags) [B] = score(tags) - log Z; 0 for a row without words."""
    return crf_sequence_score(scores, tags, mask, parameters) - crf_log_partition(scores, mask, parameters)


def crf_marginals(scores: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters) -> tf.Tensor:
    """p(y_t = c) [B, W, C] by forward-backward; rows sum to 1 on words, 0 at masked positions."""
    alphas = _forward(scores, mask, parameters)
    betas = _backward(scores, mask, parameters)
    log_z = tf.reduce_logsumexp(alphas[:, -1] + parameters.end[None], axis=1)  # [B]
    marginals = tf.exp(alphas + betas - log_z[:, None, None])
    return marginals * tf.cast(mask, scores.dtype)[:, :, None]


def crf_viterbi(scores: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters) -> Tuple[tf.Tensor, tf.Tensor]:
    """The best label path: tags [B, W] int32 (`IGNORE_LABEL` at masked positions) and its score [B]
    (0 for a row without words)."""
    num_labels = tf.shape(scores)[2]
    is_first = tf.range(tf.shape(scores)[1]) == 0
    identity = tf.broadcast_to(tf.range(num_labels)[None], tf.shape(scores[:, 0]))  # [B, C]

    def step(carry, inputs):
        delta, _ = carry
        score, keep, first = inputs
        candidates = delta[:, :, None] + parameters.transitions[None]  # [B, previous C, C]
        following = tf.reduce_max(candidates, axis=1) + score
        new = tf.where(first, parameters.start[None] + score, following)
        pointers = tf.argmax(candidates, axis=1, output_type=tf.int32)
        keep = keep[:, None] & ~first
        return tf.where(keep | first, new, delta), tf.where(keep, pointers, identity)

    deltas, pointers = tf.scan(step, (_time_major(scores), _time_major(mask), is_first),
                               initializer=(tf.zeros_like(scores[:, 0]), identity))  # [W, B, C] each
    final = deltas[-1] + parameters.end[None]  # [B, C]
    best_last = tf.argmax(final, axis=1, output_type=tf.int32)  # [B]
    # Follow the back-pointers from the last word: word t's label is pointers[t + 1][label of word t + 1];
    # masked positions hold the identity, so the last word's label passes through the padding unchanged.
    following_pointers = tf.concat([pointers[1:], identity[None]], axis=0)  # [W, B, C]
    tags = tf.scan(lambda label, pointer: tf.gather(pointer, label, batch_dims=1), following_pointers,
                   initializer=best_last, reverse=True)  # [W, B]
    lengths = _lengths(mask)
    best_score = tf.where(lengths > 0, tf.reduce_max(final, axis=1), 0.0)
    return tf.where(mask, tf.transpose(tags), IGNORE_LABEL), best_score


# ----------------------------------------------------------------------------------------------------
# Span marginals: the probability of each span of a given label path


def span_starts(tags: tf.Tensor, reading: SpanReading) -> tf.Tensor:
    """Where the spans of label paths start, as `reading` (`LabelMap.span_reading`) reads them: [B, W] bool.

    tags: [B, W] int label ids (give padding "O", id 0). True on the first word and on every label that does
    not continue the span of the label before it; an "O" word is a span of its own.
    """
    tags = tf.cast(tags, tf.int32)
    follows = tf.gather_nd(tf.constant(reading.continues, tf.bool),
                           tf.stack([tags[:, :-1], tags[:, 1:]], axis=-1))  # [B, W - 1]
    return tf.concat([tf.ones_like(tags[:, :1], tf.bool), ~follows], axis=1)


def crf_span_marginals(scores: tf.Tensor, mask: tf.Tensor, parameters: CrfParameters, tags: tf.Tensor,
                       reading: SpanReading) -> tf.Tensor:
    """Each word's span marginal [B, W]: the probability that a path, read by `reading`, holds exactly the
    span (start, end and type) of the path `tags` [B, W] int that holds the word; 0 at masked positions.

    A span a..b−1 of type k holds in a path y when y_a..y_{b−1} have type k, y_a does not continue y_{a−1},
    each of y_{a+1}..y_{b−1} continues the label before it, and y_b does not continue y_{b−1}
    (`reading.continues`). Its probability is the exp-sum of those paths over Z: the unconstrained forward
    score alpha_{a−1} enters the span through a non-continuing move, a forward pass restricted to those
    labels and continuing moves runs to b−1, and it leaves through a non-continuing move into the
    unconstrained backward score beta_b (or the end score at the row's last word). An "O" word is a span
    of its own, so it gets its marginal p(y_t = O). Exact for any parameters; one pass over the row serves
    all its spans. It runs in float64 and returns the dtype of `scores`: a span's log-score and log Z are
    large and close, and in float32 their difference would be off by ~1e-5 on long rows.
    """
    dtype = scores.dtype
    scores = tf.cast(scores, tf.float64)
    parameters = CrfParameters(*(tf.cast(values, tf.float64) for values in parameters))
    blocked = tf.constant(-np.inf, tf.float64)
    tags = tf.where(mask, tf.cast(tags, tf.int32), 0)  # padding reads as "O": spans of their own
    starts = span_starts(tags, reading)  # [B, W]
    ends = tf.concat([starts[:, 1:], tf.ones_like(starts[:, :1])], axis=1)  # [B, W]: the span's last word
    continues = tf.constant(reading.continues, tf.bool)  # [C, C]
    continuing = tf.where(continues, parameters.transitions, blocked)  # [C, C]
    leaving = tf.where(continues, blocked, parameters.transitions)  # [C, C]
    label_types = tf.constant(reading.types, tf.int32)  # [C]
    of_span_type = tf.equal(label_types[None, None], tf.gather(label_types, tags)[:, :, None])  # [B, W, C]
    emitted = tf.where(of_span_type, scores, blocked)  # [B, W, C]

    alphas = _forward(scores, mask, parameters)  # [B, W, C]
    betas = _backward(scores, mask, parameters)  # [B, W, C]
    log_z = tf.reduce_logsumexp(alphas[:, -1] + parameters.end[None], axis=1)  # [B]
    previous_alphas = tf.concat([tf.zeros_like(alphas[:, :1]), alphas[:, :-1]], axis=1)  # [B, W, C]
    entered = tf.reduce_logsumexp(previous_alphas[:, :, :, None] + leaving, axis=2)  # [B, W, C]
    is_first = (tf.range(tf.shape(scores)[1]) == 0)[None, :, None]  # [1, W, 1]
    entered = tf.where(is_first, parameters.start[None, None], entered) + emitted

    def step(inside, inputs):
        enter, emit, start = inputs  # [B, C], [B, C], [B]
        carried = tf.reduce_logsumexp(inside[:, :, None] + continuing[None], axis=1) + emit
        return tf.where(start[:, None], enter, carried)

    # inside [B, W, C]: log exp-sum of the paths up to word t that hold the span from its start to t.
    inside = _time_major(tf.scan(step, (_time_major(entered), _time_major(emitted), _time_major(starts)),
                                 initializer=tf.zeros_like(scores[:, 0])))
    next_scores, next_mask = _next_step(scores, mask)
    next_betas = tf.concat([betas[:, 1:], tf.zeros_like(betas[:, :1])], axis=1)
    left = tf.reduce_logsumexp(inside[:, :, :, None] + leaving + (next_scores + next_betas)[:, :, None, :],
                               axis=[2, 3])  # [B, W]
    closed = tf.where(next_mask, left, tf.reduce_logsumexp(inside + parameters.end[None, None], axis=2))
    # Each word takes the value at its span's last word.
    per_word = tf.scan(lambda following, inputs: tf.where(inputs[1], inputs[0], following),
                       (_time_major(closed - log_z[:, None]), _time_major(ends)),
                       initializer=tf.zeros_like(log_z), reverse=True)  # [W, B]
    return tf.cast(tf.where(mask, tf.exp(tf.transpose(per_word)), 0.0), dtype)


# ----------------------------------------------------------------------------------------------------
# The layer


class CRF(keras.layers.Layer):
    """CRF parameters and inference on word-piece tensors; the CRF itself runs over the words.

    Every method takes emission scores [B, T, C] per word piece (unnormalised; only first pieces are
    read) and `first_piece_mask` [B, T] (non-zero on each word's first piece); see the module docstring
    for why the CRF works on words and where the constraints apply.

    Args:
      num_labels: C.
      allowed: optional transition constraints from `LabelMap.allowed_transitions()`.
    """

    def __init__(self, num_labels: int, allowed: Optional[AllowedTransitions] = None, name: str = "crf"):
        super().__init__(name=name, dtype="float32")  # float32 under any mixed policy (`ner.precision`)
        self.num_labels = num_labels
        if allowed is not None and np.shape(allowed.transitions) != (num_labels, num_labels):
            raise ValueError(f"allowed transitions have shape {np.shape(allowed.transitions)}, "
                             f"expected ({num_labels}, {num_labels})")
        self.allowed = allowed
        self.transitions = self.add_weight(name="transitions", shape=(num_labels, num_labels), initializer="zeros")
        self.start = self.add_weight(name="start", shape=(num_labels,), initializer="zeros")
        self.end = self.add_weight(name="end", shape=(num_labels,), initializer="zeros")

    def parameters(self, constrain: bool) -> CrfParameters:
        """The learned parameters; with `constrain` (and constraints given), forbidden moves removed."""
        parameters = CrfParameters(self.transitions, self.start, self.end)
        return constrained(parameters, self.allowed) if constrain and self.allowed is not None else parameters

    def call(self, scores: tf.Tensor, first_piece_mask: tf.Tensor) -> tf.Tensor:
        """Per-label marginal probabilities [B, T, C] of each word on its first piece (forward-backward,
        constrained); 1 / C on every other piece, so each row is a distribution and logs stay finite."""
        positions, word_mask = word_positions(first_piece_mask)
        word_scores = tf.gather(scores, positions, batch_dims=1)  # [B, W, C]
        marginals = crf_marginals(word_scores, word_mask, self.parameters(constrain=True))
        return spread_to_pieces(marginals, first_piece_mask, 1.0 / self.num_labels)

    def loss(self, scores: tf.Tensor, first_piece_mask: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Negative log-likelihood of the gold label paths per word: sum over rows / number of words.

        labels: [B, T] int, a label id on every first piece (`IGNORE_LABEL` elsewhere). With zero
        transitions this equals the masked cross-entropy of softmax(scores). Returns 0 without words.
        """
        positions, word_mask = word_positions(first_piece_mask)
        word_scores = tf.gather(scores, positions, batch_dims=1)
        word_labels = tf.gather(labels, positions, batch_dims=1)  # [B, W]
        check = tf.debugging.assert_greater_equal(
            tf.where(word_mask, word_labels, 0), tf.zeros_like(word_labels),
            message="CRF loss: a first piece has no label (IGNORE_LABEL); every word needs one")
        with tf.control_dependencies([check]):
            log_likelihood = crf_log_likelihood(word_scores, word_labels, word_mask, self.parameters(constrain=False))
        return tf.math.divide_no_nan(-tf.reduce_sum(log_likelihood), tf.reduce_sum(tf.cast(word_mask, scores.dtype)))

    def decode(self, scores: tf.Tensor, first_piece_mask: tf.Tensor) -> tf.Tensor:
        """The Viterbi label ids [B, T] int32 (constrained) on first pieces, `IGNORE_LABEL` elsewhere."""
        positions, word_mask = word_positions(first_piece_mask)
        word_scores = tf.gather(scores, positions, batch_dims=1)
        tags, _ = crf_viterbi(word_scores, word_mask, self.parameters(constrain=True))
        return spread_to_pieces(tags, first_piece_mask, IGNORE_LABEL)

    def span_marginals(self, scores: tf.Tensor, first_piece_mask: tf.Tensor, tags: tf.Tensor,
                       reading: SpanReading) -> tf.Tensor:
        """Each word's span marginal in the path `tags` [B, T] (label ids on first pieces, e.g. `decode`'s),
        read by `reading`: [B, T] on first pieces (`crf_span_marginals`, constrained), 0 elsewhere."""
        positions, word_mask = word_positions(first_piece_mask)
        word_scores = tf.gather(scores, positions, batch_dims=1)
        word_tags = tf.gather(tags, positions, batch_dims=1)
        marginals = crf_span_marginals(word_scores, word_mask, self.parameters(constrain=True), word_tags, reading)
        return spread_to_pieces(marginals, first_piece_mask, 0.0)

    def best_path_log_probability(self, scores: tf.Tensor, first_piece_mask: tf.Tensor) -> tf.Tensor:
        """log p [B] of each row's Viterbi path (constrained, the path `decode` gives): its score minus
        log Z; 0 for a row without words."""
        positions, word_mask = word_positions(first_piece_mask)
        word_scores = tf.gather(scores, positions, batch_dims=1)
        parameters = self.parameters(constrain=True)
        _, best_score = crf_viterbi(word_scores, word_mask, parameters)
        return best_score - crf_log_partition(word_scores, word_mask, parameters)
