"""Choosing pool sentences to label (ner.selection): each score against hand-computed values, the pick
order, the diversity term, and the models' log-probability of their decoded labels."""
import math

import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner.errors import ConfigError
from ner.experiment import train
from ner.layers.crf import word_positions
from ner.registry import ACQUISITIONS
from ner.preprocessor import Sentence
from ner.prediction import FirstPiecePredictions
from ner.selection import PoolOutputs, acquisition_scores, pool_outputs, select
from ner.tagging import FIRST_PIECE_MASK, OUTSIDE
from ner.uncertainty.metrics import summarize_samples
from tests.helpers import give_run_random_scores, tiny_config
from tests.model_test_utils import features_for, make_model, toy_batch
from tests.test_crf import brute_force


def test_mnlp_is_minus_the_log_probability_per_word():
    outputs = PoolOutputs(word_counts=np.array([2, 4, 1]), log_probability=np.array([-1.0, -1.0, -0.5]))
    np.testing.assert_allclose(acquisition_scores("mnlp", outputs), [0.5, 0.25, 0.5])


def test_bald_is_the_mean_mutual_information_of_the_words():
    # Two samples of three words: sentence 0 = words 0-1, sentence 1 = word 2.
    samples = np.array([[[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]],
                        [[0.0, 1.0], [0.5, 0.5], [0.1, 0.9]]])  # [T=2, n=3, C=2]
    outputs = PoolOutputs(word_counts=np.array([2, 1]), mc=summarize_samples(samples))
    # Word 0: mean (.5, .5), H = ln 2, samples one-hot: E[H] = 0. Word 1: every sample uniform, MI = 0.
    # Word 2: mean (.5, .5), each sample has H(.9, .1).
    h_09 = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))
    expected = [(math.log(2) + 0.0) / 2, math.log(2) - h_09]
    np.testing.assert_allclose(acquisition_scores("bald", outputs), expected, rtol=1e-12)
    # The same from NumPy directly: H(mean) - mean over samples of H.
    entropy = lambda p: -(p * np.log(np.where(p > 0, p, 1))).sum(-1)  # noqa: E731
    mutual_information = entropy(samples.mean(0)) - entropy(samples).mean(0)
    np.testing.assert_allclose(expected, [mutual_information[:2].mean(), mutual_information[2]], rtol=1e-12)


def test_entropy_is_the_mean_word_entropy():
    probabilities = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]])
    outputs = PoolOutputs(word_counts=np.array([1, 2]), probabilities=probabilities)
    np.testing.assert_allclose(acquisition_scores("entropy", outputs), [0.0, (math.log(3) + math.log(2)) / 2])


def test_random_is_seeded_and_reads_only_the_word_counts():
    outputs = PoolOutputs(word_counts=np.ones(5, dtype=np.int64))
    np.testing.assert_array_equal(acquisition_scores("random", outputs, seed=7), np.random.default_rng(7).random(5))
    assert acquisition_scores("random", outputs, seed=7)[0] != acquisition_scores("random", outputs, seed=8)[0]


def test_unknown_strategy_and_missing_outputs_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown acquisition strategy 'margin'; expected one of mnlp, bald, entropy"):
        acquisition_scores("margin", PoolOutputs(word_counts=np.array([1])))
    for strategy, acquisition in ACQUISITIONS.items():
        if acquisition.reads is not None:
            with pytest.raises(ValueError, match=f"reads PoolOutputs.{acquisition.reads}, which was not computed"):
                acquisition_scores(strategy, PoolOutputs(word_counts=np.array([1])))


def test_top_scores_first_ties_to_the_earlier_and_a_budget_above_the_pool_takes_all():
    chosen = select(np.array([0.2, 0.9, 0.5, 0.9]), budget=3)
    assert chosen.indices.tolist() == [1, 3, 2] and chosen.scores.tolist() == [0.9, 0.9, 0.5]
    assert chosen.penalties.tolist() == [0.0, 0.0, 0.0]
    assert select(np.array([0.2, 0.9, 0.5]), budget=10).indices.tolist() == [1, 2, 0]
    assert select(np.zeros(0), budget=4).indices.tolist() == []
    with pytest.raises(ValueError, match="budget must be at least 1, got 0"):
        select(np.array([1.0]), budget=0)


def test_diversity_skips_a_near_copy_until_the_rest_is_picked():
    scores = np.array([1.0, 0.9, 0.0])  # rescaled: the same
    embeddings = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # 1 points like 0; 2 is orthogonal
    assert select(scores, 3, embeddings, diversity=0.0).indices.tolist() == [0, 1, 2]
    # w = 1: after 0, sentence 1 gains 0.9 - 1 · cos 0 = -0.1 < sentence 2's 0 - 0.
    chosen = select(scores, 3, embeddings, diversity=1.0)
    assert chosen.indices.tolist() == [0, 2, 1] and chosen.penalties.tolist() == [0.0, 0.0, 1.0]
    # w = 0.05: sentence 1 still gains 0.85.
    chosen = select(scores, 3, embeddings, diversity=0.05)
    assert chosen.indices.tolist() == [0, 1, 2] and chosen.penalties.tolist() == [0.0, 0.05, 0.0]
    with pytest.raises(ValueError, match=r"diversity needs embeddings \[N=3, L\], got None"):
        select(scores, 3, diversity=0.5)


def test_pool_outputs_add_up_the_rows_of_each_sentence():
    """Sentence 0 is cut into rows 0 and 1 (2 + 1 words), sentence 1 is row 2 (3 words)."""
    latent = np.array([[1.0, 0.0], [3.0, 0.0], [2.0, 6.0], [0.0, 3.0], [0.0, 3.0], [0.0, 0.0]])  # [6 words, L=2]
    prediction = FirstPiecePredictions(labels=np.zeros(6, np.int32), row_lengths=np.array([2, 1, 3]),
                                       log_probability=np.array([-1.0, -0.5, -2.0]), latent=latent)
    asked = {}

    class Predictor:
        def predict(self, dataset, **options):
            asked.update(options)
            return prediction

    outputs = pool_outputs(Predictor(), "rows", np.array([0, 0, 1]), "log_probability", embeddings=True)
    assert outputs.word_counts.tolist() == [3, 3] and outputs.log_probability.tolist() == [-1.5, -2.0]
    np.testing.assert_allclose(outputs.embeddings, [[2.0, 2.0], [0.0, 2.0]])
    assert asked["log_probability"] and not asked["probabilities"] and asked["latent_batches"] == 3
    np.testing.assert_allclose(acquisition_scores("mnlp", outputs), [0.5, 2 / 3])
    with pytest.raises(ValueError, match="the dataset read 3 rows; row_sentences names 2"):
        pool_outputs(Predictor(), "rows", np.array([0, 1]), "log_probability")


def test_softmax_model_log_probability_is_the_sum_of_log_max_probabilities(tiny_encoder_handle):
    model = make_model("bert_ner", tiny_encoder_handle)
    features, labels = toy_batch()
    features = features_for("bert_ner", features)
    labelled = labels.numpy() >= 0
    _, probabilities = model(features, training=False)
    expected = [np.log(probabilities.numpy()[row][labelled[row]].max(-1)).sum() for row in range(4)]
    latent, log_probability = model.decoded_log_probability(features, tf.constant(labelled))
    np.testing.assert_allclose(log_probability, expected, rtol=1e-5)
    np.testing.assert_array_equal(latent, model.predict_outputs(features)[0])


def test_crf_model_log_probability_is_its_viterbi_paths_against_brute_force(tiny_encoder_handle):
    model = make_model("bert_crf", tiny_encoder_handle)
    rng = np.random.default_rng(0)
    for variable in (model.crf.transitions, model.crf.start, model.crf.end):
        variable.assign(rng.normal(size=variable.shape))
    features, labels = toy_batch()
    _, scores = model.latent_and_scores(features, training=False)
    positions, word_mask = word_positions(features[FIRST_PIECE_MASK])
    word_scores = tf.gather(scores, positions, batch_dims=1).numpy().astype(np.float64)  # [B, W, C]
    parameters = model.crf.parameters(constrain=False)
    allowed = model.crf.allowed
    assert allowed is not None  # the paths are the constrained ones, as `decode` gives them
    latent, log_probability = model.decoded_log_probability(features, tf.constant(labels.numpy() >= 0))
    np.testing.assert_array_equal(latent, model.predict_outputs(features)[0])
    log_probability = log_probability.numpy()
    for row, length in enumerate(word_mask.numpy().sum(1)):
        log_z, _, best_score, _ = brute_force(word_scores[row], length, parameters, allowed)
        assert log_probability[row] == pytest.approx(best_score - log_z, abs=1e-4)
        assert log_probability[row] < 0


@pytest.fixture(scope="module")
def crf_tagger(tmp_path_factory, tiny_encoder_handle):
    """A tiny bert_crf run with seeded random output weights and transitions (varied paths)."""
    config = tiny_config(tmp_path_factory.mktemp("crf"), tiny_encoder_handle, "bert_crf", "bio", epochs=1)
    return give_run_random_scores(train(config, verbose=False))


def test_a_crf_taggers_mnlp_is_minus_its_viterbi_path_log_probability_per_word(crf_tagger):
    words = ["the", "army", "said", "today"]
    chosen = crf_tagger.select([words], budget=1, strategy="mnlp")
    features, labels = next(iter(crf_tagger._dataset([words])[2]))
    _, scores = crf_tagger.model.latent_and_scores(features, training=False)
    word_scores = scores.numpy()[0][labels.numpy()[0] >= 0].astype(np.float64)  # [4, C]
    crf = crf_tagger.model.crf
    log_z, _, best_score, _ = brute_force(word_scores, 4, crf.parameters(constrain=False), crf.allowed)
    assert chosen.indices.tolist() == [0]
    assert chosen.scores[0] == pytest.approx(-(best_score - log_z) / 4, abs=1e-5)


def test_a_sentence_cut_into_rows_adds_the_log_probabilities_of_its_rows(crf_tagger):
    words = ("the president said " * 8).split()  # 24 words; rows hold at most 14 (max_seq_length 16)
    rows = crf_tagger.featurizer.featurize([Sentence(0, tuple(words), (OUTSIDE,) * 24)]).num_words.tolist()
    assert rows == [14, 10]
    first, second = words[:14], words[14:]
    chosen = crf_tagger.select([words, first, second], budget=3, strategy="mnlp")
    score = dict(zip(chosen.indices.tolist(), chosen.scores))
    assert score[0] * 24 == pytest.approx(score[1] * 14 + score[2] * 10, rel=1e-5)
    with pytest.raises(ValueError, match=r"pool sentences \[1\] \(0-based\) have no words"):
        crf_tagger.select([words, []], budget=1)
    with pytest.raises(ValueError, match="diversity must be 0 or positive, got -0.5"):
        crf_tagger.select([words], budget=1, diversity=-0.5)


def test_a_copy_of_a_chosen_sentence_gets_the_full_diversity_penalty(crf_tagger):
    pool = [["john", "said", "today"], ["the", "army", "said", "today"], ["john", "said", "today"]]
    chosen = crf_tagger.select(pool, budget=3, strategy="mnlp", diversity=2.0)
    order = chosen.indices.tolist()
    assert sorted(order) == [0, 1, 2] and order.index(0) < order.index(2)  # ties go to the earlier copy
    assert chosen.penalties[order.index(2)] == pytest.approx(2.0)  # cosine 1 with sentence 0
    assert chosen.scores[order.index(0)] == chosen.scores[order.index(2)]
