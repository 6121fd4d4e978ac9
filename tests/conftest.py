"""Shared fixtures: a tiny random BERT checkpoint and its TF-Hub-style SavedModel export."""
import ner  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

from pathlib import Path

import pytest

from ner.encoders.bert_export import export_bert_savedmodel
from tests.helpers import make_random_bert_checkpoint, tiny_test_vocab


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hugging Face-format BERT checkpoint: hidden 32, 2 layers, 2 heads, `tiny_test_vocab()`."""
    return make_random_bert_checkpoint(tmp_path_factory.mktemp("tiny_bert") / "checkpoint", tiny_test_vocab())


@pytest.fixture(scope="session")
def tiny_encoder_handle(tiny_checkpoint_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path (str) of the tiny checkpoint exported as a TF-Hub BERT encoder SavedModel."""
    return str(export_bert_savedmodel(tiny_checkpoint_dir, tmp_path_factory.mktemp("tiny_encoder") / "encoder"))
