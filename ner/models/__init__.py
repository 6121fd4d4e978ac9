"""NER models: each maps the feature dict to `(latent [B,T,L], probabilities [B,T,C])`.

Which model a config's `model.type` builds, and what it can do, is one row of `ner.registry.MODELS`; each
model's module holds its builder. Every model is a `TokenClassifier` (`ner.models.base`): it declares its
`encoder` (or None) and its supervised `forward_loss(features, labels, training, score_offset) -> (loss,
probabilities)` (`score_offset`: the logit adjustment of the loss, or None).
"""
from typing import Optional

from ner.casing import WORD_CASING
from ner.chars import CHAR_IDS, MAX_WORD_CHARS
from ner.config import EncoderConfig, ModelConfig
from ner.lexical import LEXICAL_IDS, num_lexical_ids
from ner.distribute import call_on_replicas
from ner.models.base import TokenClassifier
from ner.models.baseline_ner import BaselineNER
from ner.models.bert_rnn_ner import BertRnnCrfNER, BertRnnNER
from ner.models.bert_ner import BertCrfNER, BertNER, WordFeatureNER
from ner.models.layer_mix import ScalarMix
from ner.models.heads import MLPHead
from ner.models.rnn_ner import RnnNER
from ner.precision import precision_policy
from ner.registry import model_type, resolve
from ner.tagging import FIRST_PIECE_MASK, LabelMap

__all__ = ["BaselineNER", "BertCrfNER", "BertNER", "BertRnnCrfNER", "BertRnnNER", "MLPHead", "RnnNER", "ScalarMix",
           "TokenClassifier", "WordFeatureNER", "build_model"]


def build_model(model: ModelConfig, encoder: EncoderConfig, num_labels: int, vocab_size: int,
                label_map: Optional[LabelMap] = None, precision: str = "float32") -> TokenClassifier:
    """Builds the model that `model.type` names in `ner.registry.MODELS`, with its weights created.

    Args:
      model: the model section of the config.
      encoder: the encoder section; loaded only by models that use it.
      num_labels: size of the label set (9 for IO, 17 for BIO on GMB).
      vocab_size: size of the word-piece vocabulary (the embedding rows of the models without encoder).
      label_map: the labels, for the CRF's transition constraints; needed by bert_bilstm_crf with
        `model.crf_constraints`, unused otherwise.
      precision: the Keras dtype policy its layers are built under (`ner.precision.precision_policy`).
    Raises:
      ConfigError: `model.type` is not a registered model type.
    """
    spec = model_type(model.type)
    with precision_policy(precision):
        head = MLPHead(model.head.hidden_units, model.head.latent_dim, num_labels, model.head.dropout_rate,
                       softmax=not spec.owns_loss, kernel_l2=model.head.l2)
        built = resolve(spec.builder)(model, encoder, head, num_labels, vocab_size, label_map)
        call_on_replicas(built, _dummy_features(spec.reads_first_piece_mask, model.lexical_template_set,
                                                model.reads_char_ids), training=False)
    return built


def _dummy_features(with_first_piece_mask: bool, lexical_templates: Optional[str], with_char_ids: bool) -> dict:
    """A one-row batch of two pieces [1, 2] (and its first-piece mask) that creates a model's weights."""
    import tensorflow as tf

    ids = tf.zeros([1, 2], dtype=tf.int32)
    features = {"input_word_ids": ids, "input_mask": tf.ones_like(ids), "input_type_ids": tf.zeros_like(ids),
                WORD_CASING: tf.constant([[0, 1]], dtype=tf.int32)}
    if with_first_piece_mask:
        features[FIRST_PIECE_MASK] = tf.constant([[0, 1]], dtype=tf.int32)
    if lexical_templates:
        features[LEXICAL_IDS] = tf.zeros([1, 2, num_lexical_ids(lexical_templates)], dtype=tf.int32)
    if with_char_ids:
        features[CHAR_IDS] = tf.zeros([1, 2, MAX_WORD_CHARS], dtype=tf.int32)
    return features
