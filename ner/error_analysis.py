"""Where a tagger's entity errors lie: by kind, and by whether the mention's words were seen in training.

NumPy-free bookkeeping over IOB2 tags, with entities read as seqeval reads them for entity F1
(`ner.uncertainty.entities.entity_spans`: `(row, start, end, type)`, `end` exclusive).

- **Error kinds.** Each gold entity that is not predicted with its exact span and type is one of:
  `wrong type` (a predicted entity has its span, with another type), `boundary` (a predicted entity
  overlaps it with another span) or `missed` (no predicted entity overlaps it). A predicted entity that
  overlaps no gold entity is `spurious`. (A predicted entity that overlaps a gold one wrongly is counted
  once, on the gold side.)
- **Mention novelty.** A gold test mention is `labelled` when its words (lower-cased) are a gold mention
  of any type in the labelled part, else `unlabelled only` when they are one in the unlabelled part (what
  self-training can reach), else `new`. Recall is reported per novelty and type.
"""
import random
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ner.uncertainty.entities import EntitySpan, entity_spans

NOVELTIES = ("labelled", "unlabelled only", "new")
ERROR_KINDS = ("wrong type", "boundary", "missed", "spurious")


@dataclass(frozen=True)
class EntityError:
    """One error: `kind` (of ERROR_KINDS), the gold entity (None when spurious) and the predicted entities
    that overlap it (for `spurious`, the predicted entity alone)."""

    kind: str
    row: int
    gold: Optional[EntitySpan]
    predicted: Tuple[EntitySpan, ...]


def mention_text(words: Sequence[str], span: EntitySpan) -> str:
    """The lower-cased words of `span` (row, start, end, type), joined by single spaces."""
    return " ".join(words[span[1]:span[2]]).lower()


def mention_texts(words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]]) -> set:
    """The lower-cased texts of every gold mention of the rows `words` with IOB2 `tags`."""
    return {mention_text(words[span[0]], span) for span in entity_spans(tags)}


def spans_by_row(tags: Sequence[Sequence[str]]) -> Dict[int, List[EntitySpan]]:
    """The entities of IOB2 `tags` (one list per row) by row index, left to right; rows without any absent."""
    by_row: Dict[int, List[EntitySpan]] = {}
    for span in entity_spans(tags):
        by_row.setdefault(span[0], []).append(span)
    return by_row


def _overlaps(first: EntitySpan, second: EntitySpan) -> bool:
    return first[1] < second[2] and second[1] < first[2]


def entity_errors(gold_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]) -> List[EntityError]:
    """Every error of `predicted_tags` against `gold_tags` (IOB2, one list per row), in row order: the gold
    side's errors of a row first, then its spurious entities."""
    gold_by_row, predicted_by_row = spans_by_row(gold_tags), spans_by_row(predicted_tags)
    errors = []
    for row in range(len(gold_tags)):
        gold, predicted = gold_by_row.get(row, []), predicted_by_row.get(row, [])
        predicted_set = set(predicted)
        for span in gold:
            if span in predicted_set:
                continue
            overlapping = tuple(p for p in predicted if _overlaps(p, span))
            if any(p[1:3] == span[1:3] for p in overlapping):
                kind = "wrong type"
            elif overlapping:
                kind = "boundary"
            else:
                kind = "missed"
            errors.append(EntityError(kind, row, span, overlapping))
        errors.extend(EntityError("spurious", row, None, (p,)) for p in predicted
                      if not any(_overlaps(p, g) for g in gold))
    return errors


def error_kind_counts(errors: Iterable[EntityError]) -> Counter:
    """Counts by (kind, gold type, predicted type): the predicted type of `wrong type`, the gold type of
    `boundary` and `missed` twice ("-" for the side that has none), the predicted type of `spurious`."""
    counts = Counter()
    for error in errors:
        if error.kind == "wrong type":
            same_span = next(p for p in error.predicted if p[1:3] == error.gold[1:3])
            counts[(error.kind, error.gold[3], same_span[3])] += 1
        elif error.kind == "spurious":
            counts[(error.kind, "-", error.predicted[0][3])] += 1
        else:
            counts[(error.kind, error.gold[3], "-")] += 1
    return counts


def recall_by_novelty(words: Sequence[Sequence[str]], gold_tags: Sequence[Sequence[str]],
                      predicted_tags: Sequence[Sequence[str]], labelled_mentions: set,
                      unlabelled_mentions: set) -> Dict[Tuple[str, str], Tuple[int, int]]:
    """`{(novelty, type): (gold mentions, of them predicted exactly)}` for the test rows `words`, with
    `type` "all" for every type together; `labelled_mentions` and `unlabelled_mentions` are
    `mention_texts` of the labelled and the unlabelled part."""
    predicted = set(entity_spans(predicted_tags))
    counts: Dict[Tuple[str, str], List[int]] = {}
    for span in entity_spans(gold_tags):
        text = mention_text(words[span[0]], span)
        novelty = ("labelled" if text in labelled_mentions
                   else "unlabelled only" if text in unlabelled_mentions else "new")
        for key in ((novelty, span[3]), (novelty, "all")):
            total_found = counts.setdefault(key, [0, 0])
            total_found[0] += 1
            total_found[1] += span in predicted
    return {key: (total, found) for key, (total, found) in counts.items()}


def bracketed(words: Sequence[str], spans: Sequence[EntitySpan], start: int, end: int) -> str:
    """Words `start:end` of a row with each of `spans` (of that row, inside the window or cut at its edges)
    written `[words]type`."""
    marked = list(words)
    for _, span_start, span_end, entity_type in spans:
        first, last = max(span_start, start), min(span_end, end) - 1
        if first <= last:
            marked[first] = "[" + marked[first]
            marked[last] = marked[last] + "]" + entity_type
    return " ".join(marked[start:end])


def sample_errors(errors: Sequence[EntityError], size: int, seed: int) -> List[EntityError]:
    """`size` errors drawn without replacement by `random.Random(seed)` (all of them when fewer)."""
    return random.Random(seed).sample(list(errors), min(size, len(errors)))
