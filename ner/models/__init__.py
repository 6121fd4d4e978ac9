"""NER models: each maps the feature dict to `(latent [B,T,L], probabilities [B,T,C])`."""
import tf_keras as keras

from ner.config import EncoderConfig, ModelConfig
from ner.models.baseline_ner import BaselineNER
from ner.models.bert_ner import BertNER
from ner.models.heads import MLPHead

__all__ = ["BaselineNER", "BertNER", "MLPHead", "build_model"]


def build_model(model: ModelConfig, encoder: EncoderConfig, num_labels: int, vocab_size: int) -> keras.Model:
    """Builds the model that `model.type` names, with its weights created.

    Args:
      model: the model section of the config.
      encoder: the encoder section; loaded only by models that use it.
      num_labels: size of the label set (9 for IO, 17 for BIO on GMB).
      vocab_size: size of the word-piece vocabulary (the baseline's embedding rows).
    """
    head = MLPHead(model.head.hidden_units, model.head.latent_dim, num_labels, model.head.dropout_rate)
    if model.type == "ner_baseline":
        built = BaselineNER(vocab_size, model.embedding_dim, head)
    else:
        from ner.encoders.hub_encoder import load_encoder

        built = BertNER(load_encoder(encoder.handle, trainable=encoder.trainable), head)
    built(_dummy_features(), training=False)
    return built


def _dummy_features() -> dict:
    import tensorflow as tf

    ids = tf.zeros([1, 2], dtype=tf.int32)
    return {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids)}
