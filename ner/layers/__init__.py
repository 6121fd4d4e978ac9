"""Building blocks under the models' heads: recurrent stacks and the CRF."""
from ner.layers.crf import CRF
from ner.layers.recurrent import RNN_CELLS, RecurrentStack

__all__ = ["CRF", "RNN_CELLS", "RecurrentStack"]
