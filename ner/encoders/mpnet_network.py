"""An MPNet encoder network in tf_keras, laid out like Hugging Face `MPNetModel` so its weights map one to one.

MPNet is BERT with three differences, and everything else (embedding LayerNorm, attention, feed-forward,
pooler) comes from `ner.encoders.bert_network`:

- no token-type embeddings: `input_type_ids` is accepted, for the TF-Hub interface, and ignored;
- RoBERTa-style positions: real tokens are numbered `pad_position + 1, pad_position + 2, ...` and padding
  takes position `pad_position` (the checkpoint's `pad_token_id`). Hugging Face finds padding by comparing
  word ids with the pad id; this network takes it from `input_mask`, which is the same for a well-formed
  batch;
- a relative-position bias: each pair (query, key) falls into one of `relative_attention_num_buckets`
  T5-style buckets of `key - query` (`relative_position_buckets`), and one learned [buckets, N] table,
  shared by all layers, adds a per-head bias to the attention logits. It is computed once per call.

The network takes and returns exactly the TF-Hub BERT encoder tensors (see `build_mpnet_network`) and is
exported by `ner.encoders.bert_export`.

Shapes: B batch, T sequence length, H hidden size, N attention heads.
"""
import dataclasses
import math
from typing import Optional

import tensorflow as tf
import tf_keras as keras

from ner.encoders.bert_network import BertEmbeddings, TransformerConfig, encoder_inputs, transformer_stack


@dataclasses.dataclass(frozen=True, kw_only=True)
class MPNetConfig(TransformerConfig):
    """The architecture of an MPNet encoder (the subset of a Hugging Face `config.json` the network needs)."""

    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    pad_position: int = 1  # position id of padding; real tokens start at pad_position + 1


def _check_buckets(num_buckets: int, max_distance: int) -> None:
    if num_buckets < 4 or max_distance <= num_buckets // 4:
        raise ValueError(
            f"need num_buckets >= 4 and max_distance > num_buckets // 4, got {num_buckets} and {max_distance}"
        )


def relative_position_buckets(relative_position: tf.Tensor, num_buckets: int, max_distance: int) -> tf.Tensor:
    """Bidirectional T5-style bucket of each relative position `key - query` (int32, any shape).

    Keys after the query use buckets `num_buckets // 2` and up, keys at or before it the lower half. Within
    a half of `half` buckets, distances below `half // 2` have a bucket each; longer ones share
    logarithmically wider buckets up to `max_distance`, and all beyond it the last bucket of the half.
    Returns int32 buckets in [0, num_buckets) with the shape of `relative_position`.
    """
    _check_buckets(num_buckets, max_distance)
    half = num_buckets // 2
    exact = half // 2
    relative_position = tf.convert_to_tensor(relative_position, tf.int32)
    distance = tf.abs(relative_position)
    # log(d / exact) / log(max_distance / exact) spreads d in [exact, max_distance) over the other buckets.
    # max(d, exact) keeps log() finite where the exact bucket is taken anyway.
    scaled = tf.math.log(tf.cast(tf.maximum(distance, exact), tf.float32) / exact) / math.log(max_distance / exact)
    far = tf.minimum(exact + tf.cast(scaled * (half - exact), tf.int32), half - 1)
    return tf.where(relative_position > 0, half, 0) + tf.where(distance < exact, distance, far)


class MPNetEmbeddings(BertEmbeddings):
    """Word + position embeddings with MPNet's position ids (no token types), then LayerNorm and dropout."""

    def __init__(self, config: MPNetConfig, name: str = "embeddings"):
        super().__init__(config, type_vocab_size=0, name=name)
        self._pad_position = config.pad_position

    def call(self, word_ids: tf.Tensor, input_mask: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
        """word_ids, input_mask: int32 [B, T]. Returns float32 [B, T, H]."""
        mask = tf.cast(tf.not_equal(input_mask, 0), tf.int32)
        positions = tf.cumsum(mask, axis=1) * mask + self._pad_position  # [B, T]: real tokens pad+1, pad+2, ...
        return super().call(word_ids, position_ids=positions, training=training)


class RelativePositionBias(keras.layers.Layer):
    """The attention bias of every (head, query, key), from a learned [buckets, N] table: [1, N, T, T]."""

    def __init__(self, config: MPNetConfig, name: str = "relative_position_bias"):
        super().__init__(name=name)
        self._config = config
        _check_buckets(config.relative_attention_num_buckets, config.relative_attention_max_distance)

    def build(self, input_shape: tf.TensorShape) -> None:
        c = self._config
        self.embeddings = self.add_weight("embeddings", shape=[c.relative_attention_num_buckets, c.num_heads])
        super().build(input_shape)

    def call(self, input_mask: tf.Tensor) -> tf.Tensor:
        """input_mask: int32 [B, T], read only for T. Returns float32 [1, N, T, T]."""
        positions = tf.range(tf.shape(input_mask)[1])
        relative = positions[tf.newaxis, :] - positions[:, tf.newaxis]  # [T query, T key]: key - query
        c = self._config
        buckets = relative_position_buckets(
            relative, c.relative_attention_num_buckets, c.relative_attention_max_distance
        )  # [T, T]
        bias = tf.gather(self.embeddings, buckets)  # [T, T, N]
        return tf.einsum("qkn->nqk", bias)[tf.newaxis]  # no transpose: see bert_network.TokenDense


def build_mpnet_network(config: MPNetConfig) -> keras.Model:
    """Wires the functional encoder; layers are `embeddings`, `relative_position_bias`,
    `transformer_layer_{i}` and `pooler`.

    Inputs: dict of int32 [B, T] `input_word_ids`, `input_mask`, `input_type_ids` (ignored).
    Outputs: `sequence_output` [B, T, H], `pooled_output` [B, H] and `encoder_outputs`, a list of
    `num_layers` tensors [B, T, H], as `ner.encoders.bert_network.transformer_stack` returns them.
    """
    inputs = encoder_inputs()
    embedded = MPNetEmbeddings(config)(inputs["input_word_ids"], inputs["input_mask"])
    bias = RelativePositionBias(config)(inputs["input_mask"])
    outputs = transformer_stack(config, embedded, inputs["input_mask"], attention_bias=bias)
    return keras.Model(inputs=inputs, outputs=outputs, name="mpnet_encoder")
