"""Independent float64 NumPy forward passes of BERT and MPNet, written from Hugging Face's modelling code
and reading the safetensors weights directly: the references the exported SavedModels are checked against.
"""
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from safetensors.numpy import load_file

_erf = np.vectorize(math.erf)

# The attention sub-keys of `encoder.layer.{i}` in each architecture: query, key, value, output, its norm.
BERT_ATTENTION = ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense", "attention.output.LayerNorm")
MPNET_ATTENTION = ("attention.attn.q", "attention.attn.k", "attention.attn.v",
                   "attention.attn.o", "attention.LayerNorm")

Outputs = Tuple[np.ndarray, np.ndarray, List[np.ndarray]]  # sequence [B, T, H], pooled [B, H], one [B, T, H] per layer


def _load(checkpoint_dir: Path) -> Tuple[Dict[str, np.ndarray], dict]:
    weights = load_file(str(checkpoint_dir / "model.safetensors"))
    config = json.loads((checkpoint_dir / "config.json").read_text())
    return {k: v.astype(np.float64) for k, v in weights.items()}, config


def _encoder(
    w: Dict[str, np.ndarray],
    config: dict,
    embedded: np.ndarray,
    mask: np.ndarray,
    attention_keys: Tuple[str, ...],
    bias: Optional[np.ndarray] = None,
) -> Outputs:
    """Embedding LayerNorm, the post-LayerNorm layers (with `bias` [N, T, T] added to the logits) and the pooler."""
    eps, n_heads = config["layer_norm_eps"], config["num_attention_heads"]

    def layer_norm(x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[prefix + ".weight"] + w[prefix + ".bias"]

    def linear(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    x = layer_norm(embedded, "embeddings.LayerNorm")
    b, t, h = x.shape
    d = h // n_heads
    query, key, value, output, norm = attention_keys
    layers = []
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"

        def heads(y: np.ndarray) -> np.ndarray:  # [B, T, H] -> [B, N, T, D]
            return y.reshape(b, t, n_heads, d).transpose(0, 2, 1, 3)

        q, k, v = (heads(linear(x, f"{p}.{name}")) for name in (query, key, value))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)  # [B, N, T, T]
        if bias is not None:
            scores = scores + bias[np.newaxis]
        scores = np.where(mask[:, np.newaxis, np.newaxis, :] == 1, scores, -np.inf)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, h)
        x = layer_norm(linear(context, f"{p}.{output}") + x, f"{p}.{norm}")
        inner = linear(x, f"{p}.intermediate.dense")
        inner = 0.5 * inner * (1.0 + _erf(inner / math.sqrt(2.0)))
        x = layer_norm(linear(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        layers.append(x)
    pooled = np.tanh(linear(x[:, 0], "pooler.dense"))
    return x, pooled, layers


def numpy_bert(checkpoint_dir: Path, word_ids: np.ndarray, mask: np.ndarray, type_ids: np.ndarray) -> Outputs:
    """BERT on inputs [B, T]: positions 0..T-1, token types."""
    w, config = _load(checkpoint_dir)
    t = word_ids.shape[1]
    embedded = (
        w["embeddings.word_embeddings.weight"][word_ids]
        + w["embeddings.position_embeddings.weight"][:t][np.newaxis]
        + w["embeddings.token_type_embeddings.weight"][type_ids]
    )
    return _encoder(w, config, embedded, mask, BERT_ATTENTION)


def mpnet_bucket(relative_position: int, num_buckets: int = 32, max_distance: int = 128) -> int:
    """The bucket of one relative position `key - query`, as Hugging Face's `relative_position_bucket`."""
    half = num_buckets // 2
    bucket = half if relative_position > 0 else 0
    distance, exact = abs(relative_position), half // 2
    if distance < exact:
        return bucket + distance
    far = exact + int(math.log(distance / exact) / math.log(max_distance / exact) * (half - exact))
    return bucket + min(far, half - 1)


def numpy_mpnet(checkpoint_dir: Path, word_ids: np.ndarray, mask: np.ndarray, pad_id: int = 1) -> Outputs:
    """MPNet on inputs [B, T] holding the checkpoint's word ids, padded with `pad_id`.

    Positions count non-pad ids from pad_id + 1 (pad itself at pad_id); a bias per head and bucket of
    `key - query` is added to every layer's attention logits.
    """
    w, config = _load(checkpoint_dir)
    t = word_ids.shape[1]
    real = (word_ids != pad_id).astype(np.int64)
    positions = np.cumsum(real, axis=1) * real + pad_id
    embedded = w["embeddings.word_embeddings.weight"][word_ids] + w["embeddings.position_embeddings.weight"][positions]
    buckets = np.array([[mpnet_bucket(key - query) for key in range(t)] for query in range(t)])  # [T, T]
    bias = w["encoder.relative_attention_bias.weight"][buckets].transpose(2, 0, 1)  # [N, T, T]
    return _encoder(w, config, embedded, mask, MPNET_ATTENTION, bias)
