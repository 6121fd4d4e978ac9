"""Small helpers shared by the package: seeding, atomic writes and file checksums."""
import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Type, Union

PathLike = Union[str, os.PathLike]


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras; call it from entry points and tests, never at import.

    Keras then draws the seeds of unseeded weight initializers from a generator of its own. Otherwise it
    draws them from Python's global `random`, which library code may use in between (the first TF-Hub
    encoder loaded in a process does), and the first run of a process would start from other weights
    than a second run with the same seed.
    """
    import tf_keras as keras

    keras.utils.set_random_seed(seed)  # random.seed, np.random.seed, tf.random.set_seed and Keras' generator


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success renames it onto `path` in one step.

    Works for a file or a directory: whatever the body writes at the yielded path replaces `path`
    only if the body finishes, so a crash never leaves a half-written file a later run would read.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and target.is_dir():
            old = tmp / (path.name + ".old")
            os.replace(path, old)
            os.replace(target, path)
        else:
            os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: PathLike, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` atomically and returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def file_sha256(path: PathLike) -> str:
    """The SHA-256 of a file's bytes, in hex (what `sha256sum` prints)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_vocab_lines(path: PathLike, error: Type[Exception]) -> List[str]:
    """The tokens of a vocab.txt, one per line (id = 0-based line index; a final newline adds no token);
    a missing or non-UTF-8 file raises `error` naming the path."""
    path = Path(path)
    if not path.is_file():
        raise error(f"vocab file not found: {path}; expected the encoder's vocab.txt")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as decode_error:
        raise error(f"{path}: vocab file is not UTF-8 ({decode_error.reason})") from None
    tokens = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    if tokens and tokens[-1] == "":
        tokens.pop()
    return tokens
