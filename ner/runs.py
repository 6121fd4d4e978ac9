"""Run storage: what a run directory (`saved_models/<run name>/`) holds besides weights, and how a run is found.

A run directory holds the resolved config (`config.yaml`), the split by sentence id (`split.json`), the
labels in id order (`labels.json`), the semi-supervised prior (`prior.json`), the training history and
the weights (`ner.trainers.trainer`). While a process trains a run, its directory also holds `train.lock`
(`run_lock`), and the commands that read a run (`run_dir_for`: evaluate, predict, export, uncertainty, a
semi-supervised stage's `init_run`) refuse it: its config, labels and weights change while it trains.
"""
import contextlib
import json
import os
import socket
from pathlib import Path
from typing import Iterator, Optional, Sequence

from ner.config import CONFIG_DIR, load_config, resolve_path
from ner.errors import ConfigError, NerError
from ner.tagging import LabelMap
from ner.utils import write_text_atomic

CONFIG_FILE = "config.yaml"
PRIOR_FILE = "prior.json"
LABELS_FILE = "labels.json"
SPLIT_FILE = "split.json"
LOCK_FILE = "train.lock"


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
    """The directory of a trained run, named (`bert_ner`) or given as its directory, to read.

    Raises NerError if there is none, or if a live process holds its `train.lock` (`run_lock`).
    """
    candidate = Path(run)
    run_dir = candidate if (candidate / CONFIG_FILE).is_file() else resolve_path(saved_models_dir) / run
    if not (run_dir / CONFIG_FILE).is_file():
        raise NerError(f"run '{run}' not found: expected {run_dir / CONFIG_FILE}; train it first "
                       f"(e.g. python -m examples.example_train_bert_ner)")
    holder = _live_holder(run_dir / LOCK_FILE)
    if holder is not None:
        raise NerError(f"{_being_trained(run_dir, holder)}; expected a run no process is training (its config, "
                       "labels and weights change meanwhile): wait for the training to finish, or delete the lock "
                       "if that process is gone")
    return run_dir


def find_run(run: str, overrides: Sequence[str] = (), saved_models_dir: Optional[str] = None) -> Path:
    """The directory of `run` (a name or a run directory), looked up in `saved_models_dir`; None takes the
    `paths.saved_models_dir` that `overrides` give the default config (`config/config.yaml`), the same
    directory training with those overrides writes to."""
    if saved_models_dir is None:
        saved_models_dir = load_config(CONFIG_DIR / "config.yaml", overrides).paths.saved_models_dir
    return run_dir_for(run, saved_models_dir)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Holds `<run dir>/train.lock` (this process's pid and host) while the body runs: one writer per run.

    The lock is created with O_CREAT|O_EXCL, so of two processes only one gets it; the other raises NerError
    naming the holder. A lock whose process no longer runs on this host is taken over. On exit the lock is
    removed, and the run directory too if nothing else was written to it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    while True:
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            holder = _live_holder(path)
            if holder is not None:
                raise NerError(f"{_being_trained(run_dir, holder)}; expected one training per run at a time: wait "
                               "for it to finish, or delete the lock if that process is gone") from None
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    os.write(handle, f"{os.getpid()} {socket.gethostname()}\n".encode())
    os.close(handle)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only if empty: a training that failed before writing anything leaves no directory


def _live_holder(path: Path) -> Optional[tuple]:
    """(pid, host) of the process holding a lock file, ("?", "?") if it cannot be read; None if there is no
    lock or its process is known to be gone (`_is_stale`)."""
    if not path.exists():
        return None
    holder = _lock_holder(path)
    if holder is None:
        return ("?", "?")
    return None if _is_stale(holder) else holder


def _being_trained(run_dir: Path, holder: tuple) -> str:
    pid, host = holder
    return f"run '{run_dir.name}' is being trained by process {pid} on {host} (lock {run_dir / LOCK_FILE})"


def _lock_holder(path: Path) -> Optional[tuple]:
    """(pid, host) written in a lock file; None when it cannot be read or parsed."""
    try:
        pid, host = path.read_text(encoding="utf-8").split()
        return int(pid), host
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _is_stale(holder: tuple) -> bool:
    """Whether a lock's process is known to be gone: it ran on this host and no process has its pid."""
    pid, host = holder
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a process of another user
        return False
    return False
