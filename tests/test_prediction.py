"""The prediction loop's row order: rows read sorted by length come back in input order, unchanged."""
import dataclasses

import numpy as np
import pytest

import ner  # noqa: F401
from ner.experiment import train
from ner.prediction import FirstPiecePredictions, restore_row_order
from ner.uncertainty.metrics import MCStatistics
from tests.helpers import give_run_random_scores, tiny_config

WORDS = "john smith said the president in london today army of united nations monday".split()


def test_restore_row_order_moves_each_rows_positions_together():
    # Rows read in order [2, 0, 1] with 1, 3 and 2 labelled positions; input rows 0, 1, 2 have 3, 2, 1.
    read = FirstPiecePredictions(labels=np.array([20, 0, 1, 2, 10, 11]), row_lengths=np.array([1, 3, 2]),
                                 label_ids=np.array([5, 6, 7, 8, 9, 4]), probabilities=np.arange(12.).reshape(6, 2),
                                 mc=MCStatistics(mean=np.arange(6.)[:, None], variance=np.ones((6, 1)),
                                                 expected_entropy=np.arange(6.), num_samples=3))
    restored = restore_row_order(read, np.array([2, 0, 1]))
    assert restored.labels.tolist() == [0, 1, 2, 10, 11, 20]
    assert restored.row_lengths.tolist() == [3, 2, 1]
    assert restored.label_ids.tolist() == [6, 7, 8, 9, 4, 5]
    assert restored.probabilities[:, 0].tolist() == [2., 4., 6., 8., 10., 0.]
    assert restored.mc.mean[:, 0].tolist() == restored.mc.expected_entropy.tolist() == [1., 2., 3., 4., 5., 0.]
    assert restored.mc.num_samples == 3 and restored.latent is None
    with pytest.raises(ValueError, match="permutation of the 3 rows"):
        restore_row_order(read, np.array([2, 0, 0]))
    with pytest.raises(ValueError, match="latent points"):
        restore_row_order(dataclasses.replace(read, latent=np.zeros((1, 4))), np.array([2, 0, 1]))


@pytest.mark.parametrize("length_buckets", [(8, 12, 16)])
def test_predict_sorted_by_length_equals_input_order_with_one_trace(tmp_path, tiny_encoder_handle, length_buckets):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf", "bio", epochs=1)
    tagger = give_run_random_scores(train(config, verbose=False))  # a BERT encoder, and a CRF's decoding
    tagger.config = dataclasses.replace(tagger.config, training=dataclasses.replace(
        tagger.config.training, length_buckets=length_buckets))
    rng = np.random.default_rng(0)
    sentences = [list(rng.choice(WORDS, size=n)) for n in rng.integers(1, 25, size=40)]  # 40 rows and more
    in_order = tagger.predict_words(sentences, sort_by_length=False)
    by_length = tagger.predict_words(sentences)
    assert [len(labels) for labels, _ in by_length] == [len(words) for words in sentences]
    for (labels, probabilities), (sorted_labels, sorted_probabilities) in zip(in_order, by_length):
        np.testing.assert_array_equal(sorted_labels, labels)
        # Another batch width changes float32 summation order in the encoder's kernels, and the CRF marginals
        # of std-3 random scores amplify that to ~1.5e-5 relative: equal to float32 accuracy, not bit for bit.
        np.testing.assert_allclose(sorted_probabilities, probabilities, rtol=1e-4, atol=1e-7)
    # words need no span marginals, so a CRF model predicts them through its plain pass: the first shape,
    # then one relaxed, and the span pass is never traced
    assert tagger._predictor._outputs.experimental_get_tracing_count() == 2
    assert tagger._predictor._span_outputs.experimental_get_tracing_count() == 0
