"""Every model type of `ner.registry.MODELS` through the same checks (flair's shared model test).

Each is built small by `build_model` on the tiny random encoder (fine-tuned, for the types that have one):
its outputs and `decode` have the protocol's shapes, five training steps on a fixed batch lower its loss,
saved weights load back into a fresh model with identical outputs, and a batch holding an empty row and a
one-word sentence goes through the loss, the forward pass and `decode`. A new type is checked by adding
its row to the registry.
"""
import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from ner import registry
from ner.models import TokenClassifier
from ner.tagging import FIRST_PIECE_MASK, IGNORE_LABEL
from ner.trainers.trainer import Trainer, load_weights
from ner.utils import set_seed
from tests.model_test_utils import LABEL_MAP, batch_spec, features_for, make_model, toy_batch


def empty_and_one_word_batch():
    """Row 0 is an empty sentence ([CLS] [SEP], no word); row 1 the one-word sentence [CLS] w [SEP]."""
    features = {"input_word_ids": [[2, 3, 0], [2, 50, 3]], "input_mask": [[1, 1, 0], [1, 1, 1]],
                "input_type_ids": [[0, 0, 0], [0, 0, 0]], FIRST_PIECE_MASK: [[0, 0, 0], [0, 1, 0]]}
    labels = [[IGNORE_LABEL] * 3, [IGNORE_LABEL, 1, IGNORE_LABEL]]
    return {name: tf.constant(value, tf.int32) for name, value in features.items()}, tf.constant(labels, tf.int32)


@pytest.mark.parametrize("model_type", sorted(registry.MODELS))
def test_registered_model_trains_round_trips_and_reads_empty_rows(model_type, tiny_encoder_handle, tmp_path):
    set_seed(0)
    model = make_model(model_type, tiny_encoder_handle)
    assert isinstance(model, TokenClassifier)
    features, labels = toy_batch()
    features = features_for(model_type, features)
    labelled = labels.numpy() != IGNORE_LABEL
    latent, probabilities = model(features, training=False)
    assert latent.shape == (4, 9, 4) and probabilities.shape == (4, 9, LABEL_MAP.num_labels)
    np.testing.assert_allclose(probabilities.numpy().sum(-1), 1.0, atol=1e-5)
    decoded = model.decode(features).numpy()
    assert decoded.dtype == np.int32 and decoded.shape == (4, 9)
    assert ((decoded[labelled] >= 0) & (decoded[labelled] < LABEL_MAP.num_labels)).all()

    trainer = Trainer(model, tmp_path, outside_id=0, verbose=False)
    before, _ = model.forward_loss(features, labels, training=False)
    encoder_before = [v.numpy() for v in (model.encoder.trainable_variables if model.encoder is not None else [])]
    # Five steps: one step of a fine-tuned encoder under its own (unseeded) dropout can land above the start.
    step = trainer.make_step(None, tf.keras.optimizers.Adam(0.01), batch_spec(features))
    for _ in range(5):
        stats = step(features, labels)
    after, _ = model.forward_loss(features, labels, training=False)
    assert np.isfinite(float(stats["loss"])) and float(after) < float(before)
    assert stats["tokens"] == labelled.sum()
    if model.encoder is not None:  # fine-tuned end to end: the encoder moved too (but its unused pooler)
        moved = [np.abs(v.numpy() - b).max() > 1e-3 for v, b in zip(model.encoder.trainable_variables, encoder_before)]
        assert sum(moved) > 0.8 * len(moved)

    trainer.save_weights()
    reloaded = make_model(model_type, tiny_encoder_handle)
    load_weights(reloaded, tmp_path)
    for original, loaded in zip(model(features, training=False), reloaded(features, training=False)):
        np.testing.assert_allclose(original.numpy(), loaded.numpy(), atol=1e-6)
    np.testing.assert_array_equal(model.decode(features).numpy(), reloaded.decode(features).numpy())

    edge_features, edge_labels = empty_and_one_word_batch()
    edge_features = features_for(model_type, edge_features)
    loss, _ = model.forward_loss(edge_features, edge_labels, training=False)
    _, edge_probabilities = model(edge_features, training=False)
    edge_decoded = model.decode(edge_features).numpy()
    assert np.isfinite(float(loss)) and np.isfinite(edge_probabilities.numpy()).all()
    np.testing.assert_allclose(edge_probabilities.numpy()[1, 1].sum(), 1.0, atol=1e-5)  # the one word
    assert 0 <= edge_decoded[1, 1] < LABEL_MAP.num_labels
