"""Toy models and batches the model tests share: every model type built small on the tiny random encoder
of conftest.py, and a batch of word pieces whose labels a model can learn."""
import numpy as np
import tensorflow as tf

from ner import registry
from ner.config import EncoderConfig, HeadConfig, ModelConfig, RnnConfig
from ner.models import build_model
from ner.tagging import FIRST_PIECE_MASK, IGNORE_LABEL, LabelMap

LABEL_MAP = LabelMap.for_scheme("bio", entity_types=("a", "b"))  # O B-a I-a B-b I-b
VOCAB = 179  # the tiny test vocabulary's size


def model_config(model_type: str, cell=None, num_layers=1) -> ModelConfig:
    return ModelConfig(type=model_type, embedding_dim=12, head=HeadConfig(hidden_units=(16,), latent_dim=4,
                                                                          dropout_rate=0.0),
                       rnn=RnnConfig(cell=cell, units=6, num_layers=num_layers, dropout_rate=0.0))


def make_model(model_type: str, encoder_handle: str, cell=None, num_layers=1):
    return build_model(model_config(model_type, cell, num_layers), EncoderConfig(handle=encoder_handle, trainable=True),
                       LABEL_MAP.num_labels, VOCAB, label_map=LABEL_MAP)


def batch_spec(features):
    """The (features, labels) signature of toy batches, with unknown batch size and length."""
    return (tf.nest.map_structure(lambda t: tf.TensorSpec([None, None], t.dtype), features),
            tf.TensorSpec([None, None], tf.int32))


def toy_batch(seed: int = 0, with_first_pieces: bool = True):
    """4 rows of 9 pieces with 9, 7, 5 and 3 real ones ([CLS] first, [SEP] last); random first pieces
    between them, labelled by word id so that a model can learn the labels."""
    rng = np.random.default_rng(seed)
    lengths = np.array([9, 7, 5, 3])
    real = np.arange(9)[None, :] < lengths[:, None]
    ids = np.where(real, rng.integers(5, VOCAB, size=real.shape), 0).astype(np.int32)
    ids[:, 0], ids[np.arange(4), lengths - 1] = 2, 3
    first = real & (rng.random(real.shape) < 0.7)
    first[:, 0], first[np.arange(4), lengths - 1], first[:, 1] = False, False, True
    labels = np.where(first, ids % LABEL_MAP.num_labels, IGNORE_LABEL).astype(np.int32)
    features = {"input_word_ids": ids, "input_mask": real.astype(np.int32), "input_type_ids": np.zeros_like(ids)}
    if with_first_pieces:
        features[FIRST_PIECE_MASK] = first.astype(np.int32)
    return {name: tf.constant(value) for name, value in features.items()}, tf.constant(labels)


def features_for(model_type_name, features):
    """The toy features a model type reads: `first_piece_mask` only for the CRF model."""
    return {name: value for name, value in features.items()
            if name != FIRST_PIECE_MASK or registry.model_type(model_type_name).reads_first_piece_mask}
