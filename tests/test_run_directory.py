"""What training does with its run directory: resume only what exists and matches, refuse to replace a
trained run without `overwrite`, and one writer at a time (`ner.runs.run_lock`)."""
import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timezone

import pytest

import ner  # noqa: F401
from ner.config import save_config
from ner.errors import ConfigError, NerError
from ner.experiment import train
from ner.runs import CONFIG_FILE, LABELS_FILE, LOCK_FILE, run_lock
from ner.trainers.trainer import weights_checksums
from tests.helpers import tiny_config
from tests.test_cli import run_cli


@pytest.fixture
def config(tmp_path, tiny_encoder_handle):
    return tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", epochs=1)


def dead_pid() -> int:
    """The pid of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def test_resuming_a_run_that_does_not_exist_is_refused(config):
    with pytest.raises(NerError, match=rf"run 'ner_baseline_io' has nothing to resume: expected "
                                       rf"{config.run_dir() / CONFIG_FILE} .*; drop --resume to start it"):
        train(config, resume=True, verbose=False)
    assert not config.run_dir().exists()


def test_resuming_with_another_model_section_is_refused_before_anything_is_written(config):
    saved = dataclasses.replace(config, model=dataclasses.replace(
        config.model, head=dataclasses.replace(config.model.head, dropout_rate=0.5)))
    config.run_dir().mkdir(parents=True)
    save_config(saved, config.run_dir() / CONFIG_FILE)
    before = (config.run_dir() / CONFIG_FILE).read_text()
    with pytest.raises(ConfigError, match=r"config\.yaml: run 'ner_baseline_io' was trained with a different "
                                          r"'model' section \(model\.head\.dropout_rate: 0\.5 saved, 0\.0 now\)"):
        train(config, resume=True, verbose=False)
    assert (config.run_dir() / CONFIG_FILE).read_text() == before
    assert sorted(p.name for p in config.run_dir().iterdir()) == [CONFIG_FILE]


@pytest.mark.parametrize("part, what", [("weights", "the weights of a finished training"),
                                        ("checkpoints", "the checkpoints of an unfinished training")])
def test_training_into_a_trained_run_needs_overwrite(config, part, what):
    (config.run_dir() / part).mkdir(parents=True)
    with pytest.raises(NerError, match=rf"run 'ner_baseline_io' already holds {what} .*; expected a new run_name, "
                                       r"--resume to continue it, or --overwrite to replace it"):
        train(config, verbose=False)
    assert sorted(p.name for p in config.run_dir().iterdir()) == [part]


def _stopping_early(config, monitor="val_loss"):
    return dataclasses.replace(config, training=dataclasses.replace(
        config.training, early_stopping_patience=2, early_stopping_monitor=monitor))


def test_early_stopping_without_validation_sentences_is_refused_before_anything_is_written(config):
    empty = dataclasses.replace(config, split=dataclasses.replace(config.split, fractions=(0.2, 0.5, 0.005)))
    with pytest.raises(ConfigError, match=r"^training\.early_stopping_patience is 2 but the validation part is "
                                          r"empty; expected validation sentences to monitor \(split\.validation_size, "
                                          r"split\.fractions or data\.conll_validation_path\), or null to train "
                                          r"without early stopping$"):
        train(_stopping_early(empty), verbose=False)
    assert not config.run_dir().exists()


@pytest.mark.parametrize("saved_monitor, trained", [
    (None, "without early stopping"), ("val_accuracy", "with training.early_stopping_monitor val_accuracy")])
def test_resuming_with_early_stopping_needs_a_run_trained_with_it_on_the_same_monitor(config, saved_monitor, trained):
    saved = config if saved_monitor is None else _stopping_early(config, saved_monitor)
    config.run_dir().mkdir(parents=True)
    save_config(saved, config.run_dir() / CONFIG_FILE)
    before = (config.run_dir() / CONFIG_FILE).read_text()
    with pytest.raises(ConfigError, match=rf"config\.yaml: run 'ner_baseline_io' was trained {trained}, so it kept "
                                          r"no weights of its best epoch by val_loss; expected to resume it with the "
                                          r"early stopping it was trained with"):
        train(_stopping_early(config), resume=True, verbose=False)
    assert (config.run_dir() / CONFIG_FILE).read_text() == before
    assert sorted(p.name for p in config.run_dir().iterdir()) == [CONFIG_FILE]


def test_overwrite_replaces_what_the_earlier_training_wrote(config):
    run_dir = config.run_dir()
    for part in ("weights", "checkpoints", "logs"):
        (run_dir / part).mkdir(parents=True)
        (run_dir / part / "old").write_text("from an earlier training")
    (run_dir / "prior.json").write_text("{}")
    train(config, verbose=False, overwrite=True)
    assert not any(run_dir.glob("*/old")) and not (run_dir / "prior.json").exists()
    assert (run_dir / "weights" / "model.index").is_file() and not (run_dir / LOCK_FILE).exists()
    assert (run_dir / "history.csv").read_text().count("\n") == 2


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(config, tmp_path):
    config_file = tmp_path / "tiny.yaml"
    save_config(config, config_file)
    with run_lock(config.run_dir()) as lock:
        assert lock.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
        with pytest.raises(NerError, match=rf"run 'ner_baseline_io' is being trained by process {os.getpid()} on "
                                           rf"{socket.gethostname()} \(lock {lock}\); expected one training"):
            train(config, verbose=False)
        status, _, err = run_cli(["train", "--config", str(config_file)])
        assert status == 2 and err.count("\n") == 1 and err.startswith("error: run 'ner_baseline_io' is being trained")
    assert not config.run_dir().exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_and_one_from_another_host_is_not(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / LOCK_FILE).write_text(f"{dead_pid()} {socket.gethostname()}\n")
    with run_lock(run_dir) as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
    assert not lock.exists()
    run_dir.mkdir()
    (run_dir / LOCK_FILE).write_text(f"{os.getpid()} another-host\n")
    with pytest.raises(NerError, match="is being trained by process .* on another-host"):
        with run_lock(run_dir):
            pass
    assert (run_dir / LOCK_FILE).exists()


def test_resume_and_overwrite_are_exclusive():
    status, _, err = run_cli(["train", "--config", "config/bert_ner.yaml", "--resume", "--overwrite"])
    assert status == 2 and "not allowed with argument" in err


def test_a_resumed_history_keeps_whole_epoch_numbers(config):
    run_dir = train(config, verbose=False)
    train(dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=2)), resume=True,
          verbose=False)
    lines = (run_dir / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["epoch", "1", "2"]


def test_a_history_record_without_its_checkpoint_is_redone_on_resume(config):
    """history.csv is written before each epoch's checkpoint; a kill in between leaves a record of an epoch
    the checkpoint lacks, which resume drops and trains again."""
    run_dir = train(config, verbose=False)
    lines = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_text("\n".join(lines + ["2" + ",9" * (lines[0].count(","))]) + "\n")
    train(dataclasses.replace(config, training=dataclasses.replace(config.training, epochs=2)), resume=True,
          verbose=False)
    resumed = (run_dir / "history.csv").read_text().splitlines()
    assert resumed[:2] == lines and resumed[2].startswith("2,") and ",9," not in resumed[2] and len(resumed) == 3


def test_results_are_replaced_as_a_set(config, monkeypatch):
    """A failed write_results leaves the earlier results whole; a finished one replaces all of them."""
    import ner.evaluation
    from ner.evaluation import evaluate, write_results

    evaluation = evaluate(str(train(config, verbose=False)), verbose=False)
    results_dir = config.results_dir()
    results_dir.mkdir(parents=True)
    for name in ("config.yaml", "metrics.csv", "old.txt"):
        (results_dir / name).write_text("earlier")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(ner.evaluation, "write_report", fail)
        with pytest.raises(OSError, match="disk full"):
            write_results(evaluation, "ner evaluate")
    assert [p.name for p in results_dir.parent.iterdir()] == [results_dir.name]
    assert {p.name: p.read_bytes() for p in results_dir.iterdir()} == {
        "config.yaml": b"earlier", "metrics.csv": b"earlier", "old.txt": b"earlier"}
    assert write_results(evaluation, "ner evaluate") == results_dir
    assert not (results_dir / "old.txt").exists() and (results_dir / "metrics.csv").read_text() != "earlier"
    assert [p.name for p in results_dir.parent.iterdir()] == [results_dir.name]


@pytest.mark.parametrize("argv", [["evaluate"], ["predict", "John said"], ["export", "--output", "served"],
                                  ["uncertainty"]])
def test_a_run_being_trained_is_not_read(config, tmp_path, argv):
    """The verbs that read a run refuse it while a live process holds its lock, before loading anything;
    a lock left by a dead process does not stop them."""
    from ner.api import load

    run_dir = train(config, verbose=False)
    (run_dir / LOCK_FILE).write_text(f"{os.getpid()} {socket.gethostname()}\n")
    command, *rest = argv
    status, out, err = run_cli([command, "--run", str(run_dir), *rest])
    assert status == 2 and out == "" and err == (
        f"error: run 'ner_baseline_io' is being trained by process {os.getpid()} on {socket.gethostname()} (lock "
        f"{run_dir / LOCK_FILE}); expected a run no process is training (its config, labels and weights change "
        "meanwhile): wait for the training to finish, or delete the lock if that process is gone\n")
    with pytest.raises(NerError, match="is being trained"):
        load(str(run_dir))
    (run_dir / LOCK_FILE).write_text(f"{dead_pid()} {socket.gethostname()}\n")
    assert load(str(run_dir)).predict(["John said"])[0].text == "John said"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_results_name_the_weights_and_the_time_they_came_from(config):
    """report.md and manifest.json name each weights file's SHA-256 and the evaluation time, so results a
    retraining made stale show; the manifest also sums every other results file."""
    from ner.evaluation import evaluate, write_results

    run_dir = train(config, verbose=False)
    weights = {p.name: sha256(p) for p in sorted((run_dir / "weights").iterdir())}
    assert list(weights) == ["checkpoint", "model.data-00000-of-00001", "model.index"]
    before = datetime.now(timezone.utc).replace(microsecond=0)
    results_dir = write_results(evaluate(str(run_dir), verbose=False), "ner evaluate --run x")
    manifest = json.loads((results_dir / "manifest.json").read_text())
    assert before <= datetime.fromisoformat(manifest["evaluated_at"]) <= datetime.now(timezone.utc)
    assert manifest["command"] == "ner evaluate --run x" and manifest["run_dir"] == str(run_dir)
    assert manifest["weights_sha256"] == weights
    assert manifest["files_sha256"] == {p.name: sha256(p) for p in sorted(results_dir.iterdir())
                                        if p.name != "manifest.json"}
    assert {"metrics.csv", "report.md", "config.yaml", "split.json"} <= set(manifest["files_sha256"])
    assert (f"Produced by `ner evaluate --run x` at {manifest['evaluated_at']} from the run in `{run_dir}`, whose "
            f"weights files had these SHA-256 sums: `weights/checkpoint` `{weights['checkpoint']}`, "
            f"`weights/model.data-00000-of-00001` `{weights['model.data-00000-of-00001']}`, "
            f"`weights/model.index` `{weights['model.index']}`.") in (results_dir / "report.md").read_text()

    reseeded = dataclasses.replace(config, training=dataclasses.replace(config.training, seed=2))
    train(reseeded, verbose=False, overwrite=True)
    retrained = weights_checksums(run_dir)
    assert retrained.keys() == weights.keys() and retrained["model.data-00000-of-00001"] != weights[
        "model.data-00000-of-00001"]
