"""Mixed precision (`training.precision`): 16-bit layers, float32 softmax, CRF and loss, loss scaling for float16."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import ner  # noqa: F401
from ner.config import EncoderConfig
from ner.models import build_model
from ner.trainers.trainer import Trainer
from ner.utils import set_seed
from tests.model_test_utils import LABEL_MAP, VOCAB, features_for, model_config, toy_batch

# Largest |p_mixed - p_float32| allowed on the toy batch with equal weights: 16-bit compute keeps about
# 3 (bfloat16: 8-bit mantissa) or 4 (float16) significant digits in the hidden layers.
TOLERANCE = {"mixed_bfloat16": 3e-2, "mixed_float16": 5e-3}


def build(model_type: str, handle: str, precision: str):
    return build_model(model_config(model_type), EncoderConfig(handle=handle, trainable=True), LABEL_MAP.num_labels,
                       VOCAB, label_map=LABEL_MAP, precision=precision)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("model_type", ["bert_ner", "bert_crf", "bilstm"])
def test_mixed_outputs_are_float32_finite_and_close_to_float32(tiny_encoder_handle, model_type, precision):
    set_seed(0)
    reference = build(model_type, tiny_encoder_handle, "float32")
    mixed = build(model_type, tiny_encoder_handle, precision)
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy applied to the build only
    mixed.set_weights(reference.get_weights())
    assert all(variable.dtype == tf.float32 for variable in mixed.variables if variable.dtype.is_floating)
    features, labels = toy_batch()
    features = features_for(model_type, features)
    hidden = mixed.head.hidden_layers[0]
    assert hidden.compute_dtype == precision.removeprefix("mixed_")
    latent, probabilities = mixed(features, training=False)
    expected_latent, expected = reference(features, training=False)
    assert latent.dtype == probabilities.dtype == tf.float32
    assert np.isfinite(probabilities.numpy()).all()
    np.testing.assert_allclose(probabilities.numpy(), expected.numpy(), atol=TOLERANCE[precision])
    loss, _ = mixed.forward_loss(features, labels, training=False)
    expected_loss, _ = reference.forward_loss(features, labels, training=False)
    assert loss.dtype == tf.float32
    assert float(loss) == pytest.approx(float(expected_loss), rel=10 * TOLERANCE[precision])


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_training_lowers_the_loss_and_float16_scales_it(tmp_path, tiny_encoder_handle, precision):
    set_seed(0)
    model = build("bert_ner", tiny_encoder_handle, precision)
    features, labels = toy_batch(with_first_pieces=False)
    data = tf.data.Dataset.from_tensors((features, labels)).repeat(8)
    trainer = Trainer(model, tmp_path, outside_id=0, verbose=False, precision=precision)
    history = trainer.fit(data, epochs=3, learning_rate=0.01)
    losses = [row["loss"] for row in history]
    # 16-bit rounding may let one epoch's mean rise a little; three epochs must still end lower.
    assert np.isfinite(losses).all() and losses[2] < losses[0]
    saved = [name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(tmp_path / "checkpoints"))]
    assert any("loss_scale" in name for name in saved) == (precision == "mixed_float16")
    if precision == "mixed_float16":
        with pytest.raises(ValueError, match="one loss scale cannot serve two optimisers"):
            trainer.fit(data, epochs=4, learning_rate=0.01, encoder_learning_rate=1e-4)
