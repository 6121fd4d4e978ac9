"""NER models: each maps the feature dict to `(latent [B,T,L], probabilities [B,T,C])`.

A model may own its loss: `BertRnnCrfNER.forward_loss(features, labels, training)` returns
`(loss, probabilities)`, and the trainer uses it in place of masked cross-entropy.
"""
from typing import Optional

import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.layers.crf import CRF
from ner.layers.recurrent import RecurrentStack
from ner.models.baseline_ner import BaselineNER
from ner.models.bert_rnn_ner import BertRnnCrfNER, BertRnnNER
from ner.models.bert_ner import BertNER, WordFeatureNER
from ner.models.layer_mix import ScalarMix
from ner.models.heads import MLPHead
from ner.models.rnn_ner import RnnNER
from ner.tagging import FIRST_PIECE_MASK, LabelMap

__all__ = ["BaselineNER", "BertNER", "BertRnnCrfNER", "BertRnnNER", "MLPHead", "RnnNER", "ScalarMix",
           "WordFeatureNER", "build_model", "needs_first_piece_mask"]

# The recurrent cell each type names; `model.rnn.cell` overrides it.
_TYPE_CELLS = {"bilstm": "lstm", "gru": "gru", "bert_gru": "gru", "bert_bilstm_crf": "lstm"}


def build_model(model: ModelConfig, encoder: EncoderConfig, num_labels: int, vocab_size: int,
                label_map: Optional[LabelMap] = None) -> keras.Model:
    """Builds the model that `model.type` names, with its weights created.

    Args:
      model: the model section of the config.
      encoder: the encoder section; loaded only by models that use it.
      num_labels: size of the label set (9 for IO, 17 for BIO on GMB).
      vocab_size: size of the word-piece vocabulary (the embedding rows of the models without encoder).
      label_map: the labels, for the CRF's transition constraints; needed by bert_bilstm_crf with
        `model.crf_constraints`, unused otherwise.
    """
    head = MLPHead(model.head.hidden_units, model.head.latent_dim, num_labels, model.head.dropout_rate,
                   softmax=model.type != "bert_bilstm_crf", kernel_l2=model.head.l2)
    if model.type == "ner_baseline":
        built = BaselineNER(vocab_size, model.embedding_dim, head)
    elif model.type in ("bilstm", "gru"):
        built = RnnNER(vocab_size, model.embedding_dim, _recurrent_stack(model), head)
    elif model.type in ("bert_gru", "bert_bilstm_crf"):
        built = _bert_rnn(model, encoder, head, num_labels, label_map)
    else:
        from ner.encoders.hub_encoder import load_encoder

        layer_mix = ScalarMix() if model.encoder_layers == "mix" else None
        built = BertNER(load_encoder(encoder.handle, trainable=encoder.trainable), head, layer_mix)
    built(_dummy_features(needs_first_piece_mask(built)), training=False)
    return built


def needs_first_piece_mask(model: keras.Model) -> bool:
    """Whether `model` reads the `first_piece_mask` feature (its data: `make_dataset(first_piece_mask=True)`)."""
    return isinstance(model, BertRnnCrfNER)


def _recurrent_stack(model: ModelConfig) -> RecurrentStack:
    rnn = model.rnn
    return RecurrentStack(rnn.cell or _TYPE_CELLS[model.type], rnn.units, rnn.num_layers, rnn.bidirectional,
                          rnn.dropout_rate)


def _bert_rnn(model: ModelConfig, encoder: EncoderConfig, head: MLPHead, num_labels: int,
              label_map: Optional[LabelMap]) -> BertRnnNER:
    """bert_gru, or bert_bilstm_crf with its CRF (constrained by `label_map`'s scheme if configured)."""
    from ner.encoders.hub_encoder import load_encoder

    loaded = load_encoder(encoder.handle, trainable=encoder.trainable)
    layer_mix = ScalarMix() if model.encoder_layers == "mix" else None
    if model.type == "bert_gru":
        return BertRnnNER(loaded, _recurrent_stack(model), head, layer_mix)
    allowed = None
    if model.crf_constraints:
        if label_map is None or label_map.num_labels != num_labels:
            raise ValueError(f"bert_bilstm_crf with model.crf_constraints needs the label map of its {num_labels} "
                             f"labels, got {label_map}")
        allowed = label_map.allowed_transitions()
    return BertRnnCrfNER(loaded, _recurrent_stack(model), head, CRF(num_labels, allowed), layer_mix)


def _dummy_features(with_first_piece_mask: bool) -> dict:
    import tensorflow as tf

    ids = tf.zeros([1, 2], dtype=tf.int32)
    features = {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids)}
    if with_first_piece_mask:
        features[FIRST_PIECE_MASK] = tf.constant([[0, 1]], dtype=tf.int32)
    return features
