"""Converts a Hugging Face MPNet checkpoint into `ner.encoders.mpnet_network` with a BERT-style vocabulary.

`ner.encoders.bert_export` calls `convert_mpnet` for a checkpoint whose `config.json` says
`"model_type": "mpnet"`, and saves the result with the TF-Hub BERT encoder interface.

The package's preprocessing, like any TF-Hub BERT user, looks up `[CLS]`, `[SEP]` and `[UNK]` in the
vocabulary and pads word ids with 0. MPNet's tokenizer wraps a sentence in `<s> ... </s>` and pads with
`<pad>` (id 1); its vocab.txt also keeps BERT's `[CLS]`, `[SEP]`, `[PAD]` and `[MASK]` as rows MPNet's
tokenizer never emits (`[UNK]` is MPNet's own unknown token). So the exported vocabulary

- gives each token MPNet's tokenizer uses as cls, sep, pad, unk and mask (from `tokenizer_config.json`)
  BERT's name: `<s>` becomes `[CLS]`, `</s>` `[SEP]`, `<pad>` `[PAD]`, `<mask>` `[MASK]`; an unused row
  that already had one of those names becomes `[unused-CLS]`, `[unused-SEP]`, ...;
- swaps id 0 with the pad token, in the vocabulary and in the rows of the word embeddings, so id 0 is
  `[PAD]` (for all-mpnet-base-v2: `[PAD]` 0, `[CLS]` 1, `[SEP]` 2).

Word ids are looked up in the word embeddings only (positions and the relative-position bias do not depend
on them), so the exported encoder gives for the renamed ids exactly what MPNet gives for the original
ones. Tokenising with the renamed vocabulary is MPNet's own WordPiece tokenisation.
"""
import dataclasses
from pathlib import Path
from typing import Dict, List, Mapping, Sequence

import numpy as np

from ner.encoders.hf_checkpoint import (
    CONFIG_FILE,
    TOKENIZER_CONFIG_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    TRANSFORMER_OPTIONAL_KEYS,
    TRANSFORMER_REQUIRED_KEYS,
    ConvertedEncoder,
    WeightMap,
    check_transformer_config,
    config_fields,
    read_json,
    read_vocab,
    read_weights,
)
from ner.encoders.mpnet_network import MPNetConfig, build_mpnet_network
from ner.errors import EncoderError
from ner.utils import PathLike

# Hugging Face's MPNetModel buckets relative positions into 32, whatever config.json says.
_NUM_BUCKETS = 32

# TransformerBlock layer -> sub-key of `encoder.layer.{i}` in an MPNet checkpoint.
MPNET_BLOCK_KEYS = {
    "query": "attention.attn.q",
    "key": "attention.attn.k",
    "value": "attention.attn.v",
    "attention_output": "attention.attn.o",
    "attention_norm": "attention.LayerNorm",
    "intermediate": "intermediate.dense",
    "output_dense": "output.dense",
    "output_norm": "output.LayerNorm",
}

# Tokenizer role -> its token in the exported (BERT-style) vocabulary.
BERT_SPECIAL_TOKENS = {
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "mask_token": "[MASK]",
}
# Tokenizer role -> MPNet's token when tokenizer_config.json does not name one (MPNetTokenizer's defaults).
MPNET_DEFAULT_SPECIAL_TOKENS = {
    "cls_token": "<s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "[UNK]",
    "mask_token": "<mask>",
}


@dataclasses.dataclass(frozen=True)
class BertStyleVocab:
    """The exported vocabulary and where each of its rows comes from."""

    tokens: List[str]  # token of each exported id
    source_ids: np.ndarray  # int64 [V]: the checkpoint id of each exported id (a permutation)


def read_mpnet_config(checkpoint_dir: PathLike) -> MPNetConfig:
    """Reads and validates `config.json` of a Hugging Face MPNet checkpoint."""
    path = Path(checkpoint_dir) / CONFIG_FILE
    raw = read_json(path)
    if raw.get("model_type") != "mpnet":
        raise EncoderError(f"{path}: model_type is {raw.get('model_type')!r}; expected 'mpnet'")
    buckets = raw.get("relative_attention_num_buckets", _NUM_BUCKETS)
    if buckets != _NUM_BUCKETS:
        raise EncoderError(
            f"{path}: relative_attention_num_buckets is {buckets!r}; expected {_NUM_BUCKETS}, the number "
            "Hugging Face's MPNetModel always uses"
        )
    config = MPNetConfig(**config_fields(path, raw, TRANSFORMER_REQUIRED_KEYS, TRANSFORMER_OPTIONAL_KEYS,
                                               "MPNet"))
    check_transformer_config(path, config)
    return config


def read_special_tokens(checkpoint_dir: PathLike) -> Dict[str, str]:
    """Tokenizer role (`cls_token`, ...) -> MPNet token, from `tokenizer_config.json` or MPNet's defaults."""
    path = Path(checkpoint_dir) / TOKENIZER_CONFIG_FILE
    raw = read_json(path) if path.exists() else {}
    tokens = {}
    for role, default in MPNET_DEFAULT_SPECIAL_TOKENS.items():
        value = raw.get(role, default)
        if isinstance(value, dict):  # an AddedToken written out: {"content": "<mask>", "lstrip": true, ...}
            value = value.get("content")
        if not isinstance(value, str) or not value:
            raise EncoderError(f"{path}: {role} must be a token string, got {raw.get(role)!r}")
        tokens[role] = value
    return tokens


def bert_style_vocab(tokens: Sequence[str], special_tokens: Mapping[str, str], path: Path) -> BertStyleVocab:
    """Renames MPNet's special tokens to BERT's and moves the pad token to id 0 (see the module docstring).

    `tokens`: the checkpoint's vocab.txt (read from `path`, named in errors); `special_tokens`: role -> token.
    """
    index: Dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token in index:
            raise EncoderError(f"{path} line {i + 1}: token {token!r} already on line {index[token] + 1}")
        index[token] = i
    names: Dict[int, str] = {}  # checkpoint id -> exported token, where it changes
    for role, bert_token in BERT_SPECIAL_TOKENS.items():
        token = special_tokens[role]
        if token not in index:
            raise EncoderError(f"{path} lacks the {role} {token!r} of {TOKENIZER_CONFIG_FILE}")
        if index[token] in names:
            raise EncoderError(f"{path}: {token!r} is both the {role} and another special token; expected distinct")
        names[index[token]] = bert_token
    for bert_token in BERT_SPECIAL_TOKENS.values():
        unused = index.get(bert_token)
        if unused is not None and unused not in names:
            names[unused] = f"[unused-{bert_token[1:-1]}]"
    renamed = [names.get(i, token) for i, token in enumerate(tokens)]
    if len(set(renamed)) != len(renamed):
        raise EncoderError(f"{path}: renaming the special tokens to BERT's would repeat a token of the vocabulary")
    source_ids = np.arange(len(tokens))
    pad = index[special_tokens["pad_token"]]
    source_ids[[0, pad]] = source_ids[[pad, 0]]
    return BertStyleVocab(tokens=[renamed[i] for i in source_ids], source_ids=source_ids)


def convert_mpnet(checkpoint_dir: Path, work_dir: Path) -> ConvertedEncoder:
    """The MPNet network with the checkpoint's weights; writes the BERT-style vocab.txt into `work_dir`."""
    config = read_mpnet_config(checkpoint_dir)
    vocab_path = checkpoint_dir / VOCAB_FILE
    tokens = read_vocab(vocab_path)
    if len(tokens) != config.vocab_size:
        raise EncoderError(
            f"{vocab_path} has {len(tokens)} tokens; expected vocab_size {config.vocab_size} from {CONFIG_FILE}"
        )
    vocab = bert_style_vocab(tokens, read_special_tokens(checkpoint_dir), vocab_path)

    weights_path = checkpoint_dir / WEIGHTS_FILE
    weights = read_weights(weights_path, prefix="mpnet.")
    word_key = "embeddings.word_embeddings.weight"
    if word_key in weights and len(weights[word_key]) == len(vocab.source_ids):  # else assign() names the shape
        weights[word_key] = weights[word_key][vocab.source_ids]

    network = build_mpnet_network(config)
    plan = WeightMap()
    emb = network.get_layer("embeddings")
    plan.variable(emb.word_embeddings, word_key)
    plan.variable(emb.position_embeddings, "embeddings.position_embeddings.weight")
    plan.norm(emb.layer_norm, "embeddings.LayerNorm")
    plan.variable(network.get_layer("relative_position_bias").embeddings, "encoder.relative_attention_bias.weight")
    for i in range(config.num_layers):
        plan.block(network.get_layer(f"transformer_layer_{i}"), f"encoder.layer.{i}", MPNET_BLOCK_KEYS)
    plan.dense(network.get_layer("pooler").dense, "pooler.dense")
    plan.assign(weights, weights_path, "MPNet")

    exported_vocab = work_dir / VOCAB_FILE
    exported_vocab.write_text("".join(token + "\n" for token in vocab.tokens), encoding="utf-8")
    return ConvertedEncoder(network=network, vocab_file=exported_vocab)
