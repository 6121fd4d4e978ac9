"""The training loop shared by every model: compiled steps, progress, checkpoints and history.

A model only maps features to `(latent, probabilities)`; the trainer owns the optimiser, the loss and the
loop. Supervised training is `fit`; variants that alternate losses (the KL trainers) build their own
steps with `make_step` and reuse the same checkpointing and evaluation.

The supervised loss is the model's own (flair style): every `TokenClassifier` declares
`forward_loss(features, labels, training, score_offset) -> (loss, probabilities)`, masked cross-entropy by
default and the sequence negative log-likelihood for the CRF tagger (each logit-adjusted by the trainer's
`score_offset` when it has one), so every model is trained and evaluated in the same loop. `fit` can
clip the gradients' global norm, and give a fine-tuned encoder (`model.encoder`) its own learning rate
with linear warm-up and decay while the rest keeps a constant one. Every step also differentiates the
model's regularisation losses (the head's L2, `model.head.l2`); histories report the data loss alone.

With early stopping (`fit(early_stopping_patience=...)`) `fit` stops once the monitored validation metric
has not improved for that many epochs, and the run's final weights are those of its best epoch. That
epoch's weights are kept in `<run dir>/checkpoints/best-<epoch>/` and its number follows from `history.csv`,
so a resumed run knows both.

Each history record (per epoch, or per evaluation of the alternating loop) also goes to a TensorBoard
log in `<run dir>/logs/` as scalars (`tensorboard --logdir saved_models/<run name>/logs`). They are
written with TensorFlow's own summary ops, so training does not need the tensorboard package.
"""
import csv
import functools
import io
import math
import shutil
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
import tf_keras as keras

from ner.errors import NerError
from ner.losses import token_counts
from ner.models.base import TokenClassifier
from ner.precision import loss_scaled
from ner.registry import EARLY_STOPPING_MONITORS
from ner.tagging import IGNORE_LABEL
from ner.utils import atomic_path, file_sha256, write_text_atomic

# (labels [B, T], probabilities [B, T, C], input_mask [B, T] or None for cached word features) -> scalar
LossFn = Callable[[tf.Tensor, tf.Tensor, Optional[tf.Tensor]], tf.Tensor]
WEIGHTS_DIR = "weights"
WEIGHTS_PREFIX = "model"
CHECKPOINTS_DIR = "checkpoints"
BEST_PREFIX = "best-"  # `<run dir>/checkpoints/best-<epoch>/`: the model weights of early stopping's best epoch
LOGS_DIR = "logs"
HISTORY_FILE = "history.csv"
HISTORY_COUNTERS = ("epoch", "pair")  # the history columns that count records rather than measure
# What TensorBoard's scalar plugin reads a summary as (what `tf.summary.scalar` writes when it is installed).
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


class Trainer:
    """Trains a `(latent, probabilities)` model and keeps its run directory.

    Args:
      model: a Keras model mapping a feature dict to `(latent [B,T,L], probabilities [B,T,C])`.
      run_dir: `saved_models/<run name>/`; checkpoints and final weights go below it.
      outside_id: id of the `O` label, for accuracy without `O`.
      verbose: show a progress bar per epoch.
      seed: when given, `fit` starts every epoch from random state that depends on (seed, epoch) alone:
        it reseeds the package's dropout generators (`reseed_dropout`) and, for a fine-tuned TF-Hub encoder
        whose dropout uses the SavedModel's own random ops, re-seeds TensorFlow (`epoch_seed`) and traces
        its step anew. A resumed run then repeats the epochs of an uninterrupted one exactly, if its data
        order is keyed by `epoch` too (`ner.preprocessor.row_order`).
      jit_compile: compile the training steps with XLA (`tf.function(jit_compile=True)`). Batches vary in
        length, so XLA compiles once per batch shape (`benchmarks/benchmark_jit.py` measures whether that
        pays off; `training.length_buckets` bounds the shapes).
      precision: the policy the model was built under (`ner.precision`); "mixed_float16" wraps the
        optimisers in a dynamic `LossScaleOptimizer` and scales the loss in every step.
      strategy: the `tf.distribute.Strategy` the model was built under (`ner.distribute`); `fit` and
        `evaluate` split each batch between its replicas. None: the default strategy (one device).
      score_offset: [C] or None: the logit adjustment of the model's own loss, in training and
        evaluation (`forward_loss(score_offset=...)`, `ner.losses.logit_adjustment`).
    """

    def __init__(self, model: TokenClassifier, run_dir: Path, outside_id: int, verbose: bool = True,
                 seed: Optional[int] = None, jit_compile: bool = False, precision: str = "float32",
                 strategy: Optional[tf.distribute.Strategy] = None, score_offset: Optional[np.ndarray] = None):
        self.model = model
        self.score_offset = None if score_offset is None else tf.constant(score_offset, tf.float32)
        self.jit_compile = jit_compile
        self.precision = precision
        self.strategy = strategy or tf.distribute.get_strategy()
        self.run_dir = Path(run_dir)
        self.outside_id = outside_id
        self.verbose = verbose
        self.seed = seed
        self.epoch = tf.Variable(0, trainable=False, dtype=tf.int64, name="epoch")  # epochs finished
        self._evaluate_steps = {}
        self._summary_writer = None

    def regularisation_loss(self) -> Optional[tf.Tensor]:
        """The sum of the model's regularisation losses (`model.losses`: the head's L2 weight decay,
        `model.head.l2`), or None when it has none. The CRF tagger's `forward_loss` leaves them out too, so
        every model gets them here, once."""
        losses = self.model.losses
        return tf.add_n(losses) if losses else None

    def make_step(self, loss_fn: Optional[LossFn], optimizer: keras.optimizers.Optimizer, element_spec,
                  clip_norm: Optional[float] = None,
                  encoder_optimizer: Optional[keras.optimizers.Optimizer] = None, own_loss: Optional[bool] = None):
        """A compiled step: one gradient update of the model's `forward_loss` (with `own_loss`) plus
        `loss_fn(labels, probabilities, input_mask)` (when given; `input_mask` is the batch's feature of that
        name, None for cached word features); returns batch stats.

        `own_loss` defaults to `loss_fn is None`: `make_step(None, ...)` is the supervised step; a KL step
        is `loss_fn` alone; a self-training step on pseudo-labels is `own_loss` with or without a `loss_fn`.
        `element_spec` is the `(features, labels)` spec of
        the dataset as the strategy distributes it (`Strategy.experimental_distribute_dataset`; the dataset's
        own spec for the default strategy); batches vary in length, so one trace with unknown dimensions
        serves every batch. With several replicas each computes the loss on its part of the batch and the
        parts are weighed by their labelled positions (`_distributed`). With
        `clip_norm` the gradients' global norm is clipped to it. With `encoder_optimizer`, that optimiser
        updates the encoder's variables (`model.encoder`) and `optimizer` the others. The model's
        regularisation losses (`regularisation_loss`), if any, are added to the loss that is differentiated;
        the returned `loss` is the data loss alone. A `LossScaleOptimizer` `optimizer` (float16) has the
        objective scaled before differentiation and the gradients unscaled before clipping.
        """
        own_loss = loss_fn is None if own_loss is None else own_loss
        if not own_loss and loss_fn is None:
            raise ValueError("a step needs the model's own loss, a loss_fn, or both")
        encoder_refs = {variable.ref() for variable in self._encoder_variables()} if encoder_optimizer else set()
        scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
        replicas = self.strategy.num_replicas_in_sync

        def replica_step(features, labels, share):  # share: this replica's part of the batch's labelled positions
            variables = self.model.trainable_variables
            # The tape watches only what it differentiates: a frozen TF-Hub encoder's variables are trainable
            # tf.Variables to TensorFlow, and watching them made the step differentiate the SavedModel's
            # function, which XLA then recompiled for every batch's values (benchmarks/benchmark_jit.py).
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(variables)
                if own_loss:
                    loss, probabilities = self.model.forward_loss(features, labels, training=True,
                                                                  score_offset=self.score_offset)
                else:
                    _, probabilities = self.model(features, training=True)
                if loss_fn is not None:
                    extra = loss_fn(labels, probabilities, features.get("input_mask"))
                    loss = loss + extra if own_loss else extra
                regularisation = self.regularisation_loss()
                objective = loss * share if regularisation is None else loss * share + regularisation / replicas
                if scaled:
                    objective = optimizer.get_scaled_loss(objective)
            gradients = tape.gradient(objective, variables)
            if scaled:
                gradients = optimizer.get_unscaled_gradients(gradients)
            if replicas > 1:  # the replicas' sparse (embedding) gradients differ in shape: sum them dense
                gradients = dense_gradients(gradients, variables)
            if clip_norm is not None:
                gradients, _ = tf.clip_by_global_norm(gradients, clip_norm)
            pairs = list(zip(gradients, variables))
            if encoder_refs:
                encoder_optimizer.apply_gradients([(g, v) for g, v in pairs if v.ref() in encoder_refs])
                pairs = [(g, v) for g, v in pairs if v.ref() not in encoder_refs]
            optimizer.apply_gradients(pairs)
            return {"loss": loss * share, **token_counts(labels, probabilities, self.outside_id)}

        return self._distributed(replica_step, element_spec)

    def fit(self, train_data: tf.data.Dataset, epochs: int, learning_rate: float,
            validation_data: Optional[tf.data.Dataset] = None, resume: bool = False,
            clip_norm: Optional[float] = None, encoder_learning_rate: Optional[float] = None,
            encoder_warmup_fraction: float = 0.1, early_stopping_patience: Optional[int] = None,
            early_stopping_monitor: str = "val_loss") -> List[Dict[str, float]]:
        """Supervised training (the model's `forward_loss`) with Adam; a checkpoint after every epoch.

        Args:
          train_data: batches of `(features, labels [B, T])`.
          epochs: total epochs (a resumed run continues up to this number).
          learning_rate: Adam's learning rate (for every variable unless `encoder_learning_rate` is set).
          validation_data: evaluated after each epoch when given.
          resume: continue from the latest checkpoint in the run directory if there is one.
          clip_norm: clip each step's gradients to this global norm (None: no clipping).
          encoder_learning_rate: the peak learning rate of a fine-tuned encoder's variables (those of
            `model.encoder`), reached by linear warm-up over `encoder_warmup_fraction` of all steps and
            decayed linearly to 0 at the last step (`WarmupLinearDecay`). None, or an encoder without
            trainable variables: one constant `learning_rate` for all.
          encoder_warmup_fraction: see `encoder_learning_rate`.
          early_stopping_patience: stop once this many epochs in a row have not improved on the best
            `early_stopping_monitor` value so far (`best_epoch`), and end with the best epoch's weights in
            the model and as the final weights, also when all `epochs` ran. Needs `validation_data`.
            None: no early stopping; the final weights are the last epoch's.
          early_stopping_monitor: a key of `EARLY_STOPPING_MONITORS` (`val_loss`, ...).
        Returns:
          One dict per epoch up to the last one trained: `epoch`, `loss`, `accuracy`, `accuracy_without_o`,
          `train_seconds` (wall time of the epoch's training steps, validation excluded) and the metrics
          with `val_`.
        """
        if early_stopping_patience is not None:
            if early_stopping_patience < 1:
                raise ValueError(f"early_stopping_patience must be None or at least 1, got {early_stopping_patience}")
            if early_stopping_monitor not in EARLY_STOPPING_MONITORS:
                raise ValueError(f"early_stopping_monitor must be one of {tuple(EARLY_STOPPING_MONITORS)}, "
                                 f"got {early_stopping_monitor!r}")
            if validation_data is None:
                raise ValueError(f"early_stopping_patience={early_stopping_patience} needs validation_data: early "
                                 f"stopping monitors {early_stopping_monitor} on it")
        steps_per_epoch = int(train_data.cardinality()) if train_data.cardinality() > 0 else None
        train_batches = self.strategy.experimental_distribute_dataset(train_data)
        with self.strategy.scope():
            optimizer = loss_scaled(keras.optimizers.Adam(learning_rate), self.precision)
        encoder_optimizer = None
        if encoder_learning_rate is not None and self._encoder_variables():
            if self.precision == "mixed_float16":
                raise ValueError("an encoder learning rate needs float32 or mixed_bfloat16: one loss scale cannot "
                                 "serve two optimisers")
            if steps_per_epoch is None:
                raise ValueError("an encoder learning-rate schedule needs train_data of known length")
            total_steps = epochs * steps_per_epoch
            warmup_steps = min(round(encoder_warmup_fraction * total_steps), total_steps - 1)
            schedule = WarmupLinearDecay(encoder_learning_rate, warmup_steps, total_steps)
            with self.strategy.scope():
                encoder_optimizer = keras.optimizers.Adam(schedule)
        manager = self._checkpoint_manager(optimizer, encoder_optimizer)
        history = []
        if resume and manager.latest_checkpoint:
            manager.checkpoint.restore(manager.latest_checkpoint)
            # history.csv is written before each checkpoint: a kill in between leaves a record to redo
            history = [record for record in self._read_history() if record["epoch"] <= int(self.epoch)]
        best = None  # with early stopping: the best epoch so far, whose weights are in `_best_dir(best)`
        if early_stopping_patience is not None:
            best = best_epoch(history, early_stopping_monitor)
            self._keep_best(best)
        new_step = functools.partial(self.make_step, None, optimizer, train_batches.element_spec, clip_norm,
                                     encoder_optimizer)
        # The package's Dropout layers draw from generators reseeded each epoch, so one trace serves the run; a
        # fine-tuned TF-Hub encoder's dropout uses the SavedModel's own random ops, seeded only by a new trace.
        retrace_each_epoch = self.seed is not None and bool(self._encoder_variables())
        step = None if retrace_each_epoch else new_step()
        while int(self.epoch) < epochs and not _patience_spent(int(self.epoch), best, early_stopping_patience):
            epoch = int(self.epoch) + 1
            if self.seed is not None:
                reseed_dropout(self.model, epoch_seed(self.seed, epoch))
            if retrace_each_epoch:
                tf.random.set_seed(epoch_seed(self.seed, epoch))
                step = new_step()
            if self.verbose:
                print(f"Epoch {epoch}/{epochs}")
            progress = keras.utils.Progbar(steps_per_epoch, verbose=1 if self.verbose else 0,
                                           stateful_metrics=["loss", "accuracy"])
            totals = _Totals()
            start = time.perf_counter()
            for features, labels in train_batches:
                totals.add(step(features, labels))
                progress.add(1, [("loss", totals.loss), ("accuracy", totals.accuracy)])
            record = {"epoch": epoch, **totals.as_dict(), "train_seconds": time.perf_counter() - start}
            if validation_data is not None:
                record.update({f"val_{key}": value for key, value in self.evaluate(validation_data).items()})
            history.append(record)
            self.epoch.assign(epoch)
            self._write_history(history)
            if early_stopping_patience is not None and best_epoch(history, early_stopping_monitor) == epoch:
                # before the checkpoint, and the previous best is deleted only after it: a kill in between
                # resumes from epoch - 1, whose best is still on disk
                self._save_best(epoch)
                best = epoch
            manager.save(checkpoint_number=epoch)
            if early_stopping_patience is not None:
                self._keep_best(best)
            self._log_scalars(record, step=epoch)
            if self.verbose:
                print("  " + "  ".join(f"{key} {value:.4f}" for key, value in record.items() if key != "epoch"))
        if early_stopping_patience is not None:
            self._restore_best(history, best, early_stopping_patience, early_stopping_monitor)
        self.save_weights()
        return history

    def fit_alternating(self, labelled_data: tf.data.Dataset, unlabelled_data: tf.data.Dataset,
                        unlabelled_loss: Optional[LossFn], pairs: int, learning_rate: float,
                        unlabelled_learning_rate: float, evaluate_every: int,
                        validation_data: Optional[tf.data.Dataset] = None, own_loss_on_unlabelled: bool = False,
                        history: Sequence[Dict[str, float]] = ()) -> List[Dict[str, float]]:
        """The semi-supervised stage: `pairs` times, one step on an unlabelled batch, then one supervised
        step on a labelled batch, each with its own Adam optimiser.

        The unlabelled step differentiates `unlabelled_loss` and, with `own_loss_on_unlabelled`, the
        model's own loss on the batch's labels (a teacher's pseudo-labels: `ner.self_training`).
        Under a strategy of several replicas each replica's loss is weighed by its share of the labelled
        positions, which gives the batch's loss for per-position means but only a weighted mean of
        per-replica values for a loss of the batch's label distribution (the KL losses); `ner train` runs
        this stage on one device. Both datasets repeat as needed. Every `evaluate_every` pairs (and after
        the last) a record holds the mean losses since the previous record and, when given, the validation
        metrics. The stage is short, so only its final weights are saved, not per-pair checkpoints.

        Args:
          labelled_data, unlabelled_data: batches of `(features, labels [B, T])`; without
            `own_loss_on_unlabelled` the unlabelled labels are read only as a mask of word positions
            (`IGNORE_LABEL` elsewhere).
          unlabelled_loss: `(labels, probabilities, input_mask) -> scalar` (`LossFn`), e.g. a KL loss from
            `ner.losses`, or None.
          pairs: how many unlabelled + labelled step pairs to run.
          learning_rate, unlabelled_learning_rate: Adam rates of the labelled and the unlabelled steps.
          evaluate_every: pairs between records.
          own_loss_on_unlabelled: see above.
          history: the records of earlier calls in the same stage (a self-training round per call); the
            pairs count on from theirs, and `history.csv` holds them all.
        Returns:
          `history` and one dict per new record: `pair`, `unlabelled_loss`, `loss`, `accuracy`,
          `accuracy_without_o`, `val_*`.
        """
        labelled_data, unlabelled_data = (self.strategy.experimental_distribute_dataset(data.repeat())
                                          for data in (labelled_data, unlabelled_data))
        with self.strategy.scope():
            optimizers = [loss_scaled(keras.optimizers.Adam(rate), self.precision)
                          for rate in (unlabelled_learning_rate, learning_rate)]
        unlabelled_step = self.make_step(unlabelled_loss, optimizers[0], unlabelled_data.element_spec,
                                         own_loss=own_loss_on_unlabelled)
        labelled_step = self.make_step(None, optimizers[1], labelled_data.element_spec)
        labelled_batches, unlabelled_batches = iter(labelled_data), iter(unlabelled_data)
        progress = keras.utils.Progbar(pairs, verbose=1 if self.verbose else 0, unit_name="pair",
                                       stateful_metrics=["unlabelled_loss", "loss"])
        history, unlabelled_totals, labelled_totals = list(history), _Totals(), _Totals()
        first = history[-1]["pair"] if history else 0
        for pair in range(first + 1, first + pairs + 1):
            unlabelled_totals.add(unlabelled_step(*next(unlabelled_batches)))
            labelled_totals.add(labelled_step(*next(labelled_batches)))
            progress.add(1, [("unlabelled_loss", unlabelled_totals.loss), ("loss", labelled_totals.loss)])
            if (pair - first) % evaluate_every == 0 or pair == first + pairs:
                record = {"pair": pair, "unlabelled_loss": unlabelled_totals.loss, **labelled_totals.as_dict()}
                if validation_data is not None:
                    record.update({f"val_{key}": value for key, value in self.evaluate(validation_data).items()})
                history.append(record)
                self._log_scalars(record, step=pair)
                unlabelled_totals, labelled_totals = _Totals(), _Totals()
                if self.verbose:
                    print("  " + "  ".join(f"{key} {value:.4f}" for key, value in record.items() if key != "pair"))
        self._write_history(history)
        self.save_weights()
        return history

    def evaluate(self, data: tf.data.Dataset) -> Dict[str, float]:
        """Loss, accuracy and accuracy without `O` over a dataset, with dropout off (batches split between
        the strategy's replicas)."""
        batches = self.strategy.experimental_distribute_dataset(data)
        key = str(batches.element_spec)
        if key not in self._evaluate_steps:
            self._evaluate_steps[key] = self._distributed(self._evaluate_batch, batches.element_spec, jit_compile=False)
        totals = _Totals()
        for features, labels in batches:
            totals.add(self._evaluate_steps[key](features, labels))
        return totals.as_dict()

    def save_weights(self) -> Path:
        """Writes the final weights to `<run dir>/weights/` atomically."""
        target = self.run_dir / WEIGHTS_DIR
        with atomic_path(target) as tmp:
            self.model.save_weights(str(tmp / WEIGHTS_PREFIX))
        return target

    def _evaluate_batch(self, features, labels, share):
        loss, probabilities = self.model.forward_loss(features, labels, training=False,
                                                      score_offset=self.score_offset)
        return {"loss": loss * share, **token_counts(labels, probabilities, self.outside_id)}

    def _distributed(self, replica_fn, element_spec, jit_compile: Optional[bool] = None):
        """A compiled function of a (distributed) batch `(features, labels)` that runs
        `replica_fn(features, labels, share) -> {name: scalar}` on each replica and sums the results.

        `share` is the replica's fraction of the batch's labelled positions, so that the replicas' shares of
        a mean loss add up to the batch's mean (and their gradients, summed by the optimiser, to its
        gradient). One replica: `share` is 1 and the function is the replica's step. `jit_compile` (default
        the trainer's) compiles the replica's function with XLA.
        """
        strategy = self.strategy
        replica_fn = tf.function(replica_fn, jit_compile=self.jit_compile if jit_compile is None else jit_compile)

        def step(features, labels):
            counts = strategy.run(_labelled_count, args=(labels,))  # per replica: [] float32
            total = strategy.reduce(tf.distribute.ReduceOp.SUM, counts, axis=None)
            share = strategy.run(lambda count: tf.math.divide_no_nan(count, total), args=(counts,))
            results = strategy.run(replica_fn, args=(features, labels, share))
            return {name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                    for name, value in results.items()}

        return tf.function(step, input_signature=list(element_spec))

    def _encoder_variables(self) -> List[tf.Variable]:
        """The trainable variables of the model's pre-trained encoder (`model.encoder`), if it has one."""
        encoder = self.model.encoder
        return list(encoder.trainable_variables) if encoder is not None else []

    def _best_dir(self, epoch: int) -> Path:
        return self.run_dir / CHECKPOINTS_DIR / f"{BEST_PREFIX}{epoch}"

    def _save_best(self, epoch: int) -> None:
        """Writes the model's weights (those of `epoch`) to `checkpoints/best-<epoch>/` atomically."""
        with atomic_path(self._best_dir(epoch)) as tmp:
            self.model.save_weights(str(tmp / WEIGHTS_PREFIX))

    def _keep_best(self, best: Optional[int]) -> None:
        """Deletes every `checkpoints/best-*/` but best epoch `best`'s (all of them when None): older bests,
        and one a killed run saved for an epoch it did not checkpoint. Raises NerError when the best epoch's
        weights are missing (a run trained without early stopping, or with another monitor)."""
        keep = None if best is None else self._best_dir(best)
        for path in (self.run_dir / CHECKPOINTS_DIR).glob(f"{BEST_PREFIX}*"):
            if path != keep:
                shutil.rmtree(path)
        if keep is not None and not keep.is_dir():
            raise NerError(f"{keep}: not found; expected the weights of epoch {best}, the best of the run's "
                           f"{HISTORY_FILE}, which early stopping keeps; resume with the early stopping (and "
                           "monitor) the run was trained with, or train it again (ner train --overwrite)")

    def _restore_best(self, history: List[Dict[str, float]], best: Optional[int], patience: int,
                      monitor: str) -> None:
        """Loads best epoch `best`'s weights into the model (none when no epoch has a number to compare)
        and, when verbose, says why training ended and which epoch's weights it keeps."""
        last = history[-1]["epoch"] if history else 0
        if best is not None:
            self.model.load_weights(str(self._best_dir(best) / WEIGHTS_PREFIX))
        if self.verbose:
            ended = (f"Early stopping after epoch {last}: {monitor} has not improved for {patience} epochs"
                     if _patience_spent(last, best, patience) else f"Early stopping: trained {last} epochs")
            value = {record["epoch"]: record[monitor] for record in history}.get(best)
            kept = ("no epoch had a finite value, so the final weights are the last epoch's" if best is None else
                    f"final weights from epoch {best} ({monitor} {value:.4f})")
            print(f"{ended}; {kept}")

    def _checkpoint_manager(self, optimizer, encoder_optimizer=None) -> tf.train.CheckpointManager:
        tracked = {"model": self.model, "optimizer": optimizer, "epoch": self.epoch}
        if encoder_optimizer is not None:
            tracked["encoder_optimizer"] = encoder_optimizer
        checkpoint = tf.train.Checkpoint(**tracked)
        return tf.train.CheckpointManager(checkpoint, str(self.run_dir / CHECKPOINTS_DIR), max_to_keep=2)

    def _history_path(self) -> Path:
        return self.run_dir / HISTORY_FILE

    def _write_history(self, history: List[Dict[str, float]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        write_text_atomic(self._history_path(), buffer.getvalue())

    def _log_scalars(self, record: Dict[str, float], step: int) -> None:
        """Appends a history record's numbers (not its `epoch` or `pair` counter) to the TensorBoard log in
        `<run dir>/logs/`, at `step`."""
        if self._summary_writer is None:
            self._summary_writer = tf.summary.create_file_writer(str(self.run_dir / LOGS_DIR))
        with self._summary_writer.as_default(step=step):
            for key, value in record.items():
                if key not in HISTORY_COUNTERS:
                    tf.summary.write(key, tf.constant(value, tf.float32), metadata=_SCALAR_METADATA)
        self._summary_writer.flush()

    def _read_history(self) -> List[Dict[str, float]]:
        return read_history(self.run_dir) if self._history_path().is_file() else []


def read_history(run_dir: Path) -> List[Dict[str, float]]:
    """A run's `history.csv`: one dict of numbers per record (epoch, or pair of the alternating loop); the
    counters `epoch` and `pair` are ints (also where an older version wrote "1.0"), so a resumed run writes
    them back as whole numbers."""
    with open(Path(run_dir) / HISTORY_FILE, newline="", encoding="utf-8") as handle:
        return [{key: int(float(value)) if key in HISTORY_COUNTERS else float(value) for key, value in row.items()}
                for row in csv.DictReader(handle)]


def best_epoch(history: Sequence[Dict[str, float]], monitor: str) -> Optional[int]:
    """The epoch of `history` (`fit`'s records) with the best `monitor` value: the lowest for a "min"
    monitor of `EARLY_STOPPING_MONITORS`, the highest for a "max" one; the earliest of equal values; NaN
    never. None when no record has a number."""
    lower = EARLY_STOPPING_MONITORS[monitor] == "min"
    best, best_value = None, None
    for record in history:
        value = record[monitor]
        if math.isnan(value):
            continue
        if best is None or (value < best_value if lower else value > best_value):
            best, best_value = record["epoch"], value
    return best


def _patience_spent(epoch: int, best: Optional[int], patience: Optional[int]) -> bool:
    """Whether early stopping ends training after `epoch`: `patience` epochs since the best one (since the
    start when there is none yet). False without early stopping (`patience` None)."""
    return patience is not None and epoch - (best or 0) >= patience


class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`.

    Step s (0-based) gets peak * (s + 1) / warmup_steps while s < warmup_steps, then
    peak * (total_steps - s) / (total_steps - warmup_steps), never below 0.
    """

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
        self.peak = peak
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        decay = self.peak * (self.total_steps - step) / (self.total_steps - self.warmup_steps)
        return tf.maximum(tf.where(step < self.warmup_steps, warmup, decay), 0.0)

    def get_config(self) -> dict:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def _labelled_count(labels: tf.Tensor) -> tf.Tensor:
    """Labelled positions of a batch of labels [B, T]: a float32 scalar."""
    return tf.reduce_sum(tf.cast(labels != IGNORE_LABEL, tf.float32))


def epoch_seed(seed: int, epoch: int) -> int:
    """The TensorFlow seed of epoch `epoch` of a run seeded with `seed`: a 31-bit mix of both."""
    return int(np.random.SeedSequence([seed % 2**32, epoch]).generate_state(1)[0] >> 1)


def dense_gradients(gradients: List[Optional[tf.Tensor]], variables: List[tf.Variable]) -> List[Optional[tf.Tensor]]:
    """Each `tf.IndexedSlices` gradient (an embedding's) as a dense tensor of its variable's static shape.

    The row count comes from the variable, not from the gradient's `dense_shape` as in
    `tf.convert_to_tensor`: under XLA that made a jit-compiled gradient through the exported encoder take
    the token ids as compile-time constants, one compilation per batch.
    """
    return [tf.math.unsorted_segment_sum(g.values, g.indices, v.shape[0]) if isinstance(g, tf.IndexedSlices) else g
            for g, v in zip(gradients, variables)]


def reseed_dropout(model: keras.Model, seed: int) -> None:
    """Restarts the random stream of each `keras.layers.Dropout` of `model` that draws from its own
    `tf.random.Generator` (`rng_type="stateful"`, as in `MLPHead` and `RecurrentStack`): the i-th such layer
    (in `model.submodules` order) from `[seed, i]`. Traced steps read the generators' state variables, so
    reseeding needs no new trace, and an epoch's dropout masks depend on its seed alone (exact resume)."""
    dropouts = [layer for layer in model.submodules if isinstance(layer, keras.layers.Dropout)]
    for index, layer in enumerate(dropouts):
        layer._random_generator._maybe_init()  # tf_keras creates the generator lazily, at build
        generator = layer._random_generator._generator
        if generator is not None:
            generator.reset_from_seed([seed, index])


def weights_checksums(run_dir: Path) -> Dict[str, str]:
    """SHA-256 (hex) of each file of a run's final weights, `{name: digest}` in name order: what
    `sha256sum <run dir>/weights/*` prints. Empty when the run has no final weights."""
    weights_dir = Path(run_dir) / WEIGHTS_DIR
    files = sorted(p for p in weights_dir.iterdir() if p.is_file()) if weights_dir.is_dir() else []
    return {p.name: file_sha256(p) for p in files}


def load_weights(model: keras.Model, run_dir: Path) -> None:
    """Restores the final weights a `Trainer` saved in `run_dir` (the model must be built).

    Raises NerError naming the weights for files that cannot be read (truncated, missing, another model's).
    """
    prefix = Path(run_dir) / WEIGHTS_DIR / WEIGHTS_PREFIX
    try:
        model.load_weights(str(prefix)).expect_partial()
    except (IndexError, ValueError, tf.errors.OpError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise NerError(f"{prefix}: the run's weights cannot be read ({reason}); expected the complete weights "
                       "of a finished training; retrain the run (ner train --overwrite)") from None


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
