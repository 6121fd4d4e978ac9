"""Kill -9 in the middle: `ner train` killed mid-training resumes to the weights of an uninterrupted run, and
`ner evaluate` killed while writing leaves the earlier results whole (or none), never a mix."""
import dataclasses
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

import ner  # noqa: F401
from ner.config import save_config
from ner.evaluation import MANIFEST_FILE, evaluate, write_results
from ner.experiment import train
from ner.runs import LOCK_FILE
from ner.trainers.trainer import WEIGHTS_DIR, WEIGHTS_PREFIX
from tests.helpers import tiny_config
from tests.test_cli import run_cli
from tests.test_training_trust import history, with_dropout

REPO = Path(__file__).resolve().parents[1]


def kill_when(argv, ready: Callable[[], bool], timeout: float = 120.0) -> None:
    """Starts `ner argv...` in a new process and SIGKILLs it as soon as `ready()` is true; fails if the
    process ends first (the moment to kill it was missed)."""
    process = subprocess.Popen([sys.executable, "-m", "ner.cli", *argv], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"ner {argv[0]} ended before it was killed: {process.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"ner {argv[0]} never reached the point to kill it"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    process.stderr.close()


def weights(run_dir: Path, prefix: Path = Path(WEIGHTS_DIR) / WEIGHTS_PREFIX) -> dict:
    reader = tf.train.load_checkpoint(str(run_dir / prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_train_killed_mid_training_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, tiny_encoder_handle):
    base = tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=6)
    whole = train(with_dropout(base, "whole", epochs=6), verbose=False)

    cut = with_dropout(base, "cut", epochs=6)
    config_file = tmp_path / "cut.yaml"
    save_config(cut, config_file)
    state = cut.run_dir() / "checkpoints" / "checkpoint"
    kill_when(["train", "--config", str(config_file)],
              lambda: state.is_file() and 'model_checkpoint_path: "ckpt-2"' in state.read_text())
    assert not (cut.run_dir() / WEIGHTS_DIR).exists() and (cut.run_dir() / LOCK_FILE).is_file()

    status, _, err = run_cli(["train", "--config", str(config_file), "--resume"])
    assert status == 0, err
    assert not (cut.run_dir() / LOCK_FILE).exists()
    resumed, uninterrupted = weights(cut.run_dir()), weights(whole)
    assert resumed.keys() == uninterrupted.keys() and len(resumed) == 8
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    assert [row["epoch"] for row in history(cut.run_dir())] == list(range(1, 7))
    assert history(cut.run_dir()) == history(whole)


def test_train_with_early_stopping_killed_after_its_best_epoch_resumes_to_the_uninterrupted_weights(
        tmp_path, tiny_encoder_handle):
    """The best epoch's weights, written by the killed process, are the resumed run's final weights. On this
    tiny run val_accuracy_without_o reaches 1.0, which cannot improve, at epoch 3: patience 3 stops after 6."""
    base = tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=10, learning_rate=0.1)

    def stopping(name):
        config = with_dropout(base, name, epochs=10)
        return dataclasses.replace(config, training=dataclasses.replace(
            config.training, early_stopping_patience=3, early_stopping_monitor="val_accuracy_without_o"))

    whole = train(stopping("whole"), verbose=False)
    records = history(whole)
    assert [row["epoch"] for row in records] == [1, 2, 3, 4, 5, 6]
    assert [row["val_accuracy_without_o"] for row in records][2:] == [1.0, 1.0, 1.0, 1.0]
    assert max(row["val_accuracy_without_o"] for row in records[:2]) < 1.0
    best = weights(whole, prefix=Path("checkpoints") / "best-3" / WEIGHTS_PREFIX)
    final = weights(whole)
    assert final.keys() == best.keys() and len(final) == 8
    for name, value in best.items():
        np.testing.assert_array_equal(final[name], value, err_msg=name)

    cut = stopping("cut")
    config_file = tmp_path / "cut.yaml"
    save_config(cut, config_file)
    state = cut.run_dir() / "checkpoints" / "checkpoint"
    kill_when(["train", "--config", str(config_file)],
              lambda: state.is_file() and 'model_checkpoint_path: "ckpt-4"' in state.read_text())
    assert not (cut.run_dir() / WEIGHTS_DIR).exists() and (cut.run_dir() / "checkpoints" / "best-3").is_dir()

    status, _, err = run_cli(["train", "--config", str(config_file), "--resume"])
    assert status == 0, err
    resumed = weights(cut.run_dir())
    assert resumed.keys() == final.keys()
    for name, value in final.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    assert history(cut.run_dir()) == history(whole)


def results_files(results_dir: Path) -> dict:
    return {p.name: p.read_bytes() for p in results_dir.iterdir()}


def test_evaluate_killed_while_writing_leaves_the_earlier_results_or_none(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=1)
    run_dir = train(config, verbose=False)
    results_dir = config.results_dir()
    argv = ["evaluate", "--run", str(run_dir)]

    def staging(least_files: int) -> Callable[[], bool]:
        """Whether a results staging directory (`ner.utils.atomic_path`) holds at least `least_files` files."""
        return lambda: any(sum(p.is_file() for p in tmp.rglob("*")) >= least_files
                           for tmp in results_dir.parent.glob(f".{results_dir.name}.*.tmp"))

    kill_when(argv, staging(0))  # no earlier results: none afterwards
    assert not results_dir.exists()

    write_results(evaluate(str(run_dir), verbose=False), "ner evaluate")
    earlier = results_files(results_dir)
    manifest = json.loads(earlier[MANIFEST_FILE])
    assert manifest["files_sha256"] == {name: hashlib.sha256(data).hexdigest()
                                        for name, data in sorted(earlier.items()) if name != MANIFEST_FILE}
    kill_when(argv, staging(3))  # config, split and a plot of the new results written
    assert results_files(results_dir) == earlier
    status, _, err = run_cli(argv)
    assert status == 0, err
    assert json.loads((results_dir / MANIFEST_FILE).read_text())["evaluated_at"] >= manifest["evaluated_at"]
