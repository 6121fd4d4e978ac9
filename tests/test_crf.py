"""The CRF (ner.layers.crf) against brute-force enumeration of every label path on small cases.

Small means at most 5 labels and 5 words, so all C ** W paths can be listed: the log-partition, the
marginals, the Viterbi path and the span marginals must match the enumeration exactly (to float32
precision).
"""
import itertools

import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner.layers.crf import (CRF, CrfParameters, constrained, crf_log_likelihood, crf_log_partition, crf_marginals,
                            crf_sequence_score, crf_span_marginals, crf_viterbi, span_starts, spread_to_pieces,
                            word_positions)
from ner.tagging import IGNORE_LABEL, TAG_SCHEMES, LabelMap
from ner.losses import masked_cross_entropy
from ner.uncertainty.entities import entity_spans


def random_case(seed, num_labels, lengths, width=5):
    """Scores [B, W, C] and parameters drawn at random; the mask holds `lengths` words per row."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(len(lengths), width, num_labels)).astype(np.float32)
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    parameters = CrfParameters(*(rng.normal(size=shape).astype(np.float32)
                                 for shape in [(num_labels, num_labels), (num_labels,), (num_labels,)]))
    return scores, mask, parameters


def enumerate_paths(scores, length, parameters, allowed=None):
    """Every label path over the first `length` words with its score (forbidden paths left out)."""
    transitions, start, end = (np.asarray(p, dtype=np.float64) for p in parameters)
    paths = []
    for path in itertools.product(range(scores.shape[1]), repeat=length):
        if allowed is not None and not (allowed.start[path[0]] and allowed.end[path[-1]] and
                                        all(allowed.transitions[a][b] for a, b in zip(path, path[1:]))):
            continue
        score = start[path[0]] + end[path[-1]] + sum(scores[t, c] for t, c in enumerate(path))
        paths.append((path, score + sum(transitions[a, b] for a, b in zip(path, path[1:]))))
    return paths


def brute_force(scores, length, parameters, allowed=None):
    """log Z, the best path and its score, and the marginals [length, C] by enumeration."""
    paths = enumerate_paths(scores, length, parameters, allowed)
    values = np.array([score for _, score in paths])
    log_z = np.logaddexp.reduce(values)
    best_path, best_score = max(paths, key=lambda item: item[1])
    marginals = np.zeros((length, scores.shape[1]))
    for (path, _), probability in zip(paths, np.exp(values - log_z)):
        marginals[np.arange(length), list(path)] += probability
    return log_z, best_path, best_score, marginals


CASES = [(seed, num_labels, lengths) for seed, (num_labels, lengths) in enumerate(
    [(2, [5, 1, 3]), (3, [5, 4, 2]), (4, [5, 2, 1]), (4, [3, 5, 5]), (3, [1, 1, 1])])]


@pytest.mark.parametrize("seed, num_labels, lengths", CASES)
def test_partition_marginals_and_viterbi_match_brute_force(seed, num_labels, lengths):
    scores, mask, parameters = random_case(seed, num_labels, lengths)
    log_z = crf_log_partition(scores, mask, parameters).numpy()
    marginals = crf_marginals(scores, mask, parameters).numpy()
    tags, best = (t.numpy() for t in crf_viterbi(scores, mask, parameters))
    for row, length in enumerate(lengths):
        expected_log_z, expected_path, expected_best, expected_marginals = brute_force(scores[row], length, parameters)
        assert log_z[row] == pytest.approx(expected_log_z, rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(marginals[row, :length], expected_marginals, atol=1e-5)
        assert tuple(tags[row, :length]) == expected_path
        assert best[row] == pytest.approx(expected_best, rel=1e-5, abs=1e-5)
        assert (tags[row, length:] == IGNORE_LABEL).all() and (marginals[row, length:] == 0).all()


@pytest.mark.parametrize("seed, num_labels, lengths", CASES[:3])
def test_sequence_score_and_likelihood_match_brute_force(seed, num_labels, lengths):
    scores, mask, parameters = random_case(seed, num_labels, lengths)
    rng = np.random.default_rng(seed + 100)
    tags = rng.integers(0, num_labels, size=mask.shape).astype(np.int32)
    tags[~mask] = IGNORE_LABEL
    path_scores = crf_sequence_score(scores, tags, mask, parameters).numpy()
    log_likelihood = crf_log_likelihood(scores, tags, mask, parameters).numpy()
    for row, length in enumerate(lengths):
        by_path = dict(enumerate_paths(scores[row], length, parameters))
        expected = by_path[tuple(tags[row, :length])]
        assert path_scores[row] == pytest.approx(expected, rel=1e-5, abs=1e-5)
        log_z = np.logaddexp.reduce(list(by_path.values()))
        assert log_likelihood[row] == pytest.approx(expected - log_z, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_constraints_match_brute_force_over_allowed_paths(seed):
    allowed = LabelMap.for_scheme("bio", entity_types=("a",)).allowed_transitions()  # O, B-a, I-a
    scores, mask, parameters = random_case(seed, 3, [5, 3, 1])
    scores[:, :, 2] += 3.0  # make I-a tempting everywhere, including at the start and after O
    limited = constrained(parameters, allowed)
    log_z = crf_log_partition(scores, mask, limited).numpy()
    marginals = crf_marginals(scores, mask, limited).numpy()
    tags = crf_viterbi(scores, mask, limited)[0].numpy()
    for row, length in enumerate([5, 3, 1]):
        expected_log_z, expected_path, _, expected_marginals = brute_force(scores[row], length, parameters, allowed)
        assert log_z[row] == pytest.approx(expected_log_z, rel=1e-5, abs=1e-4)
        np.testing.assert_allclose(marginals[row, :length], expected_marginals, atol=1e-5)
        assert tuple(tags[row, :length]) == expected_path
        assert marginals[row, 0, 2] < 1e-6  # I-a cannot start a sentence


def test_masked_positions_change_nothing_and_rows_are_independent():
    scores, mask, parameters = random_case(7, 4, [5, 2, 3, 0])
    tags = np.where(mask, np.random.default_rng(0).integers(0, 4, mask.shape), IGNORE_LABEL).astype(np.int32)
    noisy_scores, noisy_tags = scores.copy(), tags.copy()
    noisy_scores[~mask] = 100.0 * np.random.default_rng(1).normal(size=noisy_scores[~mask].shape)
    noisy_tags[~mask] = 3
    for clean, noisy in [
        (crf_log_likelihood(scores, tags, mask, parameters),
         crf_log_likelihood(noisy_scores, noisy_tags, mask, parameters)),
        (crf_marginals(scores, mask, parameters), crf_marginals(noisy_scores, mask, parameters)),
        (crf_viterbi(scores, mask, parameters)[0], crf_viterbi(noisy_scores, mask, parameters)[0]),
    ]:
        np.testing.assert_allclose(clean.numpy(), noisy.numpy(), atol=1e-6)
    # The batch computes each row as if it were alone and cut to its own length.
    batched = crf_log_likelihood(scores, tags, mask, parameters).numpy()
    for row, length in enumerate([5, 2, 3]):
        alone = crf_log_likelihood(scores[row:row + 1, :length], tags[row:row + 1, :length],
                                   mask[row:row + 1, :length], parameters).numpy()
        assert batched[row] == pytest.approx(alone[0], rel=1e-6, abs=1e-6)
    assert batched[3] == 0.0  # a row without words
    assert crf_viterbi(scores, mask, parameters)[1].numpy()[3] == 0.0


def test_word_positions_and_spread_to_pieces():
    first = np.array([[0, 1, 0, 1, 1, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.int32)
    positions, word_mask = (t.numpy() for t in word_positions(first))
    np.testing.assert_array_equal(positions, [[1, 3, 4], [1, 2, 0], [0, 0, 0]])
    np.testing.assert_array_equal(word_mask, [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    values = np.arange(9, dtype=np.float32).reshape(3, 3) + 1
    spread = spread_to_pieces(values, first, -1.0).numpy()
    np.testing.assert_array_equal(spread, [[-1, 1, -1, 2, 3, -1], [-1, 4, 5, -1, -1, -1], [-1] * 6])
    empty_positions, empty_mask = word_positions(np.zeros((2, 3), np.int32))
    assert empty_positions.shape == (2, 1) and not empty_mask.numpy().any()  # W is at least 1


def piece_batch():
    """Word-piece emission scores [2, 7, 3] with first pieces at columns 1, 2, 4 / 1, 3 and labels there."""
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(2, 7, 3)).astype(np.float32)
    first = np.array([[0, 1, 1, 0, 1, 0, 0], [0, 1, 0, 1, 0, 0, 0]], dtype=np.int32)
    labels = np.full((2, 7), IGNORE_LABEL, dtype=np.int32)
    labels[0, [1, 2, 4]] = [1, 2, 0]
    labels[1, [1, 3]] = [0, 1]
    return scores, first, labels


def test_layer_runs_on_the_words_of_a_piece_sequence():
    scores, first, labels = piece_batch()
    crf = CRF(3)
    for variable, seed in zip((crf.transitions, crf.start, crf.end), range(3)):
        variable.assign(np.random.default_rng(seed).normal(size=variable.shape))
    probabilities = crf(scores, first).numpy()
    assert probabilities.shape == (2, 7, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities[first == 0], 1.0 / 3)
    parameters = crf.parameters(constrain=False)
    _, best_path, _, marginals = brute_force(scores[0, [1, 2, 4]], 3, parameters)
    np.testing.assert_allclose(probabilities[0, [1, 2, 4]], marginals, atol=1e-5)
    decoded = crf.decode(scores, first).numpy()
    assert tuple(decoded[0, [1, 2, 4]]) == best_path
    assert (decoded[first == 0] == IGNORE_LABEL).all()
    # The loss is the per-word mean NLL of the gold paths on the words alone.
    words = [(0, [1, 2, 4]), (1, [1, 3])]
    expected = -sum(crf_log_likelihood(scores[row:row + 1, cols], labels[row:row + 1, cols],
                                       np.ones((1, len(cols)), bool), parameters).numpy()[0] for row, cols in words)
    assert float(crf.loss(scores, first, labels)) == pytest.approx(expected / 5, rel=1e-5)


def test_best_path_log_probability_matches_brute_force_with_constraints():
    scores, first, _ = piece_batch()
    crf = CRF(3, LabelMap.for_scheme("bio", entity_types=("a",)).allowed_transitions())
    for variable, seed in zip((crf.transitions, crf.start, crf.end), range(3)):
        variable.assign(np.random.default_rng(seed).normal(size=variable.shape))
    log_probability = crf.best_path_log_probability(scores, first).numpy()
    for row, columns in [(0, [1, 2, 4]), (1, [1, 3])]:
        log_z, _, best_score, _ = brute_force(scores[row, columns], len(columns), crf.parameters(constrain=False),
                                              crf.allowed)
        assert log_probability[row] == pytest.approx(best_score - log_z, abs=1e-5)


def test_loss_with_zero_transitions_is_masked_cross_entropy():
    scores, first, labels = piece_batch()
    expected = masked_cross_entropy(labels, tf.nn.softmax(scores))
    assert float(CRF(3).loss(scores, first, labels)) == pytest.approx(float(expected), rel=1e-5)


def test_constrained_layer_never_decodes_an_invalid_bio_path():
    label_map = LabelMap.for_scheme("bio", entity_types=("a", "b"))  # O B-a I-a B-b I-b
    crf = CRF(label_map.num_labels, allowed=label_map.allowed_transitions())
    rng = np.random.default_rng(4)
    scores = rng.normal(scale=3.0, size=(16, 6, 5)).astype(np.float32)
    scores[..., [2, 4]] += 2.0  # I- labels look best locally
    first = np.ones((16, 6), np.int32)
    for row in crf.decode(scores, first).numpy():
        label_map.check_sequence([label_map.id_to_label(i) for i in row])
    marginals = crf(scores, first).numpy()
    assert marginals[:, 0, [2, 4]].max() < 1e-6


def test_gradients_reach_every_parameter_and_the_scores():
    scores, first, labels = piece_batch()
    scores = tf.Variable(scores)
    crf = CRF(3, allowed=LabelMap.for_scheme("bio", entity_types=("a",)).allowed_transitions())
    with tf.GradientTape() as tape:
        loss = crf.loss(scores, first, labels)
    gradients = tape.gradient(loss, [scores, crf.transitions, crf.start, crf.end])
    for gradient in gradients:
        assert gradient is not None and np.isfinite(gradient.numpy()).all() and np.abs(gradient.numpy()).sum() > 0
    assert np.abs(gradients[0].numpy()[first == 0]).max() == 0  # pieces that are not first pieces: no gradient


def test_loss_rejects_a_first_piece_without_label():
    scores, first, labels = piece_batch()
    labels[0, 2] = IGNORE_LABEL
    with pytest.raises(tf.errors.InvalidArgumentError, match="first piece has no label"):
        CRF(3).loss(scores, first, labels)


def test_compiled_with_unknown_shapes_including_one_word():
    crf = CRF(3)
    spec = [tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([None, None], tf.int32),
            tf.TensorSpec([None, None], tf.int32)]
    step = tf.function(lambda s, f, y: (crf.loss(s, f, y), crf(s, f), crf.decode(s, f)), input_signature=spec)
    scores, first, labels = piece_batch()
    for cut in (7, 2):  # the second batch has a single word per row
        loss, probabilities, decoded = step(scores[:, :cut], first[:, :cut], labels[:, :cut])
        assert np.isfinite(float(loss)) and probabilities.shape == (2, cut, 3) and decoded.shape == (2, cut)


def path_spans(label_map, path):
    """Each word's span `(start, end, type)` in `to_bio`'s reading of the label ids `path`; None for "O"."""
    spans = [None] * len(path)
    for _, start, end, kind in entity_spans([label_map.to_bio([label_map.id_to_label(i) for i in path])]):
        spans[start:end] = [(start, end, kind)] * (end - start)
    return spans


@pytest.mark.parametrize("scheme", TAG_SCHEMES)
def test_span_starts_are_where_to_bio_starts_a_span(scheme):
    """Random label paths, read as `to_bio` reads them: a span starts at each "B-" and each "O"."""
    label_map = LabelMap.for_scheme(scheme, entity_types=("a", "b"))
    tags = np.random.default_rng(5).integers(0, label_map.num_labels, size=(64, 5))
    starts = span_starts(tags, label_map.span_reading()).numpy()
    expected = [[not tag.startswith("I-") for tag in label_map.to_bio([label_map.id_to_label(i) for i in row])]
                for row in tags]
    np.testing.assert_array_equal(starts, expected)


@pytest.mark.parametrize("scheme, constrain", [("io", False), ("bio", True), ("bio", False), ("iob1", True),
                                               ("iob1", False), ("biluo", True), ("biluo", False)])
def test_span_marginals_match_enumeration(scheme, constrain):
    """On random scores, parameters and label paths (rows of 4, 3 and 1 of 4 words; two entity types), each
    entity word gets the summed probability of the label paths whose `to_bio` reading holds its span exactly
    (start, end and type), each "O" word its marginal p(y = O), padding 0. Without constraints a path may be
    one that `to_bio` reads leniently (a stray "I-a" starts a span); with them, forbidden paths weigh
    exp(FORBIDDEN)."""
    label_map = LabelMap.for_scheme(scheme, entity_types=("a", "b"))
    lengths = [4, 3, 1]
    for seed in range(3):
        scores, mask, parameters = random_case(seed, label_map.num_labels, lengths, width=4)
        if constrain:
            parameters = constrained(parameters, label_map.allowed_transitions())
        tags = np.random.default_rng(seed).integers(0, label_map.num_labels, size=mask.shape)
        got = crf_span_marginals(scores, mask, parameters, np.where(mask, tags, IGNORE_LABEL),
                                 label_map.span_reading()).numpy()
        for row, length in enumerate(lengths):
            paths = enumerate_paths(scores[row], length, parameters)
            values = np.array([score for _, score in paths])
            weights = np.exp(values - np.logaddexp.reduce(values))
            readings = [path_spans(label_map, path) for path, _ in paths]
            for position, span in enumerate(path_spans(label_map, tags[row, :length])):
                expected = sum(weight for (path, _), reading, weight in zip(paths, readings, weights)
                               if (path[position] == 0 if span is None else reading[position] == span))
                assert got[row, position] == pytest.approx(expected, abs=1e-6), (row, position, span)
        assert not got[~mask].any()


def test_layer_span_marginals_sit_on_first_pieces():
    scores, first, _ = piece_batch()
    label_map = LabelMap.for_scheme("bio", entity_types=("a",))
    crf = CRF(3, label_map.allowed_transitions())
    for variable, seed in zip((crf.transitions, crf.start, crf.end), range(3)):
        variable.assign(np.random.default_rng(seed).normal(size=variable.shape))
    decoded = crf.decode(scores, first)
    got = crf.span_marginals(scores, first, decoded, label_map.span_reading()).numpy()
    assert not got[first == 0].any()
    for row, columns in [(0, [1, 2, 4]), (1, [1, 3])]:
        words = crf_span_marginals(scores[row:row + 1, columns], np.ones((1, len(columns)), bool),
                                   crf.parameters(constrain=True), decoded.numpy()[row:row + 1, columns],
                                   label_map.span_reading()).numpy()[0]
        np.testing.assert_allclose(got[row, columns], words, atol=1e-6)
