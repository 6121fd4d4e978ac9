"""The classic reference: a linear-chain CRF over hand-written word features (CRFsuite, L-BFGS).

It is the row every results table carries (DEVELOPERS.md): a ten-second model the BERT taggers have to
beat on the same split and metrics. The features follow the usual CoNLL recipe — the lower-cased word,
2- and 3-character suffixes, casing and digit flags, a collapsed word shape, the same for the words on
either side, and sentence-boundary markers — with c1 = c2 = 0.1, 100 L-BFGS iterations and every
transition allowed (the settings of the measurement in issue #12). `templates="extended"` adds what the
`extended` lexical features of the CRF models add (`ner.lexical.TEMPLATE_SETS`): 2- and 3-character
prefixes, the lower-cased word and shape two words away on either side, and the word bigrams with each
neighbour.

`sklearn-crfsuite` is an optional dependency (extra `baselines`, installed by `./install.sh`); importing
this module without it works, building a `FeatureCRF` says what to install.
"""
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

if TYPE_CHECKING:
    from ner.preprocessor import DataSplit
    from ner.readers import Sentence

FeatureDict = Dict[str, Union[str, bool]]

_UPPER, _LOWER, _DIGIT = re.compile(r"[A-Z]+"), re.compile(r"[a-z]+"), re.compile(r"[0-9]+")


def word_shape(word: str) -> str:
    """The word with runs of capitals, small letters and digits collapsed: "McDonald's" → "XxXx'x"."""
    return _DIGIT.sub("d", _LOWER.sub("x", _UPPER.sub("X", word)))


def _own_features(word: str, prefix: str) -> FeatureDict:
    return {f"{prefix}lower": word.lower(), f"{prefix}suffix2": word[-2:], f"{prefix}suffix3": word[-3:],
            f"{prefix}title": word.istitle(), f"{prefix}upper": word.isupper(), f"{prefix}digit": word.isdigit(),
            f"{prefix}shape": word_shape(word)}


def _extended_features(words: Sequence[str], i: int) -> FeatureDict:
    def lower(j: int) -> str:
        return words[j].lower() if 0 <= j < len(words) else ("<s>" if j < 0 else "</s>")

    def shape(j: int) -> str:
        return word_shape(words[j]) if 0 <= j < len(words) else ("<s>" if j < 0 else "</s>")

    return {"prefix2": words[i][:2].lower(), "prefix3": words[i][:3].lower(), "-2:lower": lower(i - 2),
            "-2:shape": shape(i - 2), "+2:lower": lower(i + 2), "+2:shape": shape(i + 2),
            "-1|0:lower": f"{lower(i - 1)}|{lower(i)}", "0|+1:lower": f"{lower(i)}|{lower(i + 1)}"}


def sentence_features(words: Sequence[str], templates: str = "crf") -> List[FeatureDict]:
    """One feature dict per word: its own features, its neighbours' (prefixed -1: and +1:), BOS/EOS; with
    `templates="extended"` also prefixes, the words two away and the bigrams (module docstring)."""
    features = []
    for i, word in enumerate(words):
        feature = {"bias": True, **_own_features(word, "")}
        if i > 0:
            feature.update(_own_features(words[i - 1], "-1:"))
        else:
            feature["BOS"] = True
        if i + 1 < len(words):
            feature.update(_own_features(words[i + 1], "+1:"))
        else:
            feature["EOS"] = True
        if templates == "extended":
            feature.update(_extended_features(words, i))
        features.append(feature)
    return features


@dataclass(frozen=True)
class FeatureCRFOptions:
    """CRFsuite's L-BFGS settings: L1 (`c1`) and L2 (`c2`) weights and the iteration budget; `templates`, the
    word features (`crf` or `extended`, as `model.lexical_templates`)."""

    c1: float = 0.1
    c2: float = 0.1
    max_iterations: int = 100
    templates: str = "crf"


class FeatureCRF:
    """A linear-chain CRF on `sentence_features`, trained and decoded (Viterbi) by CRFsuite.

    Labels are whatever strings the caller trains on (IO, BIO, ...); `predict` returns the same kind.
    """

    def __init__(self, options: FeatureCRFOptions = FeatureCRFOptions()):
        try:
            import sklearn_crfsuite
        except ImportError as error:
            raise ImportError("the feature-CRF baseline needs sklearn-crfsuite: pip install 'sklearn-crfsuite>=0.5' "
                              "(./install.sh installs it)") from error
        self.options = options
        self._crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=options.c1, c2=options.c2,
                                         max_iterations=options.max_iterations, all_possible_transitions=True)

    def fit(self, sentences: Sequence[Sequence[str]], labels: Sequence[Sequence[str]]) -> "FeatureCRF":
        """Trains on word sequences and their label sequences (same lengths)."""
        for index, (words, tags) in enumerate(zip(sentences, labels)):
            if len(words) != len(tags):
                raise ValueError(f"training sentence {index}: {len(words)} words but {len(tags)} labels")
        self._crf.fit([sentence_features(words, self.options.templates) for words in sentences],
                      [list(tags) for tags in labels])
        return self

    def predict(self, sentences: Sequence[Sequence[str]]) -> List[List[str]]:
        """The Viterbi label sequence of each sentence."""
        features = [sentence_features(words, self.options.templates) for words in sentences]
        return [list(tags) for tags in self._crf.predict(features)]


@dataclass(frozen=True)
class SplitPredictions:
    """What `predict_on_split` returns: `parts` maps a part's name to its sentences (split order) and their
    predicted IOB2 tags (one list per sentence); `split` is the split, `entity_types` the corpus's types,
    `seconds` the training time."""

    parts: Dict[str, Tuple[List["Sentence"], List[List[str]]]]
    split: "DataSplit"
    entity_types: Tuple[str, ...]
    seconds: float


def predict_on_split(config, parts: Sequence[str] = ("test",), options: Optional[FeatureCRFOptions] = None):
    """Trains a `FeatureCRF` on the labelled part of `config`'s corpus and split (the split a model run of
    the same config gets) and tags each of `parts`. Without `options`, the defaults with the config's
    `model.lexical_templates`.

    Labels are the config's tag scheme (`data.tag_scheme`), turned back into IOB2 as the models' are.
    """
    import time

    from ner.corpora import read_corpus
    from ner.data import make_corpus_split
    from ner.tagging import LabelMap

    options = options or FeatureCRFOptions(templates=config.model.lexical_templates)
    corpus = read_corpus(config.data)
    split = make_corpus_split(config, corpus)
    label_map = LabelMap.for_scheme(config.data.tag_scheme, corpus.entity_types)
    train = [corpus.sentences[i] for i in split.labelled_ids]
    start = time.perf_counter()
    crf = FeatureCRF(options).fit([s.words for s in train],
                                  [label_map.from_bio(s.tags, where=f"sentence {s.sentence_id}") for s in train])
    seconds = time.perf_counter() - start
    tagged = {}
    for part in parts:
        sentences = [corpus.sentences[i] for i in split.parts()[part]]
        tagged[part] = (sentences, [label_map.to_bio(labels) for labels in crf.predict([s.words for s in sentences])])
    return SplitPredictions(tagged, split, label_map.entity_types, seconds)


def evaluate_on_split(config, parts: Sequence[str] = ("test",), options: Optional[FeatureCRFOptions] = None):
    """`predict_on_split`, scored with the package's metrics: `({part: EvaluationReport}, training seconds)`."""
    from ner.model_evaluator import build_report
    from ner.tagging import bio_tags

    predictions = predict_on_split(config, parts, options)
    return {part: build_report([list(s.tags) for s in sentences], predicted, bio_tags(predictions.entity_types))
            for part, (sentences, predicted) in predictions.parts.items()}, predictions.seconds
