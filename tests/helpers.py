"""Helpers the tests share: tiny random BERT and MPNet checkpoints and vocabularies, a tiny GMB corpus and config."""
import csv
import json
import string
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Sequence

import numpy as np
from safetensors.numpy import save_file

from ner.config import CONFIG_DIR, ExperimentConfig, load_config
from ner.encoders.bert_export import CONFIG_FILE, TOKENIZER_CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE
from ner.utils import PathLike, atomic_path
from tests.numpy_reference import BERT_ATTENTION, MPNET_ATTENTION

if TYPE_CHECKING:
    from ner.api import Tagger

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"  # the first bytes of every PNG file

# Standard deviation of the random test weights: large enough that attention is far from uniform, so a
# wrong head split or a missing transpose changes the outputs visibly.
_RANDOM_WEIGHT_STD = 0.2

_COMMON_WORDS = (
    "the of to in and a is was for on with as by at from that it he she his her they we i you be has "
    "have had not but are were this said says president minister government police city new york "
    "london paris berlin washington john smith mr mrs united states nations company bank year years "
    "day monday week people world first two three million percent told reporters after before"
).split()


def tiny_test_vocab() -> List[str]:
    """A 179-token WordPiece vocabulary that splits any lower-cased English sentence into known pieces.

    Special tokens come first ([PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4), then common words, single
    letters and digits, their `##` continuation forms, and punctuation.
    """
    chars = list(string.ascii_lowercase + string.digits)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += _COMMON_WORDS + chars + ["##" + c for c in chars] + list(string.punctuation)
    return list(dict.fromkeys(tokens))  # drops repeats such as the word "a" and the letter "a"


def tiny_mpnet_vocab() -> List[str]:
    """`tiny_test_vocab()` laid out like all-mpnet-base-v2's vocab.txt: `<s>`, `<pad>`, `</s>`, `<unk>` first
    (ids 0-3), then BERT's tokens (its [PAD], [UNK], [CLS], [SEP], [MASK] at 4-8), then `<mask>` last."""
    return ["<s>", "<pad>", "</s>", "<unk>"] + tiny_test_vocab() + ["<mask>"]


def _random_layers(
    normal: Callable[..., np.ndarray], num_layers: int, h: int, intermediate_size: int, attention: Sequence[str]
) -> Dict[str, np.ndarray]:
    """`encoder.layer.{i}` weights; `attention` names the query, key, value, output and norm sub-keys."""
    query, key, value, output, norm = attention
    weights = {}
    for i in range(num_layers):
        p = f"encoder.layer.{i}"
        shapes = {  # PyTorch Linear layout [out, in]
            query: (h, h),
            key: (h, h),
            value: (h, h),
            output: (h, h),
            "intermediate.dense": (intermediate_size, h),
            "output.dense": (h, intermediate_size),
        }
        for name, (out_dim, in_dim) in shapes.items():
            weights[f"{p}.{name}.weight"] = normal(out_dim, in_dim)
            weights[f"{p}.{name}.bias"] = normal(out_dim)
        for name in (norm, "output.LayerNorm"):
            weights[f"{p}.{name}.weight"] = normal(h, mean=1.0)
            weights[f"{p}.{name}.bias"] = normal(h)
    return weights


def _normal_sampler(seed: int) -> Callable[..., np.ndarray]:
    rng = np.random.default_rng(seed)

    def normal(*shape: int, mean: float = 0.0, std: float = _RANDOM_WEIGHT_STD) -> np.ndarray:
        return (mean + std * rng.standard_normal(shape)).astype(np.float32)

    return normal


def _transformer_config(vocab_size: int, hidden_size: int, num_layers: int, num_heads: int, intermediate_size: int,
                        max_position: int) -> dict:
    """The config.json keys BERT and MPNet share, with Hugging Face's defaults for gelu and dropout 0.1."""
    return {"vocab_size": vocab_size, "hidden_size": hidden_size, "num_hidden_layers": num_layers,
            "num_attention_heads": num_heads, "intermediate_size": intermediate_size, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": max_position}


def _write_checkpoint(
    output_dir: PathLike, weights: Dict[str, np.ndarray], config: dict, vocab_tokens: Sequence[str],
    tokenizer_config: dict,
) -> Path:
    output_dir = Path(output_dir)
    with atomic_path(output_dir) as tmp:
        tmp.mkdir()
        save_file(weights, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2), encoding="utf-8")
        (tmp / VOCAB_FILE).write_text("".join(t + "\n" for t in vocab_tokens), encoding="utf-8")
        (tmp / TOKENIZER_CONFIG_FILE).write_text(json.dumps(tokenizer_config), encoding="utf-8")
    return output_dir


def make_random_bert_checkpoint(
    output_dir: PathLike,
    vocab_tokens: Sequence[str],
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_position: int = 128,
    seed: int = 0,
) -> Path:
    """Writes a Hugging Face-format BERT checkpoint with random weights (for tests) and returns its path."""
    normal = _normal_sampler(seed)
    h, n_vocab = hidden_size, len(vocab_tokens)
    weights = {
        "embeddings.word_embeddings.weight": normal(n_vocab, h),
        "embeddings.position_embeddings.weight": normal(max_position, h),
        "embeddings.token_type_embeddings.weight": normal(2, h),
        "embeddings.LayerNorm.weight": normal(h, mean=1.0),
        "embeddings.LayerNorm.bias": normal(h),
        "embeddings.position_ids": np.arange(max_position, dtype=np.int64)[np.newaxis, :],
        "pooler.dense.weight": normal(h, h),
        "pooler.dense.bias": normal(h),
    }
    weights.update(_random_layers(normal, num_layers, h, intermediate_size, BERT_ATTENTION))
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        **_transformer_config(n_vocab, h, num_layers, num_heads, intermediate_size, max_position),
        "type_vocab_size": 2,
        "layer_norm_eps": 1e-12,
        "position_embedding_type": "absolute",
    }
    return _write_checkpoint(output_dir, weights, config, vocab_tokens, {"do_lower_case": True})


def make_random_mpnet_checkpoint(
    output_dir: PathLike,
    vocab_tokens: Sequence[str],
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 2,
    intermediate_size: int = 64,
    max_position: int = 40,
    seed: int = 0,
) -> Path:
    """Writes a Hugging Face-format MPNet checkpoint with random weights and returns its path.

    Its config and tokenizer_config.json are all-mpnet-base-v2's with smaller sizes; the relative-position
    bias is drawn wider than the other weights (std 1), so that a wrong bucket changes the outputs visibly.
    """
    normal = _normal_sampler(seed)
    h, n_vocab = hidden_size, len(vocab_tokens)
    weights = {
        "embeddings.word_embeddings.weight": normal(n_vocab, h),
        "embeddings.position_embeddings.weight": normal(max_position, h),
        "embeddings.LayerNorm.weight": normal(h, mean=1.0),
        "embeddings.LayerNorm.bias": normal(h),
        "embeddings.position_ids": np.arange(max_position, dtype=np.int64)[np.newaxis, :],
        "encoder.relative_attention_bias.weight": normal(32, num_heads, std=1.0),
        "pooler.dense.weight": normal(h, h),
        "pooler.dense.bias": normal(h),
    }
    weights.update(_random_layers(normal, num_layers, h, intermediate_size, MPNET_ATTENTION))
    config = {
        "architectures": ["MPNetForMaskedLM"],
        "model_type": "mpnet",
        **_transformer_config(n_vocab, h, num_layers, num_heads, intermediate_size, max_position),
        "layer_norm_eps": 1e-05,
        "relative_attention_num_buckets": 32,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
    }
    tokenizer_config = {
        "do_lower_case": True,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "unk_token": "[UNK]",
        "pad_token": "<pad>",
        "mask_token": {"content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False},
        "tokenizer_class": "MPNetTokenizer",
    }
    return _write_checkpoint(output_dir, weights, config, vocab_tokens, tokenizer_config)


# Tiny sentences whose entities are predictable from the word itself, so a few epochs learn them.
PATTERNS = [
    (["john", "said", "the", "president", "in", "london"], ["B-per", "O", "O", "O", "O", "B-geo"]),
    (["the", "president", "of", "london", "said"], ["O", "O", "O", "B-geo", "O"]),
    (["john", "smith", "in", "london", "today"], ["B-per", "I-per", "O", "B-geo", "B-tim"]),
    (["the", "army", "said", "today"], ["O", "B-org", "O", "B-tim"]),
]


def write_gmb_csv(path: PathLike, sentences: int = 60) -> None:
    """A GMB CSV of `sentences` sentences cycling through `PATTERNS`."""
    with open(path, "w", newline="", encoding="latin-1") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Sentence #", "Word", "POS", "Tag"])
        for number in range(1, sentences + 1):
            words, tags = PATTERNS[number % len(PATTERNS)]
            for position, (word, tag) in enumerate(zip(words, tags)):
                writer.writerow([f"Sentence: {number}" if position == 0 else "", word, "NN", tag])


def tiny_config(tmp_path: Path, encoder_handle: str, model_type: str, scheme: str = "io", epochs: int = 15,
                learning_rate: float = 0.03) -> ExperimentConfig:
    """A config for `model_type` on a 60-sentence GMB CSV it writes to `tmp_path` (split 12/32/8/8), with a
    small head, and every run, result and cache directory under `tmp_path`."""
    data_path = tmp_path / "gmb.csv"
    write_gmb_csv(data_path)
    overrides = [f"run_name={model_type}_{scheme}", f"model.type={model_type}", f"data.tag_scheme={scheme}",
                 "data.max_seq_length=16", "split.test_size=12", "split.labelled_size=32",
                 "split.validation_size=8", "model.embedding_dim=16", "model.head.hidden_units=[32]",
                 "model.head.latent_dim=8", "model.head.dropout_rate=0.0", f"training.epochs={epochs}",
                 "training.batch_size=8", f"training.learning_rate={learning_rate}",
                 f"paths.saved_models_dir={tmp_path / 'saved_models'}", f"paths.results_dir={tmp_path / 'results'}",
                 f"paths.feature_cache_dir={tmp_path / 'feature_cache'}"]
    environ = {"NER_GMB_PATH": str(data_path), "NER_ENCODER_HANDLE": encoder_handle}
    return load_config(CONFIG_DIR / "bert_ner.yaml", overrides, environ=environ)


def give_run_random_scores(run_dir: Path, seed: int = 0, continue_bonus: float = 0.0) -> "Tagger":
    """Sets a trained run's output layer (and a CRF model's transitions) to seeded random values of std 3
    and saves them as the run's final weights, so that the run predicts varied labels where a few tiny
    training epochs leave it predicting O; `continue_bonus` is added to a CRF's transitions where a label
    continues a span (longer spans). Returns the run's `Tagger` with those weights."""
    from ner.api import Tagger  # here, so that the helpers load TensorFlow only for the tests that train
    from ner.trainers.trainer import WEIGHTS_DIR, WEIGHTS_PREFIX

    tagger = Tagger.from_run(str(run_dir))
    randomise_output_scores(tagger.model, seed)
    lengthen_spans(tagger.model, tagger.label_map, continue_bonus)
    tagger.model.save_weights(str(run_dir / WEIGHTS_DIR / WEIGHTS_PREFIX))
    return tagger


def lengthen_spans(model, label_map, bonus: float) -> None:
    """Adds `bonus` to a CRF model's transitions where a label continues a span (`label_map`'s reading)."""
    if bonus:
        model.crf.transitions.assign_add(bonus * np.array(label_map.span_reading().continues, np.float32))


def randomise_output_scores(model, seed: int = 0) -> None:
    """Sets a built model's output layer (and a CRF model's transitions) to seeded random values of std 3."""
    crf = getattr(model, "crf", None)
    rng = np.random.default_rng(seed)
    for variable in (*([] if crf is None else [crf.transitions]), *model.head.output_layer.weights):
        variable.assign(3.0 * rng.standard_normal(variable.shape).astype(np.float32))
