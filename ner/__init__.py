"""`ner`: named-entity recognition with a pre-trained BERT encoder when labelled data is scarce.

TensorFlow Hub's `KerasLayer` is a tf_keras layer, so the package builds every model with tf_keras
(Keras 2). The environment variable below makes `tf.keras` resolve to tf_keras as well; it must be set
before TensorFlow is first imported, which is why it lives here.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ner.errors import ConfigError, DataError, EncoderError, NerError  # noqa: E402

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "EncoderError", "NerError", "__version__"]
