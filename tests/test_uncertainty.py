"""Tests for ner.uncertainty: hand-computed scores, ECE, AUROC (against scikit-learn), rejection curves,
spans, OOD, the config section, MC-dropout prediction on tiny models, and the figures."""
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve as sklearn_roc_curve

import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
import tensorflow as tf

from ner.config import (CONFIG_DIR, EncoderConfig, HeadConfig, ModelConfig, RnnConfig, UncertaintyConfig,
                        load_config)
from ner.encoders.hub_encoder import INPUT_NAMES
from ner.errors import ConfigError
from ner.models import MLPHead, ScalarMix, WordFeatureNER, build_model
from ner.models.bert_ner import WORD_FEATURES
from ner.tagging import FIRST_PIECE_MASK, LabelMap
from ner import registry, uncertainty_reporting
from ner.uncertainty import metrics as um
from ner.prediction import FirstPiecePredictor
from ner.uncertainty.mc_dropout import MCDropoutPredictor
from ner.utils import set_seed
from tests.helpers import PNG_MAGIC

LN2 = math.log(2.0)
VOCAB, LABELS, LENGTH = 20, 3, 6


# ------------------------------------------------------------------------------------------- token scores


def test_entropy_of_one_hot_is_zero_and_of_uniform_is_log_c():
    np.testing.assert_array_equal(um.entropy(np.eye(4)), np.zeros(4))
    assert um.entropy(np.full(4, 0.25)) == pytest.approx(math.log(4))


def test_scores_from_samples_hand_computed():
    # Token 0: the two samples disagree completely; token 1: they agree on a uniform distribution.
    samples = np.array([[[1.0, 0.0], [0.5, 0.5]],
                        [[0.0, 1.0], [0.5, 0.5]]], dtype=np.float32)  # [T=2, n=2, C=2]
    stats = um.summarize_samples(samples)
    np.testing.assert_allclose(stats.mean, [[0.5, 0.5], [0.5, 0.5]])
    np.testing.assert_allclose(stats.variance, [[0.25, 0.25], [0.0, 0.0]])
    np.testing.assert_allclose(stats.expected_entropy, [0.0, LN2])
    assert stats.num_samples == 2
    scores = um.token_scores(stats.mean, stats.expected_entropy)
    np.testing.assert_allclose(scores.smp, [0.5, 0.5])
    np.testing.assert_allclose(scores.entropy, [LN2, LN2])  # same total uncertainty ...
    np.testing.assert_allclose(scores.mutual_information, [LN2, 0.0], atol=1e-7)  # ... different kind
    assert list(scores.as_dict()) == list(um.SCORE_NAMES)


def test_one_hot_mean_has_zero_entropy_and_smp():
    scores = um.token_scores(np.array([[0.0, 1.0, 0.0]]))
    assert scores.entropy[0] == 0.0 and scores.smp[0] == 0.0 and scores.mutual_information[0] == 0.0


def test_single_sample_has_zero_mutual_information_and_matches_a_deterministic_pass():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(5), size=(3, 4)).astype(np.float32)  # [3, 4, 5]
    stats = um.summarize_samples(probabilities[None])
    mc = um.token_scores(stats.mean, stats.expected_entropy)
    single = um.token_scores(probabilities)
    np.testing.assert_array_equal(mc.mutual_information, 0.0)
    for name in um.SCORE_NAMES:
        np.testing.assert_allclose(getattr(mc, name), getattr(single, name), rtol=1e-12)


def test_token_scores_reject_mismatched_expected_entropy():
    with pytest.raises(ValueError, match="expected_entropy has shape"):
        um.token_scores(np.full((2, 3), 1 / 3), np.zeros(3))
    with pytest.raises(ValueError, match="samples must be"):
        um.summarize_samples(np.ones(3))


# -------------------------------------------------------------------------------------------- calibration


def test_ece_hand_example():
    confidence = np.array([0.95, 0.95, 0.55, 0.55, 0.55, 0.25])
    correct = np.array([True, False, True, True, False, False])
    result = um.expected_calibration_error(confidence, correct)
    # 15 bins of width 1/15: 0.95 -> bin 14, 0.55 -> bin 8 (8/15 < 0.55 <= 9/15), 0.25 -> bin 3.
    # ECE = 2/6 |0.5 - 0.95| + 3/6 |2/3 - 0.55| + 1/6 |0 - 0.25| = 0.15 + 0.058333 + 0.041667 = 0.25
    assert result.ece == pytest.approx(0.25)
    assert result.counts.sum() == 6 and list(np.flatnonzero(result.counts)) == [3, 8, 14]
    np.testing.assert_allclose(result.accuracy[[3, 8, 14]], [0.0, 2 / 3, 0.5])
    np.testing.assert_allclose(result.confidence[[3, 8, 14]], [0.25, 0.55, 0.95])
    assert np.isnan(result.accuracy[0]) and np.isnan(result.confidence[0])  # empty bins
    np.testing.assert_allclose(result.bin_edges, np.linspace(0, 1, 16))


def test_ece_bins_are_closed_on_the_right_and_perfect_calibration_scores_zero():
    edges = np.linspace(0, 1, 16)
    result = um.expected_calibration_error(np.array([0.0, edges[3], 1.0]), np.array([0, 1, 1]))
    assert list(np.flatnonzero(result.counts)) == [0, 2, 14]
    half = um.expected_calibration_error(np.full(4, 0.5), np.array([1, 0, 1, 0]))
    assert half.ece == pytest.approx(0.0)
    with pytest.raises(ValueError, match=r"confidence must lie in \[0, 1\]"):
        um.expected_calibration_error(np.array([1.2]), np.array([True]))


# ------------------------------------------------------------------------------------------ ROC and AUROC


def test_auroc_hand_example():
    assert um.auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    # in [0.1, 0.2], out [0.3, 0.2]: 3 pairs ordered, one tie counting 1/2 -> 3.5 / 4
    assert um.ood_detection(np.array([0.1, 0.2]), np.array([0.3, 0.2])).auroc == pytest.approx(0.875)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_roc_curve_match_sklearn_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    positives = rng.random(500) < 0.3
    scores = np.round(rng.random(500) + 0.4 * positives, 1)  # ~15 distinct values: many ties
    assert um.auroc(scores, positives) == pytest.approx(roc_auc_score(positives, scores), abs=1e-12)
    curve = um.roc_curve(scores, positives)
    fpr, tpr, thresholds = sklearn_roc_curve(positives, scores, drop_intermediate=False)
    np.testing.assert_allclose(curve.fpr, fpr)
    np.testing.assert_allclose(curve.tpr, tpr)
    np.testing.assert_allclose(curve.thresholds[1:], thresholds[1:])
    assert curve.thresholds[0] == np.inf
    assert np.trapezoid(curve.tpr, curve.fpr) == pytest.approx(curve.auroc, abs=1e-12)


def test_auroc_degenerate_cases():
    assert math.isnan(um.auroc(np.array([0.1, 0.9]), np.array([True, True])))  # all misclassified
    assert math.isnan(um.auroc(np.array([0.1, 0.9]), np.array([False, False])))  # all correct
    assert um.auroc(np.full(6, 0.3), np.array([1, 0, 1, 0, 0, 0])) == 0.5  # all-equal scores
    assert um.auroc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert um.auroc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    one_class = um.roc_curve(np.array([0.1, 0.9]), np.array([False, False]))
    assert math.isnan(one_class.auroc) and np.isnan(one_class.tpr).all()
    np.testing.assert_array_equal(one_class.fpr, [0.0, 0.5, 1.0])


def test_error_detection_treats_misclassified_tokens_as_positive():
    correct = np.array([True, True, False, False])
    curves = um.error_detection({"good": np.array([0.1, 0.2, 0.8, 0.9]), "bad": np.array([0.9, 0.8, 0.2, 0.1])},
                                correct)
    assert (curves["good"].auroc, curves["bad"].auroc) == (1.0, 0.0)


@pytest.mark.parametrize("scores, flags, message", [
    (np.array([0.1, np.nan]), np.array([0, 1]), "non-finite"),
    (np.array([0.1, 0.2]), np.array([0, 1, 1]), "1-D of equal length"),
    (np.array([0.1, 0.2]), np.array([0, 2]), "boolean"),
    (np.array([]), np.array([], dtype=bool), "empty"),
])
def test_score_inputs_are_checked(scores, flags, message):
    with pytest.raises(ValueError, match=message):
        um.auroc(scores, flags)


# --------------------------------------------------------------------------------- accuracy-rejection


def test_accuracy_rejection_hand_example():
    curve = um.accuracy_rejection_curve(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 1, 0, 0]),
                                        np.array([0.0, 0.25, 0.5, 0.75]))
    np.testing.assert_allclose(curve.accuracy, [0.5, 2 / 3, 1.0, 1.0])  # keeps 4, 3, 2, 1 tokens


def test_accuracy_rejection_credits_a_cut_tie_group_with_its_accuracy():
    scores = np.array([0.1, 0.5, 0.5, 0.5, 0.5])  # one certain token, then a tie of four (half correct)
    curve = um.accuracy_rejection_curve(scores, np.array([1, 1, 0, 1, 0]), np.array([0.0, 0.4, 0.8]))
    # keep 5: 3/5; keep 3: 1 + 2 * 0.5 = 2 -> 2/3; keep 1: the certain token -> 1.
    np.testing.assert_allclose(curve.accuracy, [0.6, 2 / 3, 1.0])


def test_accuracy_rejection_is_flat_for_equal_scores_and_has_100_default_rates():
    correct = np.random.default_rng(0).random(333) < 0.7
    curve = um.accuracy_rejection_curve(np.zeros(333), correct)
    np.testing.assert_allclose(curve.rejection_rates, np.arange(100) / 100)
    np.testing.assert_allclose(curve.accuracy, correct.mean())
    with pytest.raises(ValueError, match="rejection_rates"):
        um.accuracy_rejection_curve(np.zeros(3), np.ones(3, dtype=bool), np.array([1.0]))


# ---------------------------------------------------------------------------------------- spans and OOD


def test_span_uncertainties_use_strict_iob2_spans():
    tags = [["B-geo", "I-geo", "O", "B-per"], ["O", "I-org", "O"]]  # a stray I-org starts no entity
    scores = [np.array([0.1, 0.3, 0.9, 0.2]), np.array([0.5, 0.8, 0.1])]
    spans = um.span_uncertainties(tags, scores)
    assert [(s.sentence, s.start, s.end, s.type) for s in spans] == [(0, 0, 2, "geo"), (0, 3, 4, "per")]
    assert (spans[0].max_score, spans[0].mean_score) == (pytest.approx(0.3), pytest.approx(0.2))
    assert (spans[1].max_score, spans[1].mean_score) == (pytest.approx(0.2), pytest.approx(0.2))
    with pytest.raises(ValueError, match="sentence 1: 3 tags"):
        um.span_uncertainties(tags, [scores[0], np.zeros(2)])


def test_sentence_scores_max_and_mean():
    per_sentence = [np.array([0.1, 0.5]), np.array([0.2])]
    np.testing.assert_allclose(um.sentence_scores(per_sentence, "max"), [0.5, 0.2])
    np.testing.assert_allclose(um.sentence_scores(per_sentence, "mean"), [0.3, 0.2])
    with pytest.raises(ValueError, match="sentence 1: expected a non-empty"):
        um.sentence_scores([np.array([0.1]), np.array([])])
    with pytest.raises(ValueError, match="reduction must be one of"):
        um.sentence_scores(per_sentence, "median")


# -------------------------------------------------------------------------------------------------- config


def test_uncertainty_config_defaults_and_errors(tmp_path):
    config = load_config(CONFIG_DIR / "bert_ner.yaml", environ={})
    assert config.uncertainty == UncertaintyConfig(mc_samples=20, mc_dropout_rate=None, encoder_dropout=False)
    config = load_config(CONFIG_DIR / "bert_ner.yaml", ["uncertainty.encoder_dropout=true"], environ={})
    assert config.uncertainty.encoder_dropout is True
    assert config.uncertainty.sampling_rate(training_rate=0.1) == 0.1  # null: the head's training rate
    config = load_config(CONFIG_DIR / "bert_ner.yaml", ["uncertainty.mc_dropout_rate=0.3"], environ={})
    assert config.uncertainty.sampling_rate(training_rate=0.1) == 0.3
    for override, message in (("uncertainty.mc_samples=0", "key 'uncertainty.mc_samples' must be a positive"),
                              ("uncertainty.mc_dropout_rate=1", "key 'uncertainty.mc_dropout_rate' must be"),
                              ("uncertainty.samples=3", "unknown key 'uncertainty.samples'")):
        with pytest.raises(ConfigError, match=message):
            load_config(CONFIG_DIR / "bert_ner.yaml", [override], environ={})
    with pytest.raises(ConfigError, match="key 'uncertainty.encoder_dropout' must be false for model.type gru"):
        load_config(CONFIG_DIR / "ner_baseline.yaml", ["uncertainty.encoder_dropout=true", "model.type=gru"],
                    environ={})


# --------------------------------------------------------------------------------- MC-dropout prediction


def _features(batch=4, seed=0, first_piece_mask=False):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, size=(batch, LENGTH)).astype(np.int32)
    features = {"input_word_ids": tf.constant(ids), "input_mask": tf.ones_like(ids),
                "input_type_ids": tf.zeros_like(ids)}
    if first_piece_mask:  # words start on pieces 1, 2 and 4; piece 0 is [CLS]
        features[FIRST_PIECE_MASK] = tf.constant([[0, 1, 1, 0, 1, 0]] * batch, tf.int32)
    return features


def _config(model_type, dropout_rate=0.1, encoder_layers="last"):
    return ModelConfig(type=model_type, embedding_dim=8, encoder_layers=encoder_layers, crf_constraints=False,
                       head=HeadConfig(hidden_units=(16, 8), latent_dim=4, dropout_rate=dropout_rate),
                       rnn=RnnConfig(units=6, dropout_rate=0.2))


def _baseline(dropout_rate=0.1):
    return build_model(_config("ner_baseline", dropout_rate), EncoderConfig(), num_labels=LABELS, vocab_size=VOCAB)


def _model_and_features(kind, encoder_handle):
    """A built tiny model of `kind` (a model type, "bert_ner_mix" or "word_features") and a batch of inputs."""
    if kind == "word_features":
        model = WordFeatureNER(MLPHead((16,), 4, LABELS, dropout_rate=0.1), layer_mix=ScalarMix())
        features = {WORD_FEATURES: tf.random.stateless_normal([3, 5, 2, 12], seed=[1, 2], dtype=tf.float16)}
        model(features, training=False)
        return model, features
    config = _config(kind.removesuffix("_mix"), encoder_layers="mix" if kind.endswith("_mix") else "last")
    model = build_model(config, EncoderConfig(handle=encoder_handle), num_labels=LABELS, vocab_size=VOCAB)
    return model, _features(first_piece_mask=registry.model_type(config.type).reads_first_piece_mask)


@pytest.mark.parametrize("kind", ["ner_baseline", "bilstm", "gru", "bert_ner", "bert_ner_mix", "bert_gru",
                                  "bert_bilstm_crf", "word_features"])
def test_rate_zero_samples_equal_the_deterministic_pass(kind, tiny_encoder_handle):
    set_seed(0)
    model, features = _model_and_features(kind, tiny_encoder_handle)
    _, expected = model(features, training=False)
    deterministic, samples = MCDropoutPredictor(model, mc_samples=3, dropout_rate=0.0).predict(features)
    assert samples.shape == (3, *expected.shape)
    np.testing.assert_allclose(deterministic, expected, atol=1e-6)
    for sample in samples:
        np.testing.assert_allclose(sample, expected, atol=1e-6)


def test_call_tiled_equals_the_head_on_a_tiled_batch():
    head = MLPHead((16, 8), 4, LABELS, dropout_rate=0.5)
    features = tf.random.stateless_normal([2, 5, 7], seed=[3, 4])
    expected = head(tf.tile(features, [3, 1, 1]), training=False)
    for got, want in zip(head.call_tiled(features, 3, training=False), expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_positive_rate_samples_differ_and_leave_the_model_unchanged():
    set_seed(0)
    model, features = _baseline(dropout_rate=0.1), _features()
    _, before = model(features, training=False)
    predictor = MCDropoutPredictor(model, mc_samples=5, dropout_rate=0.5)
    deterministic, samples = predictor.predict(features)
    samples = samples.numpy()
    assert all(not np.allclose(samples[0], other) for other in samples[1:])
    np.testing.assert_allclose(samples.sum(-1), 1.0, rtol=1e-5)
    _, after = model(features, training=False)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_allclose(deterministic, before, atol=1e-6)
    assert [layer.rate for layer in model.head.dropout_layers] == [0.1, 0.1]
    assert [layer.rate for layer in predictor.head.dropout_layers] == [0.5, 0.5]
    assert [w.ref() for w in predictor.head.weights] == [w.ref() for w in model.head.weights]  # shared


def test_sampling_head_sees_weights_loaded_after_it_was_made():
    model, features = _baseline(), _features()
    predictor = MCDropoutPredictor(model, mc_samples=2, dropout_rate=0.0)
    model.head.output_layer.bias.assign([5.0, 0.0, 0.0])
    _, samples = predictor.predict(features)
    np.testing.assert_allclose(samples[0], model(features, training=False)[1], atol=1e-6)


def test_vectorised_head_samples_match_a_loop_of_head_calls_in_distribution():
    set_seed(0)
    model, features = _baseline(), _features(batch=2)
    samples_count = 400
    predictor = MCDropoutPredictor(model, mc_samples=samples_count, dropout_rate=0.5)
    _, vectorised = predictor.predict(features)
    inputs = model.embedding(features["input_word_ids"])
    loop = np.stack([predictor.head(inputs, training=True)[1].numpy() for _ in range(samples_count)])
    vectorised = vectorised.numpy()
    assert vectorised.shape == loop.shape == (samples_count, 2, LENGTH, LABELS)
    # The two means estimate the same expectation: they agree within 5 standard errors everywhere.
    standard_error = np.sqrt((vectorised.var(0) + loop.var(0)) / samples_count)
    assert np.all(np.abs(vectorised.mean(0) - loop.mean(0)) <= 5 * standard_error + 1e-6)
    # Each of the T copies of the batch gets its own dropout mask.
    assert np.unique(vectorised[:, 0, 0, 0]).size > samples_count // 2


@pytest.mark.parametrize("kind", ["bert_ner", "bert_bilstm_crf"])
def test_encoder_dropout_runs_through_the_frozen_encoder(kind, tiny_encoder_handle):
    set_seed(0)
    model, features = _model_and_features(kind, tiny_encoder_handle)
    assert not model.encoder.trainable
    _, expected = model(features, training=False)
    # hub.KerasLayer(trainable=False) ignores training=True: dropout never runs through it ...
    encoder_inputs = {name: features[name] for name in INPUT_NAMES}
    np.testing.assert_array_equal(model.encoder(encoder_inputs, training=True)["sequence_output"],
                                  model.encoder(encoder_inputs, training=False)["sequence_output"])
    # ... so with no head dropout, the samples differ only because the SavedModel ran training=True.
    predictor = MCDropoutPredictor(model, mc_samples=4, dropout_rate=0.0, encoder_dropout=True)
    deterministic, samples = predictor.predict(features)
    samples = samples.numpy()
    assert samples.shape == (4, *expected.shape)
    assert all(not np.allclose(samples[0], other, atol=1e-4) for other in samples[1:])
    np.testing.assert_allclose(samples.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(deterministic, expected, atol=1e-6)


def test_predictor_rejects_bad_arguments():
    model = _baseline()
    with pytest.raises(ValueError, match="encoder_dropout needs a model with a TF-Hub encoder"):
        MCDropoutPredictor(model, mc_samples=2, dropout_rate=0.5, encoder_dropout=True)
    with pytest.raises(ValueError, match="mc_samples must be at least 1"):
        MCDropoutPredictor(model, mc_samples=0, dropout_rate=0.5)
    with pytest.raises(ValueError, match=r"dropout_rate must be in \[0, 1\)"):
        MCDropoutPredictor(model, mc_samples=2, dropout_rate=1.0)
    with pytest.raises(TypeError, match="got MLPHead"):
        MCDropoutPredictor(model.head, mc_samples=2, dropout_rate=0.5)


def test_mc_dropout_samples_at_the_training_rate_unless_overridden():
    """`mc_dropout_rate: null` samples with the head itself (trained at 0.2); a number gets a twin head at that rate."""
    model = _baseline(dropout_rate=0.2)
    default = MCDropoutPredictor.from_config(model, UncertaintyConfig(mc_samples=3))
    assert default.head is model.head and default.head.dropout_layers[0].rate == 0.2
    assert default.mc_samples == 3
    override = MCDropoutPredictor.from_config(model, UncertaintyConfig(mc_samples=3, mc_dropout_rate=0.5), mc_samples=7)
    assert override.head is not model.head and override.head.dropout_layers[0].rate == 0.5
    assert override.mc_samples == 7


def test_first_piece_predictor_keeps_labelled_positions_in_row_order_with_mc_statistics():
    set_seed(0)
    model = _baseline()
    predictor = MCDropoutPredictor.from_config(model, UncertaintyConfig(mc_samples=4, mc_dropout_rate=0.3))
    assert (predictor.mc_samples, predictor.head.dropout_layers[0].rate) == (4, 0.3)
    first, second = _features(batch=3, seed=1), _features(batch=2, seed=2)
    second = {name: value[:, :4] for name, value in second.items()}  # a shorter batch, as trimmed batches are
    labels = [np.where(np.arange(LENGTH) % 2, -1, 1)[None].repeat(3, 0).astype(np.int32),
              np.array([[0, 2, -1, 1], [1, 1, 1, -1]], np.int32)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter([(first, labels[0]), (second, labels[1])]),
        output_signature=({name: tf.TensorSpec([None, None], tf.int32) for name in first},
                          tf.TensorSpec([None, None], tf.int32)))
    first_pieces = FirstPiecePredictor(model)
    prediction = first_pieces.predict(dataset, latent_batches=1, mc_predictor=predictor)
    labelled = [batch >= 0 for batch in labels]
    np.testing.assert_array_equal(prediction.row_lengths, [3, 3, 3, 3, 3])
    np.testing.assert_array_equal(prediction.labels, np.concatenate([b[m] for b, m in zip(labels, labelled)]))
    (latent, first_probabilities), (_, second_probabilities) = (model(first, training=False),
                                                               model(second, training=False))
    np.testing.assert_allclose(prediction.probabilities, np.concatenate(
        [first_probabilities.numpy()[labelled[0]], second_probabilities.numpy()[labelled[1]]]), atol=1e-6)
    np.testing.assert_array_equal(prediction.label_ids, prediction.probabilities.argmax(-1))
    np.testing.assert_allclose(prediction.latent, latent.numpy()[labelled[0]], atol=1e-6)  # the first batch only
    assert prediction.mc.mean.shape == prediction.mc.variance.shape == (15, LABELS)
    assert prediction.mc.expected_entropy.shape == (15,) and prediction.mc.num_samples == 4
    np.testing.assert_allclose(prediction.mc.mean.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="no batches"):
        first_pieces.predict(dataset.take(0))


# ------------------------------------------------------------------------------------------------ figures


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_figures_are_written_as_png(tmp_path):
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.4, 1.0, 300)
    correct = rng.random(300) < confidence
    scores = {"entropy": 1 - confidence + rng.normal(0, 0.05, 300), "smp": 1 - confidence}
    calibrations = {"MC off": um.expected_calibration_error(confidence, correct),
                    "MC on": um.expected_calibration_error(confidence ** 1.2, correct)}
    rejection = {name: um.accuracy_rejection_curve(values, correct) for name, values in scores.items()}
    paths = [
        uncertainty_reporting.plot_reliability_diagram(calibrations, tmp_path / "reliability.png", "reliability"),
        uncertainty_reporting.plot_roc_curves(um.error_detection(scores, correct), tmp_path / "roc.png", "errors"),
        uncertainty_reporting.plot_accuracy_rejection(rejection, tmp_path / "rejection.png", "rejection"),
        uncertainty_reporting.plot_ood_histograms(rng.random(50), rng.random(40) + 0.3, tmp_path / "ood.png",
                                                  "OOD", "max token entropy", labels=("GMB", "WNUT-17")),
    ]
    for path in paths:
        _assert_png(path)
    with pytest.raises(ValueError, match="other bins"):
        uncertainty_reporting.plot_reliability_diagram(
            {"a": calibrations["MC off"], "b": um.expected_calibration_error(confidence, correct, num_bins=10)},
            tmp_path / "bad.png", "bad")


def test_first_piece_predictor_keeps_a_crf_models_span_marginals(tiny_encoder_handle):
    """The span marginals are `predict_span_outputs`' at each word's first piece (pieces 1, 2 and 4 of each
    row), from the pass that gives the probabilities and the labels."""
    set_seed(0)
    model, features = _model_and_features("bert_bilstm_crf", tiny_encoder_handle)
    reading = LabelMap.for_scheme("bio", entity_types=("a",)).span_reading()  # LABELS = 3: O, B-a, I-a
    labels = np.where(features[FIRST_PIECE_MASK].numpy() == 1, 0, -1).astype(np.int32)
    dataset = tf.data.Dataset.from_tensors((features, labels))
    prediction = FirstPiecePredictor(model, reading).predict(dataset, probabilities=True, span_marginals=True)
    _, probabilities, label_ids, span_marginals = model.predict_span_outputs(features, reading)
    words = [1, 2, 4]
    np.testing.assert_allclose(prediction.span_marginals, span_marginals.numpy()[:, words].reshape(-1), atol=1e-6)
    np.testing.assert_allclose(prediction.probabilities, probabilities.numpy()[:, words].reshape(-1, LABELS),
                               atol=1e-6)
    np.testing.assert_array_equal(prediction.label_ids, label_ids.numpy()[:, words].reshape(-1))
    with pytest.raises(ValueError, match="span marginals need the labels' span reading"):
        FirstPiecePredictor(model).predict(dataset, span_marginals=True)
    with pytest.raises(ValueError, match="span marginals need a CRF model; BaselineNER has no CRF"):
        FirstPiecePredictor(_baseline(), reading).predict(
            tf.data.Dataset.from_tensors((_features(), labels[:4])), span_marginals=True)
