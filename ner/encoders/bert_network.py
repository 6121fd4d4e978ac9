"""A BERT encoder network in tf_keras, laid out like Hugging Face `BertModel` so its weights map one to one.

The network takes the TF-Hub BERT inputs (`input_word_ids`, `input_mask`, `input_type_ids`, each int32
[B, T]) and returns the TF-Hub BERT outputs (`sequence_output` [B, T, H], `pooled_output` [B, H],
`encoder_outputs`, a list of L tensors [B, T, H]). It holds no head and is never trained alone; it only
exists to be exported as a SavedModel by `ner.encoders.bert_export`.

Its layers (embeddings, transformer block, pooler) are shared with `ner.encoders.mpnet_network`, which
differs from BERT only in its positions and the relative-position bias it adds to every attention layer.

Shapes: B batch, T sequence length, H hidden size, N attention heads, D = H / N head size, I intermediate size.
"""
import dataclasses
import math
from typing import Callable, Dict, Optional

import tensorflow as tf
import tf_keras as keras

ACTIVATIONS: Dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "gelu_new": lambda x: tf.nn.gelu(x, approximate=True),
    "relu": tf.nn.relu,
}

# Added to attention scores at padded key positions (as in the original BERT); exp() of it is 0 in float32.
_MASK_ADDER = -10000.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransformerConfig:
    """What the embeddings and transformer blocks of a post-LayerNorm BERT-family encoder need."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_position: int
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12


@dataclasses.dataclass(frozen=True, kw_only=True)
class BertConfig(TransformerConfig):
    """The architecture of a BERT encoder (the subset of a Hugging Face `config.json` the network needs)."""

    type_vocab_size: int


class BertEmbeddings(keras.layers.Layer):
    """Word + position (+ token-type) embeddings, then LayerNorm and dropout.

    BERT numbers positions 0, 1, ..., T-1 and has token types; MPNet passes its own position ids and
    `type_vocab_size=0`, which leaves out the token-type table.
    """

    def __init__(self, config: TransformerConfig, type_vocab_size: int, name: str = "embeddings"):
        super().__init__(name=name)
        self._config = config
        self._type_vocab_size = type_vocab_size
        self.layer_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="layer_norm")
        self.dropout = keras.layers.Dropout(config.hidden_dropout)

    def build(self, input_shape: tf.TensorShape) -> None:
        c = self._config
        self.word_embeddings = self.add_weight("word_embeddings", shape=[c.vocab_size, c.hidden_size])
        self.position_embeddings = self.add_weight("position_embeddings", shape=[c.max_position, c.hidden_size])
        if self._type_vocab_size:
            self.type_embeddings = self.add_weight("type_embeddings", shape=[self._type_vocab_size, c.hidden_size])
        super().build(input_shape)

    def call(
        self,
        word_ids: tf.Tensor,
        type_ids: Optional[tf.Tensor] = None,
        position_ids: Optional[tf.Tensor] = None,
        training: Optional[bool] = None,
    ) -> tf.Tensor:
        """word_ids, type_ids: int32 [B, T]; position_ids: int32 [B, T], by default 0, ..., T-1 in every row.

        `type_ids` is required when the layer has token types and ignored otherwise. Every position must be
        below max_position. Returns float32 [B, T, H].
        """
        if position_ids is None:
            position_ids = tf.range(tf.shape(word_ids)[1])[tf.newaxis]  # [1, T]
        check = tf.debugging.assert_less(
            tf.reduce_max(position_ids),
            self._config.max_position,
            message="sequence length exceeds max_position_embeddings",
        )
        with tf.control_dependencies([check]):  # fail with this message before any shape error
            x = tf.gather(self.word_embeddings, word_ids)
            positions = tf.gather(self.position_embeddings, position_ids)
        if self._type_vocab_size:  # summed in BERT's order (word, type, position): the same floats as before
            x += tf.gather(self.type_embeddings, type_ids)
        x += positions
        return self.dropout(self.layer_norm(x), training=training)


class TokenDense(keras.layers.Layer):
    """A dense layer on every position, [B, T, in] -> [B, T, units], with `keras.layers.Dense`'s `kernel`
    [in, units] and `bias` [units].

    Like `Dense`, it multiplies the positions flattened to [B * T, in], but without `tf.tensordot`'s
    transpose. The block has no transpose at all: differentiated through the exported SavedModel, one made
    XLA take the token ids as compile-time constants and compile a fine-tuned encoder anew for every batch
    (`tests/test_encoder.py`). An `EinsumDense` compiles once too but encoded 5–9 % slower on the CPU.
    """

    def __init__(self, units: int, name: str):
        super().__init__(name=name)
        self.units = units

    def build(self, input_shape: tf.TensorShape) -> None:
        self.kernel = self.add_weight("kernel", shape=[input_shape[-1], self.units])
        self.bias = self.add_weight("bias", shape=[self.units], initializer="zeros")
        super().build(input_shape)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        b, t = tf.shape(x)[0], tf.shape(x)[1]
        flat = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), self.kernel) + self.bias  # [B * T, units]
        return tf.reshape(flat, [b, t, self.units])


class TransformerBlock(keras.layers.Layer):
    """One post-LayerNorm BERT layer: self-attention, add & norm, feed-forward, add & norm."""

    def __init__(self, config: TransformerConfig, name: str):
        super().__init__(name=name)
        if config.hidden_size % config.num_heads:
            raise ValueError(f"hidden_size {config.hidden_size} is not a multiple of num_heads {config.num_heads}")
        if config.hidden_act not in ACTIVATIONS:
            raise ValueError(f"hidden_act {config.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")
        h, self._num_heads = config.hidden_size, config.num_heads
        self._head_size = h // config.num_heads
        self._activation = ACTIVATIONS[config.hidden_act]
        self.query = TokenDense(h, name="query")
        self.key = TokenDense(h, name="key")
        self.value = TokenDense(h, name="value")
        self.attention_output = TokenDense(h, name="attention_output")
        self.attention_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="attention_norm")
        self.intermediate = TokenDense(config.intermediate_size, name="intermediate")
        self.output_dense = TokenDense(h, name="output")
        self.output_norm = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name="output_norm")
        self.attention_dropout = keras.layers.Dropout(config.attention_dropout)
        self.hidden_dropout = keras.layers.Dropout(config.hidden_dropout)

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        """[B, T, H] -> [B, T, N, D]."""
        b, t = tf.shape(x)[0], tf.shape(x)[1]
        return tf.reshape(x, [b, t, self._num_heads, self._head_size])

    def call(
        self,
        hidden: tf.Tensor,
        input_mask: tf.Tensor,
        attention_bias: Optional[tf.Tensor] = None,
        training: Optional[bool] = None,
    ) -> tf.Tensor:
        """hidden: float32 [B, T, H]; input_mask: int32 [B, T], 1 for real tokens. Returns [B, T, H].

        attention_bias: optional float32 [1 or B, N, T, T] added to the scaled attention logits (MPNet's
        relative-position bias).
        """
        b, t = tf.shape(hidden)[0], tf.shape(hidden)[1]
        q = self._split_heads(self.query(hidden))  # [B, T, N, D]
        k = self._split_heads(self.key(hidden))
        v = self._split_heads(self.value(hidden))
        scores = tf.einsum("bqnd,bknd->bnqk", q, k) / math.sqrt(self._head_size)  # [B, N, T, T]
        if attention_bias is not None:
            scores += attention_bias
        key_mask = tf.cast(input_mask, scores.dtype)[:, tf.newaxis, tf.newaxis, :]  # [B, 1, 1, T]
        probs = tf.nn.softmax(scores + (1.0 - key_mask) * _MASK_ADDER, axis=-1)
        probs = self.attention_dropout(probs, training=training)
        context = tf.einsum("bnqk,bknd->bqnd", probs, v)  # [B, T, N, D]
        context = tf.reshape(context, [b, t, self._num_heads * self._head_size])  # [B, T, H]
        attended = self.hidden_dropout(self.attention_output(context), training=training)
        attended = self.attention_norm(attended + hidden)
        ff = self.output_dense(self._activation(self.intermediate(attended)))  # [B, T, I] -> [B, T, H]
        ff = self.hidden_dropout(ff, training=training)
        return self.output_norm(ff + attended)


class BertPooler(keras.layers.Layer):
    """tanh(Dense) on the first ([CLS]) position: [B, T, H] -> [B, H]."""

    def __init__(self, hidden_size: int, name: str = "pooler"):
        super().__init__(name=name)
        self.dense = keras.layers.Dense(hidden_size, activation="tanh", name="dense")

    def call(self, sequence_output: tf.Tensor) -> tf.Tensor:
        return self.dense(sequence_output[:, 0, :])


INPUT_NAMES = ("input_word_ids", "input_mask", "input_type_ids")


def encoder_inputs() -> Dict[str, tf.Tensor]:
    """The TF-Hub BERT inputs as symbolic Keras inputs: int32 [B, T] each, B and T unknown."""
    return {name: keras.Input(shape=(None,), dtype=tf.int32, name=name) for name in INPUT_NAMES}


def transformer_stack(
    config: TransformerConfig,
    embedded: tf.Tensor,
    input_mask: tf.Tensor,
    attention_bias: Optional[tf.Tensor] = None,
) -> Dict[str, object]:
    """Runs `num_layers` blocks (`transformer_layer_{i}`) and the `pooler` on embedded inputs [B, T, H].

    Returns the TF-Hub BERT outputs: `sequence_output` [B, T, H], `pooled_output` [B, H] and
    `encoder_outputs`, a list of `num_layers` tensors [B, T, H] whose last element is `sequence_output`.
    `attention_bias` (optional, [1 or B, N, T, T]) is added to the attention logits of every block.
    """
    hidden, encoder_outputs = embedded, []
    for i in range(config.num_layers):
        block = TransformerBlock(config, name=f"transformer_layer_{i}")
        hidden = block(hidden, input_mask, attention_bias=attention_bias)
        encoder_outputs.append(hidden)
    pooled = BertPooler(config.hidden_size)(hidden)
    return {"sequence_output": hidden, "pooled_output": pooled, "encoder_outputs": encoder_outputs}


def build_bert_network(config: BertConfig) -> keras.Model:
    """Wires the functional encoder; layers are named `embeddings`, `transformer_layer_{i}` and `pooler`.

    Inputs: dict of int32 [B, T] `input_word_ids`, `input_mask`, `input_type_ids` (B and T unknown).
    Outputs: see `transformer_stack`.
    """
    inputs = encoder_inputs()
    embedded = BertEmbeddings(config, config.type_vocab_size)(inputs["input_word_ids"], inputs["input_type_ids"])
    outputs = transformer_stack(config, embedded, inputs["input_mask"])
    return keras.Model(inputs=inputs, outputs=outputs, name="bert_encoder")
