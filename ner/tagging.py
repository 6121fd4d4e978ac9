"""Tag schemes: the label set a model predicts and conversions to and from the gold IOB2 (BIO) tags.

The data files hold IOB2 tags ("O", "B-geo", "I-geo", ...). A model is trained on one scheme's labels:

* "io":  "O" plus one label per entity type ("geo", "per", ...): seed 001's collapsed 9-class view.
* "bio": "O" plus "B-<type>" and "I-<type>" per type, i.e. the gold tags themselves.

Span scoring (seqeval) works on BIO, so every scheme converts its labels back with `LabelMap.to_bio`.
A scheme is three functions in `_SCHEMES`; adding one (BILUO, IOB1) means adding an entry there.
"""
import functools
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Sequence

from ner.errors import ConfigError, DataError

ENTITY_TYPES: tuple[str, ...] = ("geo", "gpe", "per", "org", "tim", "art", "nat", "eve")
OUTSIDE = "O"
IGNORE_LABEL = -1  # label id of positions that carry no label: [CLS], [SEP], continuation pieces, padding
_PREFIXES = ("B-", "I-")


def _entity_type(label: str) -> str:
    """The entity type of a label in any scheme: "B-geo" -> "geo", "geo" -> "geo", "O" -> "O"."""
    return label[2:] if label[:2] in _PREFIXES else label


def bio_tags(entity_types: Sequence[str] = ENTITY_TYPES) -> tuple[str, ...]:
    """All valid IOB2 tags: ("O", "B-<t0>", "I-<t0>", "B-<t1>", ...) in `entity_types` order."""
    return (OUTSIDE,) + tuple(f"{p}{t}" for t in entity_types for p in _PREFIXES)


def validate_bio(tags: Sequence[str], where: str, entity_types: Sequence[str] = ENTITY_TYPES) -> None:
    """Raises DataError naming `where` if a tag is not "O", "B-<type>" or "I-<type>" for a known type.

    Only single tags are checked, not the sequence: an "I-x" after "O" is kept as the gold data has it.
    For more than one tag the message also gives the tag's 1-based position.
    """
    allowed = _tag_set(tuple(entity_types))
    for position, tag in enumerate(tags, start=1):
        if tag not in allowed:
            at = f"{where}, tag {position}" if len(tags) > 1 else where
            raise DataError(f"{at}: invalid tag {tag!r}; expected one of {', '.join(bio_tags(entity_types))}")


@functools.lru_cache(maxsize=None)
def _tag_set(entity_types: tuple[str, ...]) -> frozenset[str]:
    """`bio_tags` as a set, built once per entity-type tuple (validate_bio runs once per sentence)."""
    return frozenset(bio_tags(entity_types))


class _Scheme(NamedTuple):
    """One tag scheme: its label list and the conversions from gold BIO tags and back to BIO."""

    labels: Callable[[Sequence[str]], tuple[str, ...]]
    from_bio: Callable[[Sequence[str]], list[str]]
    to_bio: Callable[[Sequence[str]], list[str]]


def _io_labels(entity_types: Sequence[str]) -> tuple[str, ...]:
    return (OUTSIDE,) + tuple(entity_types)


def _io_from_bio(tags: Sequence[str]) -> list[str]:
    return [_entity_type(tag) for tag in tags]


def _io_to_bio(labels: Sequence[str]) -> list[str]:
    """A run of equal IO labels becomes one span: "B-x" then "I-x" (adjacent same-type spans merge)."""
    out, previous = [], OUTSIDE
    for label in labels:
        if label == OUTSIDE:
            out.append(OUTSIDE)
        else:
            out.append(("I-" if label == previous else "B-") + label)
        previous = label
    return out


def _bio_from_bio(tags: Sequence[str]) -> list[str]:
    return list(tags)


def _bio_to_bio(labels: Sequence[str]) -> list[str]:
    """Repairs an "I-x" that does not continue a span of type x into "B-x" (a predicted span start)."""
    out, previous_type = [], OUTSIDE
    for label in labels:
        kind = _entity_type(label)
        if label.startswith("I-") and kind != previous_type:
            label = "B-" + kind
        out.append(label)
        previous_type = kind
    return out


_SCHEMES: dict[str, _Scheme] = {
    "io": _Scheme(_io_labels, _io_from_bio, _io_to_bio),
    "bio": _Scheme(bio_tags, _bio_from_bio, _bio_to_bio),
}
TAG_SCHEMES: tuple[str, ...] = tuple(_SCHEMES)


def _scheme(name: str) -> _Scheme:
    if name not in _SCHEMES:
        raise ConfigError(f"unknown tag scheme {name!r}; valid schemes: {', '.join(TAG_SCHEMES)}")
    return _SCHEMES[name]


@dataclass(frozen=True)
class LabelMap:
    """The labels of one tag scheme and their integer ids (the id is the label's index in `labels`).

    Build it with `LabelMap.for_scheme("io")` or `LabelMap.for_scheme("bio")`; `labels[0]` is always "O".
    Constructing it directly (e.g. from a saved model's config) checks that `labels` fit `scheme`.
    """

    scheme: str
    labels: tuple[str, ...]
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _entity_types: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        types = tuple(dict.fromkeys(_entity_type(label) for label in self.labels[1:]))
        expected = _scheme(self.scheme).labels(types)
        if tuple(self.labels) != expected:
            raise ConfigError(f"labels {tuple(self.labels)} are not {self.scheme} labels; expected {expected}")
        object.__setattr__(self, "_ids", {label: i for i, label in enumerate(self.labels)})
        object.__setattr__(self, "_entity_types", types)

    @classmethod
    def for_scheme(cls, scheme: str, entity_types: Sequence[str] = ENTITY_TYPES) -> "LabelMap":
        """The label map of `scheme` ("io" or "bio") over `entity_types`, in that order."""
        labels = _scheme(scheme).labels
        bad = [t for t in entity_types if not t or t == OUTSIDE or t[:2] in _PREFIXES]
        if not entity_types or bad or len(set(entity_types)) != len(entity_types):
            raise ConfigError(
                f"entity types must be unique, non-empty names other than {OUTSIDE!r} without a B-/I- prefix; "
                f"got {tuple(entity_types)}"
            )
        return cls(scheme=scheme, labels=labels(tuple(entity_types)))

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def entity_types(self) -> tuple[str, ...]:
        """The entity types in label order, e.g. ("geo", "gpe", ...)."""
        return self._entity_types

    def label_to_id(self, label: str) -> int:
        try:
            return self._ids[label]
        except KeyError:
            raise DataError(f"label {label!r} is not in the {self.scheme} labels {self.labels}") from None

    def id_to_label(self, label_id: int) -> str:
        if not 0 <= label_id < len(self.labels):
            raise DataError(f"label id {label_id} is outside 0..{len(self.labels) - 1} of the {self.scheme} labels")
        return self.labels[int(label_id)]

    @staticmethod
    def entity_type(label: str) -> str:
        """Strips "B-"/"I-": "B-geo" -> "geo"; "geo" -> "geo"; "O" stays "O"."""
        return _entity_type(label)

    def from_bio(self, tags: Sequence[str], where: str = "tag sequence") -> list[str]:
        """Converts gold IOB2 tags to this scheme's labels; DataError naming `where` for an invalid tag."""
        validate_bio(tags, where, self.entity_types)
        return _SCHEMES[self.scheme].from_bio(tags)

    def to_bio(self, labels: Sequence[str]) -> list[str]:
        """Converts this scheme's labels (e.g. predictions) to valid IOB2 tags for span scoring."""
        unknown = sorted(set(labels) - self._ids.keys())
        if unknown:
            raise DataError(f"labels {unknown} are not in the {self.scheme} labels {self.labels}")
        return _SCHEMES[self.scheme].to_bio(labels)
