"""Evaluation metrics for token classification: token-level scores, strict entity spans and latent PCA.

Every function returns numbers; tables, plots and files belong to `ner.reporting`. NumPy and seqeval
only, so evaluating saved predictions never imports TensorFlow.

Conventions:
- Precision of class c is TP / (TP + FP) over the tokens *predicted* as c; recall is TP / (TP + FN)
  over the tokens whose *true* label is c (seed 001 had the two swapped).
- A ratio with a zero denominator is 0.0 (scikit-learn's default `zero_division`): a class never
  predicted has precision 0, a class absent from the truth has recall 0, and F1 is 0 when both are 0.
"""
import dataclasses
from collections.abc import Sequence

import numpy as np
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

OUTSIDE_LABEL = "O"
_BIO_PREFIXES = ("B-", "I-")


@dataclasses.dataclass(frozen=True, eq=False)
class TokenMetrics:
    """Token-level scores over C classes; arrays are read-only.

    Attributes:
        labels: class names, length C; index = label id.
        accuracy: fraction of tokens predicted correctly.
        accuracy_without_outside: accuracy over tokens whose true label is not the outside label;
            NaN when every true label is the outside label.
        precision, recall, f1: float arrays [C]; 0.0 where the ratio is undefined (see module doc).
        support: int array [C], number of tokens whose true label is each class.
        mean_f1: unweighted mean of `f1` over all C classes, outside label and classes absent from
            the truth included (seed 001's headline metric).
        confusion: int array [C, C] of token counts; rows = true label, columns = predicted label.
    """

    labels: tuple[str, ...]
    accuracy: float
    accuracy_without_outside: float
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    mean_f1: float
    confusion: np.ndarray

    def confusion_normalized_by_true(self) -> np.ndarray:
        """Float array [C, C]: each row divided by its sum (recall view); all-zero rows stay 0."""
        return _safe_divide(self.confusion, self.confusion.sum(axis=1, keepdims=True))

    def confusion_normalized_by_predicted(self) -> np.ndarray:
        """Float array [C, C]: each column divided by its sum (precision view); all-zero columns stay 0."""
        return _safe_divide(self.confusion, self.confusion.sum(axis=0, keepdims=True))

    def true_distribution(self) -> np.ndarray:
        """Float array [C]: fraction of tokens whose true label is each class."""
        return self.support / self.confusion.sum()

    def predicted_distribution(self) -> np.ndarray:
        """Float array [C]: fraction of tokens predicted as each class."""
        return self.confusion.sum(axis=0) / self.confusion.sum()


@dataclasses.dataclass(frozen=True)
class EntityMetrics:
    """Entity-level scores on exact spans (seqeval strict mode, IOB2).

    Attributes:
        precision, recall, f1: micro averages over all entities; 0.0 when undefined.
        per_type: entity type -> (precision, recall, f1, support), support = number of true
            entities of that type; types sorted by name, including types only predicted.
    """

    precision: float
    recall: float
    f1: float
    per_type: dict[str, tuple[float, float, float, int]]


@dataclasses.dataclass(frozen=True, eq=False)
class EvaluationReport:
    """Everything measured on one evaluation split.

    Attributes:
        token: token-level scores over entity types ("O", "geo", ...), BIO prefixes dropped.
        entity: strict span scores.
        num_sentences: sentences evaluated.
        num_tokens: tokens (words) evaluated; padding and continuation sub-words are not tokens.
    """

    token: TokenMetrics
    entity: EntityMetrics
    num_sentences: int
    num_tokens: int

    @property
    def true_distribution(self) -> np.ndarray:
        """Float array [C]: fraction of true labels per class of `token.labels`."""
        return self.token.true_distribution()

    @property
    def pred_distribution(self) -> np.ndarray:
        """Float array [C]: fraction of predicted labels per class of `token.labels`."""
        return self.token.predicted_distribution()

    def summary_row(self) -> dict[str, float]:
        """The headline numbers as fractions in [0, 1] (formatting is the reporter's job)."""
        return {
            "accuracy": self.token.accuracy,
            "accuracy_without_o": self.token.accuracy_without_outside,
            "mean_f1": self.token.mean_f1,
            "entity_f1": self.entity.f1,
        }


def token_metrics(
    true_ids: np.ndarray,
    pred_ids: np.ndarray,
    labels: Sequence[str],
    outside_label: str = OUTSIDE_LABEL,
) -> TokenMetrics:
    """Scores predicted label ids against true ones, token by token.

    Args:
        true_ids: int array [n], true label ids in [0, C).
        pred_ids: int array [n], predicted label ids in [0, C).
        labels: the C class names; must contain `outside_label`.
        outside_label: the non-entity label excluded from `accuracy_without_outside`.

    Raises:
        ValueError: empty or non-1-D input, shape mismatch, non-integer or out-of-range ids, duplicate
            labels, or `outside_label` missing from `labels`.
    """
    labels = _check_labels(labels)
    num_labels = len(labels)
    true_ids = _check_ids(true_ids, num_labels, "true_ids")
    pred_ids = _check_ids(pred_ids, num_labels, "pred_ids")
    if true_ids.shape != pred_ids.shape:
        raise ValueError(f"true_ids has shape {true_ids.shape} but pred_ids has shape {pred_ids.shape}")
    if true_ids.size == 0:
        raise ValueError("no tokens to evaluate")
    if outside_label not in labels:
        raise ValueError(f"outside label {outside_label!r} is not one of the labels {labels}")

    confusion = np.bincount(true_ids * num_labels + pred_ids, minlength=num_labels * num_labels)
    confusion = confusion.reshape(num_labels, num_labels)
    true_positives = np.diag(confusion)
    support = confusion.sum(axis=1)
    precision = _safe_divide(true_positives, confusion.sum(axis=0))
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2.0 * precision * recall, precision + recall)

    correct = true_ids == pred_ids
    inside = true_ids != labels.index(outside_label)
    accuracy_without_outside = float(correct[inside].mean()) if inside.any() else float("nan")
    return TokenMetrics(
        labels=labels,
        accuracy=float(correct.mean()),
        accuracy_without_outside=accuracy_without_outside,
        precision=_read_only(precision),
        recall=_read_only(recall),
        f1=_read_only(f1),
        support=_read_only(support),
        mean_f1=float(f1.mean()),
        confusion=_read_only(confusion),
    )


def collapse_to_types(ids: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Maps BIO label ids to entity-type ids: `B-x` and `I-x` both become `x`.

    Labels without a `B-`/`I-` prefix are kept as they are. The outside label "O" (when present) comes
    first; the types follow in the order they first appear in `labels`.

    Args:
        ids: int array [n], ids into `labels`.
        labels: BIO class names, e.g. ("O", "B-geo", "I-geo", ...).

    Returns:
        type_ids: int64 array [n], ids into `type_labels`.
        type_labels: the entity types, e.g. ("O", "geo", ...).
    """
    labels = _check_labels(labels)
    ids = _check_ids(ids, len(labels), "ids")
    type_labels = _type_labels(labels)
    mapping = np.array([type_labels.index(_strip_prefix(label)) for label in labels], dtype=np.int64)
    return mapping[ids], type_labels


def entity_metrics(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> EntityMetrics:
    """Strict exact-span scores (seqeval, IOB2): an entity counts only if type, start and end all match.

    A boundary error counts as one false positive and one false negative, and an `I-x` that does not
    continue a `B-x`/`I-x` starts no entity.

    Args:
        true_tags: one list of IOB2 tags ("O", "B-x", "I-x") per sentence.
        pred_tags: same structure and lengths as `true_tags`.

    Raises:
        ValueError: different numbers of sentences, a sentence whose lengths differ, or a tag that is
            not "O", "B-<type>" or "I-<type>"; the message names the sentence index.
    """
    if len(true_tags) != len(pred_tags):
        raise ValueError(f"{len(true_tags)} true sentences but {len(pred_tags)} predicted sentences")
    for index, (true_sentence, pred_sentence) in enumerate(zip(true_tags, pred_tags)):
        if len(true_sentence) != len(pred_sentence):
            raise ValueError(
                f"sentence {index}: {len(true_sentence)} true tags but {len(pred_sentence)} predicted tags"
            )
        for tag in (*true_sentence, *pred_sentence):
            if tag != OUTSIDE_LABEL and not (tag[:2] in _BIO_PREFIXES and len(tag) > 2):
                raise ValueError(f"sentence {index}: tag {tag!r} is not 'O', 'B-<type>' or 'I-<type>'")

    true_tags = [list(sentence) for sentence in true_tags]
    pred_tags = [list(sentence) for sentence in pred_tags]
    # In strict IOB2 every entity starts with a B- tag; with none, seqeval's macro average warns on
    # an empty mean, so the all-zero answer is returned directly.
    if not any(tag.startswith("B-") for sentence in true_tags + pred_tags for tag in sentence):
        return EntityMetrics(precision=0.0, recall=0.0, f1=0.0, per_type={})
    report = classification_report(
        true_tags, pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    micro = report.pop("micro avg")
    per_type = {
        name: (float(row["precision"]), float(row["recall"]), float(row["f1-score"]), int(row["support"]))
        for name, row in report.items()
        if not name.endswith(" avg")
    }
    return EntityMetrics(
        precision=float(micro["precision"]),
        recall=float(micro["recall"]),
        f1=float(micro["f1-score"]),
        per_type=per_type,
    )


def build_report(
    true_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    labels: Sequence[str],
) -> EvaluationReport:
    """Token and entity scores for one split from per-sentence IOB2 tags.

    Token scores are over entity types: each tag is reduced to its type ("B-geo", "I-geo" -> "geo").
    Entity scores are strict spans on the tags as given, so IO predictions must be turned into IOB2
    first (e.g. `LabelMap.to_bio`).

    Args:
        true_tags: one list of IOB2 tags [len_i] per sentence (words, not sub-word pieces).
        pred_tags: same structure and lengths as `true_tags`.
        labels: the class names of either scheme, BIO ("O", "B-geo", "I-geo", ...) or IO ("O", "geo",
            ...); the token classes are their types, "O" first, in order of first appearance.

    Raises:
        ValueError: what `entity_metrics` rejects, or a tag whose type is not in `labels`; the message
            names the sentence.
    """
    entity = entity_metrics(true_tags, pred_tags)
    type_labels = _type_labels(_check_labels(labels))
    type_ids = {name: i for i, name in enumerate(type_labels)}

    def to_type_ids(sentences: Sequence[Sequence[str]]) -> np.ndarray:
        ids = []
        for index, sentence in enumerate(sentences):
            for tag in sentence:
                if _strip_prefix(tag) not in type_ids:
                    raise ValueError(f"sentence {index}: tag {tag!r} has a type not in {type_labels}")
                ids.append(type_ids[_strip_prefix(tag)])
        return np.array(ids, dtype=np.int64)

    true_ids = to_type_ids(true_tags)
    return EvaluationReport(
        token=token_metrics(true_ids, to_type_ids(pred_tags), type_labels),
        entity=entity,
        num_sentences=len(true_tags),
        num_tokens=int(true_ids.size),
    )


def latent_pca(latent: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Projects latent vectors onto their leading principal components (deterministic).

    Each component's sign is fixed so its largest-magnitude loading is positive, so reruns on the same
    data give the same picture.

    Args:
        latent: float array [n, d].
        n_components: k, with 1 <= k <= min(n, d).

    Returns:
        Float64 array [n, k] of centred coordinates; column 0 has the largest variance.
    """
    latent = np.asarray(latent, dtype=np.float64)
    if latent.ndim != 2:
        raise ValueError(f"latent must be 2-D [n, d], got shape {latent.shape}")
    if not 1 <= n_components <= min(latent.shape):
        raise ValueError(f"n_components must be in [1, {min(latent.shape)}] for shape {latent.shape}")
    centred = latent - latent.mean(axis=0)
    _, _, right_vectors = np.linalg.svd(centred, full_matrices=False)  # [min(n, d), d]
    components = right_vectors[:n_components]  # [k, d]
    largest = components[np.arange(n_components), np.argmax(np.abs(components), axis=1)]
    components = components * np.where(largest < 0, -1.0, 1.0)[:, None]
    return centred @ components.T


def label_distribution(ids: np.ndarray, num_labels: int) -> np.ndarray:
    """Float array [num_labels]: fraction of `ids` (int array [n], n > 0) equal to each label id."""
    ids = _check_ids(ids, num_labels, "ids")
    if ids.size == 0:
        raise ValueError("ids is empty")
    return np.bincount(ids, minlength=num_labels) / ids.size


def _type_labels(labels: tuple[str, ...]) -> tuple[str, ...]:
    """Entity types of `labels`: "O" first when present, then types in order of first appearance."""
    types = [_strip_prefix(label) for label in labels]
    return tuple(dict.fromkeys(([OUTSIDE_LABEL] if OUTSIDE_LABEL in types else []) + types))


def _strip_prefix(label: str) -> str:
    """'B-geo' and 'I-geo' -> 'geo'; any other label unchanged."""
    return label[2:] if label[:2] in _BIO_PREFIXES and len(label) > 2 else label


def _check_labels(labels: Sequence[str]) -> tuple[str, ...]:
    """Returns `labels` as a tuple; raises ValueError if empty or duplicated."""
    labels = tuple(labels)
    if not labels:
        raise ValueError("labels is empty")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels contain duplicates: {labels}")
    return labels


def _check_ids(ids: np.ndarray, num_labels: int, name: str) -> np.ndarray:
    """Returns `ids` as an int64 array [n]; raises ValueError unless 1-D integers in [0, num_labels)."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"{name} must be 1-D [n], got shape {ids.shape}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must hold integer label ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= num_labels):
        raise ValueError(f"{name} has ids in [{ids.min()}, {ids.max()}], outside [0, {num_labels})")
    return ids


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise numerator / denominator as float64 (broadcast), 0.0 where the denominator is 0."""
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    result = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=result, where=denominator != 0)
    return result


def _read_only(array: np.ndarray) -> np.ndarray:
    """Marks `array` read-only so a frozen result cannot be changed in place; returns it."""
    array.setflags(write=False)
    return array
