"""The corpora a config can name (`data.corpus`), each read whole into a `Corpus`.

Which reader a name selects is one row of `ner.registry.CORPORA`; an unknown name is a ConfigError.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from ner.config import DataConfig, resolve_path
from ner.errors import ConfigError
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
    files (train first, then validation, then test), and the entity types are the ones their tags use.

    Two of the three paths naming the same file is a ConfigError: a model scored on (or selected by) its own
    training data reports numbers that mean nothing, and nothing downstream would say so."""
    by_id: Dict[int, Sentence] = {}
    parts = {}
    files = (("labelled", data.conll_train_path), ("validation", data.conll_validation_path),
             ("test", data.conll_test_path))
    _check_distinct_files({"data.conll_train_path": data.conll_train_path,
                           "data.conll_validation_path": data.conll_validation_path,
                           "data.conll_test_path": data.conll_test_path})
    for part, path in files:
        offset = len(by_id)
        for sentence in read_conll(resolve_path(path), scheme_in=data.conll_tags, encoding=data.encoding):
            by_id[offset + sentence.sentence_id] = Sentence(offset + sentence.sentence_id, sentence.words, sentence.tags)
        parts[part] = tuple(range(offset + 1, len(by_id) + 1))
    return Corpus(by_id, corpus_entity_types(by_id.values()), parts, ", ".join(path for _, path in files))


def _check_distinct_files(paths: Dict[str, str]) -> None:
    """Raises ConfigError if two of the config keys' paths resolve to the same file (same path after
    resolving links and `..`, or, for files that exist, the same device and inode)."""
    seen: Dict[object, str] = {}
    for key, path in paths.items():
        resolved = Path(resolve_path(path)).resolve()
        try:
            identity: object = (resolved.stat().st_dev, resolved.stat().st_ino)
        except OSError:
            identity = resolved
        if identity in seen:
            first = seen[identity]
            raise ConfigError(
                f"{first} ({paths[first]}) and {key} ({path}) are the same file {resolved}; "
                "expected three different files for the train, validation and test parts"
            )
        seen[identity] = key
