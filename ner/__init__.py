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
__all__ = ["ConfigError", "DataError", "EncoderError", "NerError", "__version__", "load"]


def __getattr__(name: str):
    """`ner.load(run)` (a `ner.api.Tagger`) is imported on first use, so `import ner` stays light."""
    if name == "load":
        from ner.api import load

        return load
    raise AttributeError(f"module 'ner' has no attribute {name!r}")
