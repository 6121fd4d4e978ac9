"""Tag schemes: the label set a model predicts and conversions to and from the gold IOB2 (BIO) tags.

The data files hold (or are converted to) IOB2 tags ("O", "B-geo", "I-geo", ...). A model is trained on
one scheme's labels:

* "io":    "O" plus one label per entity type ("geo", "per", ...): seed 001's collapsed 9-class view.
* "bio":   "O" plus "B-<type>" and "I-<type>" per type (IOB2): every span starts with "B-".
* "iob1":  the same labels as "bio", but a span starts with "I-"; "B-<type>" only starts a span that
           directly follows another span of the same type (CoNLL-2003's original tags).
* "biluo": "O" plus "B-", "I-", "L-" (last) and "U-" (unit, a one-word span) per type.

Span scoring (seqeval) works on BIO, so every scheme converts its labels back with `LabelMap.to_bio`,
which reads any label sequence leniently (a model may predict an invalid one). `LabelMap.check_sequence`
is the strict reading: it rejects a sequence the scheme does not allow, and `LabelMap.allowed_transitions`
gives the same rule as boolean matrices for a CRF's transition constraints. `LabelMap.span_reading` gives
`to_bio`'s reading as tables over label ids, for code in the TF graph (`ner.layers.crf.span_starts`).

A scheme is four functions in `_SCHEMES` (labels, from BIO, to BIO, allowed transition) and a rule text.
"""
import functools
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional, Sequence

from ner.errors import ConfigError, DataError

ENTITY_TYPES: tuple[str, ...] = ("geo", "gpe", "per", "org", "tim", "art", "nat", "eve")
OUTSIDE = "O"
IGNORE_LABEL = -1  # label id of positions that carry no label: [CLS], [SEP], continuation pieces, padding
FIRST_PIECE_MASK = "first_piece_mask"  # the feature marking each word's first piece, where its label id sits
_PREFIXES = ("B-", "I-")
_BILUO_PREFIXES = ("B-", "I-", "L-", "U-")


def _entity_type(label: str) -> str:
    """The entity type of a label in any scheme: "B-geo" / "U-geo" -> "geo", "geo" -> "geo", "O" -> "O"."""
    return label[2:] if label[:2] in _BILUO_PREFIXES else label


def bio_tags(entity_types: Sequence[str] = ENTITY_TYPES) -> tuple[str, ...]:
    """All valid IOB2 tags: ("O", "B-<t0>", "I-<t0>", "B-<t1>", ...) in `entity_types` order."""
    return (OUTSIDE,) + tuple(f"{p}{t}" for t in entity_types for p in _PREFIXES)


def validate_bio(tags: Sequence[str], where: str, entity_types: Sequence[str] = ENTITY_TYPES) -> None:
    """Raises DataError naming `where` if a tag is not "O", "B-<type>" or "I-<type>" for a known type.

    Only single tags are checked, not the sequence: an "I-x" after "O" is kept as the gold data has it
    (`LabelMap.check_sequence` is the sequence check). For more than one tag the message also gives the
    tag's 1-based position.
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
    """One tag scheme: its label list, the conversions from gold BIO tags and back to BIO, and which
    label may follow which (`allowed(previous, current)`, None standing for the sentence boundary)."""

    labels: Callable[[Sequence[str]], tuple[str, ...]]
    from_bio: Callable[[Sequence[str]], list[str]]
    to_bio: Callable[[Sequence[str]], list[str]]
    allowed: Callable[[Optional[str], Optional[str]], bool]
    rule: str


def _same_type(previous: Optional[str], current: str) -> bool:
    """Whether `previous` is an entity label (not O, not the boundary) of `current`'s type."""
    return previous not in (None, OUTSIDE) and _entity_type(previous) == _entity_type(current)


def _any_transition(previous: Optional[str], current: Optional[str]) -> bool:
    return True


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
    """Repairs an "I-x" that does not continue a span of type x into "B-x" (a predicted span start).

    This is also exactly the IOB1 → IOB2 conversion: in IOB1 such an "I-x" starts a span, and a "B-x"
    (which IOB1 writes only after a span of type x) starts one too.
    """
    out, previous_type = [], OUTSIDE
    for label in labels:
        kind = _entity_type(label)
        if label.startswith("I-") and kind != previous_type:
            label = "B-" + kind
        out.append(label)
        previous_type = kind
    return out


def iob1_to_bio(tags: Sequence[str]) -> list[str]:
    """IOB1 tags (CoNLL-2003) to IOB2: an "I-x" that does not continue a span of type x starts one."""
    return _bio_to_bio(tags)


def _bio_allowed(previous: Optional[str], current: Optional[str]) -> bool:
    return current is None or not current.startswith("I-") or _same_type(previous, current)


def _iob1_from_bio(tags: Sequence[str]) -> list[str]:
    """Every span starts with "I-", except one that directly follows a span of its own type ("B-")."""
    out, previous = [], None
    for tag in _bio_to_bio(tags):
        if tag.startswith("B-") and not _same_type(previous, tag):
            out.append("I-" + tag[2:])
        else:
            out.append(tag)
        previous = tag
    return out


def _iob1_allowed(previous: Optional[str], current: Optional[str]) -> bool:
    return current is None or not current.startswith("B-") or _same_type(previous, current)


def _biluo_labels(entity_types: Sequence[str]) -> tuple[str, ...]:
    return (OUTSIDE,) + tuple(f"{p}{t}" for t in entity_types for p in _BILUO_PREFIXES)


def _biluo_from_bio(tags: Sequence[str]) -> list[str]:
    """B-/I- stay when the span goes on at the next word; else the span's last word becomes L- (or U-
    for a one-word span). A stray "I-x" is read as a span start first, as seqeval reads it."""
    spans = _bio_to_bio(tags)
    out = []
    for i, tag in enumerate(spans):
        if tag == OUTSIDE:
            out.append(OUTSIDE)
            continue
        continues = i + 1 < len(spans) and spans[i + 1] == "I-" + tag[2:]
        if tag.startswith("B-"):
            out.append(("B-" if continues else "U-") + tag[2:])
        else:
            out.append(("I-" if continues else "L-") + tag[2:])
    return out


def _biluo_to_bio(labels: Sequence[str]) -> list[str]:
    """Lenient: "I-x"/"L-x" continue a span of type x still open (after "B-x" or "I-x"), else start
    one; "B-x" and "U-x" always start one; "L-x" and "U-x" close it."""
    out, open_type = [], None
    for label in labels:
        if label == OUTSIDE:
            out.append(OUTSIDE)
            open_type = None
            continue
        prefix, kind = label[:2], label[2:]
        continues = prefix in ("I-", "L-") and open_type == kind
        out.append(("I-" if continues else "B-") + kind)
        open_type = kind if prefix in ("B-", "I-") else None
    return out


def _biluo_allowed(previous: Optional[str], current: Optional[str]) -> bool:
    inside = previous is not None and previous[:2] in ("B-", "I-")  # `previous` leaves a span open
    if current is not None and current[:2] in ("I-", "L-"):
        return inside and _entity_type(previous) == _entity_type(current)
    return not inside


_SCHEMES: dict[str, _Scheme] = {
    "io": _Scheme(_io_labels, _io_from_bio, _io_to_bio, _any_transition, "every sequence is valid"),
    "bio": _Scheme(bio_tags, _bio_from_bio, _bio_to_bio, _bio_allowed,
                   "an I-<type> tag must follow B-<type> or I-<type>"),
    "iob1": _Scheme(bio_tags, _iob1_from_bio, _bio_to_bio, _iob1_allowed,
                    "a B-<type> tag must directly follow B-<type> or I-<type>"),
    "biluo": _Scheme(_biluo_labels, _biluo_from_bio, _biluo_to_bio, _biluo_allowed,
                     "I-<type> and L-<type> must follow B-<type> or I-<type>; O, B- and U- must not, "
                     "and a sentence must not end after B- or I-"),
}
TAG_SCHEMES: tuple[str, ...] = tuple(_SCHEMES)


def _scheme(name: str) -> _Scheme:
    if name not in _SCHEMES:
        raise ConfigError(f"unknown tag scheme {name!r}; valid schemes: {', '.join(TAG_SCHEMES)}")
    return _SCHEMES[name]


class AllowedTransitions(NamedTuple):
    """Which label ids may start a sentence, follow one another, and end a sentence under a scheme.

    start: [C] bools; transitions: [C][C] bools, `transitions[i][j]` is whether label j may follow label i;
    end: [C] bools. All True for "io".
    """

    start: tuple[bool, ...]
    transitions: tuple[tuple[bool, ...], ...]
    end: tuple[bool, ...]


class SpanReading(NamedTuple):
    """How `LabelMap.to_bio` reads label ids as entity spans. Every scheme's `to_bio` reads a label against
    the one before it only, so two tables describe it fully.

    types: [C] ints, 0 for "O" and i + 1 for a label of the i-th entity type; continues: [C][C] bools,
    `continues[i][j]` is whether label j right after label i continues i's span (`to_bio` makes it "I-").
    """

    types: tuple[int, ...]
    continues: tuple[tuple[bool, ...], ...]


@dataclass(frozen=True)
class LabelMap:
    """The labels of one tag scheme and their integer ids (the id is the label's index in `labels`).

    Build it with `LabelMap.for_scheme("bio")` (or "io", "iob1", "biluo"); `labels[0]` is always "O".
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
        """The label map of `scheme` (one of `TAG_SCHEMES`) over `entity_types`, in that order."""
        labels = _scheme(scheme).labels
        bad = [t for t in entity_types if not t or t == OUTSIDE or t[:2] in _BILUO_PREFIXES]
        if not entity_types or bad or len(set(entity_types)) != len(entity_types):
            raise ConfigError(
                f"entity types must be unique, non-empty names other than {OUTSIDE!r} without a "
                f"B-/I-/L-/U- prefix; got {tuple(entity_types)}"
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
        """Strips "B-"/"I-"/"L-"/"U-": "B-geo" -> "geo"; "geo" -> "geo"; "O" stays "O"."""
        return _entity_type(label)

    def from_bio(self, tags: Sequence[str], where: str = "tag sequence") -> list[str]:
        """Converts gold IOB2 tags to this scheme's labels; DataError naming `where` for an invalid tag.

        A stray "I-x" (after "O" or another type) is kept by "bio" as the gold data has it; "iob1" and
        "biluo" read it as a span start, as span scoring does.
        """
        validate_bio(tags, where, self.entity_types)
        return _SCHEMES[self.scheme].from_bio(tags)

    def to_bio(self, labels: Sequence[str]) -> list[str]:
        """Converts this scheme's labels (e.g. predictions) to valid IOB2 tags for span scoring.

        Invalid sequences are read leniently: a label that cannot continue the current span starts one.
        """
        self._check_known(labels)
        return _SCHEMES[self.scheme].to_bio(labels)

    def check_sequence(self, labels: Sequence[str], where: str = "tag sequence") -> None:
        """Raises DataError naming `where`, the 1-based position and the scheme's rule at the first label
        that the scheme does not allow where it stands (e.g. "I-per" after "B-org" under "bio")."""
        self._check_known(labels)
        scheme = _SCHEMES[self.scheme]
        previous = None
        for position, label in enumerate(labels, start=1):
            if not scheme.allowed(previous, label):
                after = f"after {previous!r}" if previous is not None else "at the start of a sentence"
                raise DataError(f"{where}, tag {position}: {label!r} is not allowed {after} under the "
                                f"{self.scheme} scheme; {scheme.rule}")
            previous = label
        if previous is not None and not scheme.allowed(previous, None):
            raise DataError(f"{where}, tag {len(labels)}: a sentence cannot end with {previous!r} under the "
                            f"{self.scheme} scheme; {scheme.rule}")

    def allowed_transitions(self) -> AllowedTransitions:
        """The scheme's rule over label ids, for a CRF's transition constraints (see `AllowedTransitions`)."""
        allowed = _SCHEMES[self.scheme].allowed
        return AllowedTransitions(
            start=tuple(allowed(None, label) for label in self.labels),
            transitions=tuple(tuple(allowed(previous, label) for label in self.labels) for previous in self.labels),
            end=tuple(allowed(label, None) for label in self.labels),
        )

    def span_reading(self) -> SpanReading:
        """`to_bio`'s reading over label ids (see `SpanReading`), taken from `to_bio` itself."""
        types = tuple(0 if label == OUTSIDE else self.entity_types.index(_entity_type(label)) + 1
                      for label in self.labels)
        continues = tuple(tuple(self.to_bio([previous, label])[1].startswith("I-") for label in self.labels)
                          for previous in self.labels)
        return SpanReading(types, continues)

    def _check_known(self, labels: Sequence[str]) -> None:
        unknown = sorted(set(labels) - self._ids.keys())
        if unknown:
            raise DataError(f"labels {unknown} are not in the {self.scheme} labels {self.labels}")
