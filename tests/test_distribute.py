"""Training under `tf.distribute` (`training.distribute`), on two logical CPU devices in a subprocess
(the device split must come before TensorFlow initialises its devices): the metrics of one device, and
exact resume."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import ner  # noqa: F401
from ner.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import dataclasses, json, sys
import ner
import tensorflow as tf
cpu, = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from ner.distribute import make_strategy
from ner.evaluation import evaluate
from ner.experiment import train
from ner.trainers.trainer import read_history
from tests.helpers import tiny_config

tmp, handle, model_type, overrides = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
base = tiny_config(__import__("pathlib").Path(tmp), handle, model_type, epochs=2)
base = dataclasses.replace(base, training=dataclasses.replace(base.training, **overrides))

def run(name, distribute, epochs, resume=False):
    training = dataclasses.replace(base.training, distribute=distribute, epochs=epochs)
    return train(dataclasses.replace(base, run_name=name, training=training), resume=resume, verbose=False)

runs = {"one_device": run("one_device", "none", 2), "mirrored": run("mirrored", "mirrored", 2)}
run("resumed", "mirrored", 1)
runs["resumed"] = run("resumed", "mirrored", 2, resume=True)
print(json.dumps({"replicas": make_strategy("mirrored").num_replicas_in_sync,
                  "history": {name: [{k: v for k, v in row.items() if k != "train_seconds"} for row in read_history(d)]
                              for name, d in runs.items()},
                  "test": {name: evaluate(str(d), verbose=False).report.summary_row() for name, d in runs.items()}}))
"""


@pytest.mark.parametrize("model_type, overrides", [
    ("bert_ner", {}),                            # the head on cached encoder features
    ("bert_crf", {"feature_cache": False, "length_buckets": [8, 16]}),  # the live encoder, a CRF, bucketed batches
])
def test_two_replicas_train_like_one_device_and_resume_exactly(tmp_path, tiny_encoder_handle, model_type, overrides):
    process = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), tiny_encoder_handle, model_type,
                              json.dumps(overrides)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    one, mirrored, resumed = (result["history"][name] for name in ("one_device", "mirrored", "resumed"))
    assert [row["epoch"] for row in one] == [row["epoch"] for row in resumed] == [1, 2]
    for one_row, mirrored_row, resumed_row in zip(one, mirrored, resumed):
        for key in one_row:
            # Two replicas sum the same per-position terms in another order (float32): 1e-4 of the loss.
            assert mirrored_row[key] == pytest.approx(one_row[key], rel=1e-4, abs=1e-5), (one_row["epoch"], key)
            assert resumed_row[key] == pytest.approx(mirrored_row[key], abs=5e-5), (one_row["epoch"], key)
    assert one[0]["loss"] != one[1]["loss"]  # the epochs did differ
    tests = result["test"]
    assert tests["mirrored"] == pytest.approx(tests["one_device"], abs=1e-4)
    assert tests["resumed"] == pytest.approx(tests["mirrored"], abs=1e-6)


def test_an_unknown_strategy_is_a_config_error():
    from ner.distribute import make_strategy

    with pytest.raises(ConfigError, match="unknown distribute strategy 'tpu'; expected one of none, mirrored, "
                                          "multi_worker"):
        make_strategy("tpu")
