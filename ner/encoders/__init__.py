"""Pre-trained BERT encoders with the TF-Hub interface.

`hub_encoder` loads an encoder handle as a tf_keras layer and reads its vocabulary; `bert_export` turns a
Hugging Face BERT or MPNet checkpoint into such a handle (and is the `python -m ner.encoders.bert_export`
CLI, so it is not imported here), reading it with `hf_checkpoint` and, for MPNet, `mpnet_export`;
`bert_network` and `mpnet_network` are the Keras networks the export is built from.
"""
from ner.encoders.hub_encoder import (
    DEFAULT_ENCODER_HANDLE,
    EncoderInfo,
    EncoderVocab,
    encoder_info,
    encoder_vocab,
    load_encoder,
    resolve_handle,
)

__all__ = [
    "DEFAULT_ENCODER_HANDLE",
    "EncoderInfo",
    "EncoderVocab",
    "encoder_info",
    "encoder_vocab",
    "load_encoder",
    "resolve_handle",
]
