"""How a head reads the encoder's layers (`ner.models.layer_mix`): values checked by hand."""
import numpy as np
import tensorflow as tf

from ner.models.layer_mix import LayerConcat, ScalarMix, combine_layers, layer_combiner

# [B=1, T=2, L=2, H=3]: layer 0 then layer 1 at each position
LAYERS = tf.constant([[[[1., 2., 3.], [10., 20., 30.]],
                       [[4., 5., 6.], [40., 50., 60.]]]])


def test_concat_puts_the_layers_of_each_position_side_by_side():
    np.testing.assert_array_equal(combine_layers(LAYERS, LayerConcat()).numpy(),
                                  [[[1., 2., 3., 10., 20., 30.], [4., 5., 6., 40., 50., 60.]]])


def test_a_fresh_mix_is_the_mean_of_the_layers():
    np.testing.assert_allclose(combine_layers(LAYERS, ScalarMix()).numpy(),
                               [[[5.5, 11., 16.5], [22., 27.5, 33.]]])


def test_last_reads_the_single_stored_layer():
    assert layer_combiner("last") is None
    np.testing.assert_array_equal(combine_layers(LAYERS[:, :, 1:], None).numpy(),
                                  [[[10., 20., 30.], [40., 50., 60.]]])
    assert isinstance(layer_combiner("mix"), ScalarMix) and isinstance(layer_combiner("concat"), LayerConcat)
