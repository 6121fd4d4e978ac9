"""The sequence taggers (bilstm, gru, bert_gru, bert_bilstm_crf) and the trainer options they use.

Every model is built by `build_model` from a small config (`tests.model_test_utils`); the checks every
registered model type passes (shapes, a training step, saved weights, empty rows) are in
test_registered_models.py. The BERT models run the tiny random encoder of conftest.py.
"""
import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner import registry
from ner.config import EncoderConfig
from ner.layers.recurrent import RecurrentStack
from ner.models import BertRnnCrfNER, BertRnnNER, RnnNER, build_model
from ner.tagging import FIRST_PIECE_MASK, IGNORE_LABEL
from ner.trainers.trainer import Trainer, WarmupLinearDecay
from ner.utils import set_seed
from tests.model_test_utils import LABEL_MAP, VOCAB, batch_spec, features_for, make_model, model_config, toy_batch

MODEL_TYPES = ("bilstm", "gru", "bert_gru", "bert_bilstm_crf")


@pytest.fixture(scope="module")
def built(tiny_encoder_handle):
    set_seed(0)
    return {model_type: make_model(model_type, tiny_encoder_handle) for model_type in MODEL_TYPES}


def test_build_model_makes_the_named_architecture(built, tiny_encoder_handle):
    assert type(built["bilstm"]) is RnnNER and type(built["gru"]) is RnnNER
    assert type(built["bert_gru"]) is BertRnnNER and type(built["bert_bilstm_crf"]) is BertRnnCrfNER
    cells = {model_type: type(model.rnn.recurrent_layers[0].forward_layer).__name__
             for model_type, model in built.items()}
    assert cells == {"bilstm": "LSTM", "gru": "GRU", "bert_gru": "GRU", "bert_bilstm_crf": "LSTM"}
    assert built["bert_bilstm_crf"].crf.allowed == LABEL_MAP.allowed_transitions()
    overridden = make_model("bilstm", tiny_encoder_handle, cell="gru", num_layers=2)  # rnn.cell overrides the type
    assert [type(layer.forward_layer).__name__ for layer in overridden.rnn.recurrent_layers] == ["GRU", "GRU"]
    assert [registry.model_type(name).reads_first_piece_mask for name in built] == [False, False, False, True]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_padding_does_not_change_real_positions(built, model_type):
    """Masked recurrent layers: a row padded with junk pieces gives the same outputs on its real pieces."""
    model = built[model_type]
    features, _ = toy_batch()
    short = {name: value[3:, :3] for name, value in features.items()}  # the 3-piece row alone, no padding
    junk = {name: value[3:] for name, value in features.items()}
    junk["input_word_ids"] = tf.tensor_scatter_nd_update(junk["input_word_ids"], [[0, 5]], [77])
    outputs_short = [t.numpy() for t in model(features_for(model_type, short), training=False)]
    outputs_padded = [t.numpy()[:, :3] for t in model(features_for(model_type, junk), training=False)]
    for alone, padded in zip(outputs_short, outputs_padded):
        np.testing.assert_allclose(alone, padded, atol=1e-5)


def test_crf_model_owns_its_loss_and_decodes_valid_bio(built):
    model = built["bert_bilstm_crf"]
    features, labels = toy_batch()
    loss, probabilities = model.forward_loss(features, labels, training=False)
    _, outputs = model.head(model.head_inputs(features, training=False), training=False)
    scores = model.emission_scores(outputs, features)
    assert float(loss) == pytest.approx(float(model.crf.loss(scores, features[FIRST_PIECE_MASK], labels)))
    np.testing.assert_allclose(probabilities.numpy(), model(features, training=False)[1].numpy(), atol=1e-6)
    offset = np.log(np.arange(1, LABEL_MAP.num_labels + 1, dtype=np.float32))  # a logit adjustment
    adjusted_loss, adjusted_probabilities = model.forward_loss(features, labels, training=False, score_offset=offset)
    assert float(adjusted_loss) == pytest.approx(
        float(model.crf.loss(scores + offset, features[FIRST_PIECE_MASK], labels)), rel=1e-5)
    assert float(adjusted_loss) != pytest.approx(float(loss), rel=1e-3)
    np.testing.assert_allclose(adjusted_probabilities.numpy(), probabilities.numpy(), atol=1e-6)  # plain marginals
    first = features[FIRST_PIECE_MASK].numpy().astype(bool)
    np.testing.assert_allclose(probabilities.numpy()[~first], 1.0 / LABEL_MAP.num_labels)
    decoded = model.decode(features).numpy()
    assert (decoded[~first] == IGNORE_LABEL).all()
    for row, mask in zip(decoded, first):
        LABEL_MAP.check_sequence([LABEL_MAP.id_to_label(i) for i in row[mask]])


def test_head_under_a_crf_must_give_scores(built, tiny_encoder_handle):
    model = built["bert_bilstm_crf"]
    with pytest.raises(ValueError, match="softmax=False"):
        BertRnnCrfNER(model.encoder, model.rnn, built["bert_gru"].head, model.crf)
    with pytest.raises(ValueError, match="needs the label map"):
        build_model(model_config("bert_bilstm_crf"), EncoderConfig(handle=tiny_encoder_handle), 5, VOCAB)


def test_recurrent_stack_rejects_unknown_cells():
    with pytest.raises(ner.ConfigError, match="unknown recurrent cell 'rnn'; expected one of lstm, gru"):
        RecurrentStack("rnn", 4, 1, True, 0.0)


# ----------------------------------------------------------------------------------------------------
# Trainer options: gradient clipping, encoder learning-rate schedule


def test_warmup_linear_decay():
    schedule = WarmupLinearDecay(1.0, warmup_steps=4, total_steps=12)
    rates = [float(schedule(step)) for step in range(13)]
    np.testing.assert_allclose(rates[:4], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(rates[4:], [1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0.0])
    assert float(WarmupLinearDecay(2.0, 0, 4)(0)) == 2.0
    with pytest.raises(ValueError, match="warmup_steps < total_steps"):
        WarmupLinearDecay(1.0, 5, 5)


def test_clip_norm_bounds_each_update(tiny_encoder_handle, tmp_path):
    features, labels = toy_batch(with_first_pieces=False)
    moves = {}
    for clip_norm in (None, 1e-3):
        set_seed(0)
        model = make_model("ner_baseline", tiny_encoder_handle)  # clipping is the trainer's: any model will do
        before = [v.numpy() for v in model.trainable_variables]
        step = Trainer(model, tmp_path, 0, verbose=False).make_step(
            None, tf.keras.optimizers.SGD(1.0), batch_spec(features), clip_norm=clip_norm)
        step(features, labels)
        moves[clip_norm] = np.sqrt(sum(((v.numpy() - b) ** 2).sum() for v, b in zip(model.trainable_variables, before)))
    assert moves[1e-3] == pytest.approx(1e-3, rel=1e-3)  # SGD with rate 1 moves by the clipped gradient
    assert moves[None] > 10 * moves[1e-3]


def test_encoder_trains_on_its_own_schedule(tiny_encoder_handle, tmp_path):
    """With encoder_learning_rate the encoder moves at its (warming-up) rate, the rest at learning_rate;
    without it the encoder moves at learning_rate (test_one_training_step_...)."""
    features, labels = toy_batch()
    data = tf.data.Dataset.from_tensors((dict(features), labels)).repeat(2)  # 2 steps per epoch
    set_seed(0)
    model = make_model("bert_bilstm_crf", tiny_encoder_handle)
    encoder_before = [v.numpy() for v in model.encoder.trainable_variables]
    crf_before = model.crf.transitions.numpy()
    Trainer(model, tmp_path, 0, verbose=False).fit(data, epochs=2, learning_rate=0.01, clip_norm=1.0,
                                                   encoder_learning_rate=1e-7, encoder_warmup_fraction=0.5)
    encoder_change = max(np.abs(v.numpy() - b).max() for v, b in zip(model.encoder.trainable_variables, encoder_before))
    assert encoder_change < 1e-5  # Adam moves each weight by about its rate per step: 4 steps of <= 1e-7
    assert np.abs(model.crf.transitions.numpy() - crf_before).max() > 1e-3  # the CRF trains at 0.01
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-2")
