"""The corpora a config can name (`data.corpus`), each read whole into a `Corpus`.

Which reader a name selects is one row of `ner.registry.CORPORA`; an unknown name is a ConfigError.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ner.config import DataConfig, resolve_path
from ner.readers import Sentence, corpus_entity_types, read_conll, read_gmb_csv
from ner.registry import CORPORA, lookup, resolve
from ner.tagging import ENTITY_TYPES


@dataclass(frozen=True)
class Corpus:
    """The sentences of the config's corpus by id, the entity types its tags use, and, for a corpus whose
    files fix the parts (CoNLL: train, validation, test), the sentence ids of each part."""

    sentences: Dict[int, Sentence]
    entity_types: Tuple[str, ...]
    fixed_parts: Optional[Dict[str, Tuple[int, ...]]]
    source: str


def read_corpus(data: DataConfig) -> Corpus:
    """Reads the corpus `data.corpus` names with its registered reader."""
    return resolve(lookup(CORPORA, data.corpus, "corpus"))(data)


def read_gmb_corpus(data: DataConfig) -> Corpus:
    """Corpus gmb: the GMB CSV at `data.gmb_path`, with the GMB entity types; the config's split divides it."""
    sentences = read_gmb_csv(resolve_path(data.gmb_path), encoding=data.encoding)
    return Corpus({s.sentence_id: s for s in sentences}, ENTITY_TYPES, None, data.gmb_path)


def read_conll_corpus(data: DataConfig) -> Corpus:
    """Corpus conll: the three CoNLL files, which fix the parts; their sentences are numbered on across the
    files (train first, then validation, then test), and the entity types are the ones their tags use."""
    by_id: Dict[int, Sentence] = {}
    parts = {}
    files = (("labelled", data.conll_train_path), ("validation", data.conll_validation_path),
             ("test", data.conll_test_path))
    for part, path in files:
        offset = len(by_id)
        for sentence in read_conll(resolve_path(path), scheme_in=data.conll_tags, encoding=data.encoding):
            by_id[offset + sentence.sentence_id] = Sentence(offset + sentence.sentence_id, sentence.words, sentence.tags)
        parts[part] = tuple(range(offset + 1, len(by_id) + 1))
    return Corpus(by_id, corpus_entity_types(by_id.values()), parts, ", ".join(path for _, path in files))
