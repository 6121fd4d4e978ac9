"""The registries (`ner.registry`): every name resolves, and an unknown name is an error that names it."""
import numpy as np
import pytest

import ner  # noqa: F401
from ner import registry
from ner.config import CONFIG_DIR, DataConfig, EncoderConfig, ModelConfig, load_config
from ner.corpora import read_corpus
from ner.errors import ConfigError
from ner.losses import ConfidenceKL, DataDistributionKL, unlabelled_loss
from ner.models import build_model
from ner.selection import PoolOutputs


def test_every_registered_name_resolves_to_its_implementation():
    for spec in registry.MODELS.values():
        assert callable(registry.resolve(spec.builder))
        assert spec.rnn_cell in (None,) + registry.RNN_CELLS
    scorers = [acquisition.scorer for acquisition in registry.ACQUISITIONS.values()]
    for path in list(registry.CORPORA.values()) + list(registry.UNLABELLED_LOSSES.values()) + scorers:
        assert callable(registry.resolve(path))
    assert {a.reads for a in registry.ACQUISITIONS.values()} <= {None} | set(PoolOutputs.__dataclass_fields__)


def test_every_model_type_has_a_shipped_config():
    shipped = {load_config(path, environ={}).model.type for path in CONFIG_DIR.glob("*.yaml")}
    assert set(registry.MODELS) - {"gru"} <= shipped  # gru is config/rnn_ner.yaml with model.type=gru


def test_unknown_names_are_errors_naming_them():
    with pytest.raises(ConfigError, match="unknown model type 'crf'; expected one of ner_baseline, bert_ner"):
        build_model(ModelConfig(type="crf"), EncoderConfig(), num_labels=3, vocab_size=10)
    with pytest.raises(ConfigError, match="unknown corpus 'ontonotes'; expected one of gmb, conll"):
        read_corpus(DataConfig(corpus="ontonotes"))
    with pytest.raises(ConfigError, match="unknown unlabelled loss 'entropy'"):
        unlabelled_loss(["entropy"], [1.0], prior=[1.0])


def test_unlabelled_loss_sums_the_named_losses_with_their_weights():
    prior = np.array([0.5, 0.5])
    loss = unlabelled_loss(["data_distribution", "confidence"], [2.0, 0.5], prior)
    assert [type(part) for part in loss.losses] == [DataDistributionKL, ConfidenceKL] and loss.weights == (2.0, 0.5)
    np.testing.assert_array_equal(loss.losses[0].prior, prior)
