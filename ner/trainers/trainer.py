"""The training loop shared by every model: compiled steps, progress, checkpoints and history.

A model only maps features to `(latent, probabilities)`; the trainer owns the optimiser, the loss and the
loop. Supervised training is `fit`; variants that alternate losses (the KL trainers) build their own
steps with `make_step` and reuse the same checkpointing and evaluation.
"""
import csv
import io
from pathlib import Path
from typing import Callable, Dict, List, Optional

import tensorflow as tf
import tf_keras as keras

from ner.trainers.losses import masked_cross_entropy, token_counts
from ner.utils import atomic_path, write_text_atomic

LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
# Batches are trimmed to their longest row, so the length varies: one trace serves every shape.
FEATURES_SPEC = {name: tf.TensorSpec([None, None], tf.int32)
                 for name in ("input_word_ids", "input_mask", "input_type_ids")}
LABELS_SPEC = tf.TensorSpec([None, None], tf.int32)
WEIGHTS_DIR = "weights"
WEIGHTS_PREFIX = "model"
CHECKPOINTS_DIR = "checkpoints"


class Trainer:
    """Trains a `(latent, probabilities)` model and keeps its run directory.

    Args:
      model: a Keras model mapping a feature dict to `(latent [B,T,L], probabilities [B,T,C])`.
      run_dir: `saved_models/<run name>/`; checkpoints and final weights go below it.
      outside_id: id of the `O` label, for accuracy without `O`.
      verbose: show a progress bar per epoch.
    """

    def __init__(self, model: keras.Model, run_dir: Path, outside_id: int, verbose: bool = True):
        self.model = model
        self.run_dir = Path(run_dir)
        self.outside_id = outside_id
        self.verbose = verbose
        self.epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name="epoch")
        self._evaluate_step = tf.function(self._evaluate_batch, input_signature=[FEATURES_SPEC, LABELS_SPEC])

    def make_step(self, loss_fn: LossFn, optimizer: keras.optimizers.Optimizer):
        """A compiled step: one gradient update of `loss_fn(labels, probabilities)`; returns batch stats."""

        def step(features, labels):
            with tf.GradientTape() as tape:
                _, probabilities = self.model(features, training=True)
                loss = loss_fn(labels, probabilities)
            variables = self.model.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return {"loss": loss, **token_counts(labels, probabilities, self.outside_id)}

        return tf.function(step, input_signature=[FEATURES_SPEC, LABELS_SPEC])

    def fit(self, train_data: tf.data.Dataset, epochs: int, learning_rate: float,
            validation_data: Optional[tf.data.Dataset] = None, resume: bool = False) -> List[Dict[str, float]]:
        """Supervised training with masked cross-entropy and Adam; a checkpoint after every epoch.

        Args:
          train_data: batches of `(features, labels [B, T])`.
          epochs: total epochs (a resumed run continues up to this number).
          learning_rate: Adam's learning rate.
          validation_data: evaluated after each epoch when given.
          resume: continue from the latest checkpoint in the run directory if there is one.
        Returns:
          One dict per epoch: `epoch`, `loss`, `accuracy`, `accuracy_without_o` and the same with `val_`.
        """
        optimizer = keras.optimizers.Adam(learning_rate)
        manager = self._checkpoint_manager(optimizer)
        history = self._read_history() if resume and manager.latest_checkpoint else []
        if resume and manager.latest_checkpoint:
            manager.checkpoint.restore(manager.latest_checkpoint)
        step = self.make_step(masked_cross_entropy, optimizer)
        steps_per_epoch = int(train_data.cardinality()) if train_data.cardinality() > 0 else None
        while int(self.epoch) < epochs:
            epoch = int(self.epoch) + 1
            if self.verbose:
                print(f"Epoch {epoch}/{epochs}")
            progress = keras.utils.Progbar(steps_per_epoch, verbose=1 if self.verbose else 0,
                                           stateful_metrics=["loss", "accuracy"])
            totals = _Totals()
            for features, labels in train_data:
                totals.add(step(features, labels))
                progress.add(1, [("loss", totals.loss), ("accuracy", totals.accuracy)])
            record = {"epoch": epoch, **totals.as_dict()}
            if validation_data is not None:
                record.update({f"val_{key}": value for key, value in self.evaluate(validation_data).items()})
            history.append(record)
            self.epoch.assign(epoch)
            manager.save(checkpoint_number=epoch)
            self._write_history(history)
            if self.verbose:
                print("  " + "  ".join(f"{key} {value:.4f}" for key, value in record.items() if key != "epoch"))
        self.save_weights()
        return history

    def evaluate(self, data: tf.data.Dataset) -> Dict[str, float]:
        """Loss, accuracy and accuracy without `O` over a dataset, with dropout off."""
        totals = _Totals()
        for features, labels in data:
            totals.add(self._evaluate_step(features, labels))
        return totals.as_dict()

    def save_weights(self) -> Path:
        """Writes the final weights to `<run dir>/weights/` atomically."""
        target = self.run_dir / WEIGHTS_DIR
        with atomic_path(target) as tmp:
            self.model.save_weights(str(tmp / WEIGHTS_PREFIX))
        return target

    def _evaluate_batch(self, features, labels):
        _, probabilities = self.model(features, training=False)
        return {"loss": masked_cross_entropy(labels, probabilities),
                **token_counts(labels, probabilities, self.outside_id)}

    def _checkpoint_manager(self, optimizer) -> tf.train.CheckpointManager:
        checkpoint = tf.train.Checkpoint(model=self.model, optimizer=optimizer, epoch=self.epoch)
        return tf.train.CheckpointManager(checkpoint, str(self.run_dir / CHECKPOINTS_DIR), max_to_keep=2)

    def _history_path(self) -> Path:
        return self.run_dir / "history.csv"

    def _write_history(self, history: List[Dict[str, float]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        write_text_atomic(self._history_path(), buffer.getvalue())

    def _read_history(self) -> List[Dict[str, float]]:
        if not self._history_path().is_file():
            return []
        with open(self._history_path(), newline="", encoding="utf-8") as handle:
            return [{key: float(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def load_weights(model: keras.Model, run_dir: Path) -> None:
    """Restores the final weights a `Trainer` saved in `run_dir` (the model must be built)."""
    prefix = Path(run_dir) / WEIGHTS_DIR / WEIGHTS_PREFIX
    model.load_weights(str(prefix)).expect_partial()


class _Totals:
    """Sums batch statistics; loss is averaged over batches, accuracies over tokens."""

    def __init__(self):
        self.batches = 0
        self.loss_sum = 0.0
        self.counts = {"tokens": 0.0, "correct": 0.0, "entity_tokens": 0.0, "entity_correct": 0.0}

    def add(self, stats: Dict[str, tf.Tensor]) -> None:
        self.batches += 1
        self.loss_sum += float(stats["loss"])
        for key in self.counts:
            self.counts[key] += float(stats[key])

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.batches, 1)

    @property
    def accuracy(self) -> float:
        return self.counts["correct"] / max(self.counts["tokens"], 1.0)

    def as_dict(self) -> Dict[str, float]:
        without_o = self.counts["entity_correct"] / max(self.counts["entity_tokens"], 1.0)
        return {"loss": self.loss, "accuracy": self.accuracy, "accuracy_without_o": without_o}
