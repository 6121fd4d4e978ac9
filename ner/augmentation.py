"""Mention replacement (Dai & Adel 2020, "An Analysis of Simple Data Augmentation for Named Entity
Recognition"): more labelled sentences made from the labelled part itself (`split.mention_replacement_copies`).

Each labelled sentence holding at least one entity gets `copies` new sentences. In each copy every entity is,
with probability `rate`, replaced by an entity of the same type drawn at random from all the entity
occurrences of the labelled part (so frequent names come up more often), its words and tags (`B-x`, `I-x`,
...) taking the old one's place; the rest of the sentence is kept. A copy may come out unchanged (no entity
drawn, or the same words drawn): it stays, so `rate: 0` copies the same sentences unchanged, the control
that trains on as many sentences and steps without new mentions.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ner.readers import Sentence
from ner.uncertainty.entities import entity_spans

Mention = Tuple[Tuple[str, ...], Tuple[str, ...]]  # (words, IOB2 tags) of one entity occurrence


def mention_replacement(sentences: Sequence[Sentence], copies: int, rate: float, seed: int,
                        first_id: int) -> List[Sentence]:
    """The new sentences, numbered from `first_id` on: `copies` of each sentence with an entity, in order.

    Args:
      sentences: the labelled sentences (gold IOB2 tags); their entities are also the replacements drawn.
      copies: new sentences per sentence with an entity.
      rate: the probability that each entity of a copy is replaced, in [0, 1].
      seed: seeds the draws; the same arguments always give the same sentences.
    """
    spans_of = [entity_spans([sentence.tags]) for sentence in sentences]
    mentions: Dict[str, List[Mention]] = {}
    for sentence, spans in zip(sentences, spans_of):
        for _, start, end, entity_type in spans:
            mentions.setdefault(entity_type, []).append((sentence.words[start:end], sentence.tags[start:end]))
    rng = np.random.default_rng(seed)
    made: List[Sentence] = []
    for sentence, spans in zip(sentences, spans_of):
        if not spans:
            continue
        for _ in range(copies):
            words, tags, last = [], [], 0
            for _, start, end, entity_type in spans:
                words += sentence.words[last:start]
                tags += sentence.tags[last:start]
                if rng.random() < rate:
                    pool = mentions[entity_type]
                    new_words, new_tags = pool[rng.integers(len(pool))]
                else:
                    new_words, new_tags = sentence.words[start:end], sentence.tags[start:end]
                words += new_words
                tags += new_tags
                last = end
            made.append(Sentence(first_id + len(made), tuple(words) + sentence.words[last:],
                                 tuple(tags) + sentence.tags[last:]))
    return made
