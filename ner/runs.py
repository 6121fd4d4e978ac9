"""Run storage: what a run directory (`saved_models/<run name>/`) holds besides weights, and how a run is found.

A run directory holds the resolved config (`config.yaml`), the split by sentence id (`split.json`), the
labels in id order (`labels.json`), the semi-supervised prior (`prior.json`), the training history and
the weights (`ner.trainers.trainer`).
"""
import json
from pathlib import Path
from typing import Optional, Sequence

from ner.config import CONFIG_DIR, load_config, resolve_path
from ner.errors import ConfigError, NerError
from ner.tagging import LabelMap
from ner.utils import write_text_atomic

CONFIG_FILE = "config.yaml"
PRIOR_FILE = "prior.json"
LABELS_FILE = "labels.json"
SPLIT_FILE = "split.json"


def write_label_map(run_dir: Path, label_map: LabelMap) -> Path:
    """Saves the labels a run's model predicts, in id order, as `labels.json` in its run directory."""
    body = json.dumps({"scheme": label_map.scheme, "labels": list(label_map.labels)}, indent=1)
    return write_text_atomic(run_dir / LABELS_FILE, body + "\n")


def read_label_map(run_dir: Path) -> LabelMap:
    """The label map a run was trained with (its `labels.json`); NerError naming the file otherwise."""
    path = Path(run_dir) / LABELS_FILE
    if not path.is_file():
        raise NerError(f"{path} not found: the run's labels are missing; expected a run trained by this "
                       f"version of ner (retrain it)")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return LabelMap(scheme=values["scheme"], labels=tuple(values["labels"]))
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as error:
        raise NerError(f"{path}: not a labels file ({error}); expected {{\"scheme\": ..., \"labels\": [...]}}") from None


def run_dir_for(run: str, saved_models_dir: str = "saved_models") -> Path:
    """A run is named (`bert_ner`) or given as its directory."""
    candidate = Path(run)
    run_dir = candidate if (candidate / CONFIG_FILE).is_file() else resolve_path(saved_models_dir) / run
    if not (run_dir / CONFIG_FILE).is_file():
        raise NerError(f"run '{run}' not found: expected {run_dir / CONFIG_FILE}; train it first "
                       f"(e.g. python -m examples.example_train_bert_ner)")
    return run_dir


def find_run(run: str, overrides: Sequence[str] = (), saved_models_dir: Optional[str] = None) -> Path:
    """The directory of `run` (a name or a run directory), looked up in `saved_models_dir`; None takes the
    `paths.saved_models_dir` that `overrides` give the default config (`config/config.yaml`), the same
    directory training with those overrides writes to."""
    if saved_models_dir is None:
        saved_models_dir = load_config(CONFIG_DIR / "config.yaml", overrides).paths.saved_models_dir
    return run_dir_for(run, saved_models_dir)
