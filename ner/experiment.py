"""One run end to end, from a validated config: data → split → features → model → training → evaluation.

The examples and the command line call these functions; each piece they use (reader, featurizer, model,
trainer, evaluator) knows nothing of configs and takes plain arguments. The data and model inputs live
in `ner.data`, the evaluation in `ner.evaluation`; this module re-exports what its callers use.
"""
import json
import shutil
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ner.config import ExperimentConfig, load_config, save_config
from ner.crf_ensemble import average_potentials, marginal_probabilities, viterbi_label_ids, word_potentials
from ner.data import ModelInputs, PreparedData, model_for, prepare_data
from ner.distribute import make_strategy
from ner.errors import ConfigError, NerError
from ner.evaluation import evaluate, load_crf_member, member_potentials, write_results
from ner.losses import KLOptions, label_prior, logit_adjustment, unlabelled_loss
from ner.prediction import FirstPiecePredictor
from ner.preprocessor import DataSplit
from ner.reporting import write_csv
from ner.self_training import bald_confidence, check_pool, marginal_confidence, select_pseudo_labels
from ner.runs import CONFIG_FILE, PRIOR_FILE, SPLIT_FILE, run_dir_for, run_lock, write_label_map
from ner.seed001_protocol import seed001_prior
from ner.tagging import OUTSIDE
from ner.trainers.trainer import CHECKPOINTS_DIR, HISTORY_FILE, LOGS_DIR, WEIGHTS_DIR, Trainer, load_weights
from ner.uncertainty.mc_dropout import MCDropoutPredictor
from ner.utils import set_seed, write_text_atomic

__all__ = ["ModelInputs", "evaluate", "model_for", "prepare_data", "train", "write_results"]

SELF_TRAINING_FILE = "self_training.csv"  # one line per self-training round: what the teacher kept, tagging seconds
# What `resume` requires of the run's saved config: the same data, split, encoder and model.
RESUMED_SECTIONS = ("data", "split", "encoder", "model")


def train(config: ExperimentConfig, resume: bool = False, verbose: bool = True, overwrite: bool = False) -> Path:
    """Trains the config's model; returns the run directory.

    Without a `semi_supervised` section this is supervised training on the labelled split, under the
    `tf.distribute` strategy of `training.distribute` (`ner.distribute`); with one, it is the
    semi-supervised stage started from the trained run `semi_supervised.init_run`, on that run's split
    (on one device). The run directory (`saved_models/<run name>/`) receives the resolved config, the split
    (sentence ids), `history.csv`, the final weights and, when supervised, a checkpoint per epoch.
    With `training.init_run` supervised training starts from that run's final weights and split.

    With `training.early_stopping_patience` the supervised training stops once the validation part's
    `training.early_stopping_monitor` has not improved for that many epochs, and the final weights are the
    best epoch's (`Trainer.fit`); an empty validation part is refused.

    The run directory is locked while training (`ner.runs.run_lock`). `resume` continues a run saved with
    the same data, split, encoder and model sections (and, to resume with early stopping, trained with it
    on the same monitor). Otherwise a run directory that already holds weights or checkpoints is refused
    unless `overwrite`, which replaces them. Every check comes before any write.
    """
    set_seed(config.training.seed)
    run_dir = config.run_dir()
    with run_lock(run_dir):
        if resume:
            _check_resumable(config, run_dir)
        else:
            _check_new(config, run_dir, overwrite)
        if config.semi_supervised is not None:
            return _train_semi_supervised(config, verbose)
        training = config.training
        # A resumed run restores its own checkpoint and split instead of the init run's.
        init_dir = (_initial_run(config, "training.init_run", training.init_run, same_encoder=False)
                    if training.init_run is not None and not resume else None)
        split_dir = run_dir if resume and (run_dir / SPLIT_FILE).is_file() else init_dir
        split = DataSplit.from_json(split_dir / SPLIT_FILE) if split_dir is not None else None
        data = prepare_data(config, split=split, verbose=verbose)
        if training.early_stopping_patience is not None and data.draws is None and not data.split.validation_ids:
            raise ConfigError(f"training.early_stopping_patience is {training.early_stopping_patience} but the "
                              "validation part is empty; expected validation sentences to monitor (split."
                              "validation_size, split.fractions or data.conll_validation_path), or null to train "
                              "without early stopping")
        strategy = make_strategy(training.distribute)
        with strategy.scope():  # the model's variables, mirrored on every replica
            inputs = ModelInputs(config, data, model_for(config, data), verbose)  # opens the feature cache: a check
        if init_dir is not None:
            load_weights(inputs.model, init_dir)
        if not resume:
            _remove_training_outputs(run_dir)
        save_config(config, run_dir / CONFIG_FILE)
        data.split.to_json(run_dir / SPLIT_FILE)
        write_label_map(run_dir, data.label_map)
        trainer = Trainer(inputs.trainable_model, run_dir, outside_id=data.label_map.label_to_id(OUTSIDE),
                          verbose=verbose, seed=training.seed, jit_compile=training.jit_compile,
                          precision=training.precision, strategy=strategy, score_offset=_score_offset(config, data))
        # Epoch k's order depends only on (seed, k), so a resumed run reads the same batches as an uninterrupted one.
        train_data = inputs.dataset("labelled", shuffle=True, epoch=trainer.epoch)
        validation_data = inputs.monitor_dataset(epoch=trainer.epoch)
        trainer.fit(train_data, training.epochs, training.learning_rate, validation_data=validation_data,
                    resume=resume, clip_norm=training.clip_norm, encoder_learning_rate=training.encoder_learning_rate,
                    encoder_warmup_fraction=training.encoder_warmup_fraction,
                    early_stopping_patience=training.early_stopping_patience,
                    early_stopping_monitor=training.early_stopping_monitor)
    return run_dir


def _initial_run(config: ExperimentConfig, key: str, run: str, same_encoder: bool) -> Path:
    """The directory of the trained run `run` that config key `key` starts from. ConfigError unless it has a
    saved config with this config's data and model sections and encoder (only the encoder's handle unless
    `same_encoder`: a frozen run's head may start a fine-tuned one), and final weights."""
    try:
        init_dir = run_dir_for(run, config.paths.saved_models_dir)
    except NerError as error:
        raise ConfigError(f"{key}: {error}") from None
    if not (init_dir / WEIGHTS_DIR).is_dir():
        raise ConfigError(f"{key} '{run}' has no final weights in {init_dir / WEIGHTS_DIR}; expected a finished "
                          "run: train it first")
    init_config = load_config(init_dir / CONFIG_FILE)
    encoder = (("'encoder' section", init_config.encoder, config.encoder) if same_encoder
               else ("encoder handle", init_config.encoder.handle, config.encoder.handle))
    for what, theirs, ours in (("'data' section", init_config.data, config.data),
                               ("'model' section", init_config.model, config.model), encoder):
        if theirs != ours:
            raise ConfigError(f"{key} '{run}' was trained with a different {what} than this config; "
                              "expected them to match")
    return init_dir


def _score_offset(config: ExperimentConfig, data: PreparedData) -> Optional[np.ndarray]:
    """The logit adjustment [C] of the supervised loss (`training.logit_adjustment` times the log of the
    labelled part's label distribution), or None when it is 0."""
    if config.training.logit_adjustment == 0:
        return None
    prior = label_prior(data.encoded("labelled").label_ids, data.label_map.num_labels)
    return logit_adjustment(prior, config.training.logit_adjustment)


def _check_resumable(config: ExperimentConfig, run_dir: Path) -> None:
    """Raises unless `run_dir` holds a supervised run saved with the config's data, split, encoder and model
    and, when the config stops early, trained with early stopping on the same monitor (whose best epoch's
    weights it kept)."""
    saved_file = run_dir / CONFIG_FILE
    if not saved_file.is_file():
        raise NerError(f"run '{config.run_name}' has nothing to resume: expected {saved_file} and checkpoints in "
                       f"{run_dir / CHECKPOINTS_DIR}; drop --resume to start it")
    if config.semi_supervised is not None:
        raise ConfigError(f"run '{config.run_name}' is a semi-supervised stage, which cannot be resumed; "
                          "expected --overwrite instead of --resume to train it again")
    saved = load_config(saved_file, environ={})
    for section in RESUMED_SECTIONS:
        ours, theirs = _flat(config.to_dict()[section]), _flat(saved.to_dict()[section])
        differing = [key for key in sorted(set(ours) | set(theirs)) if ours.get(key) != theirs.get(key)]
        if differing:
            key = differing[0]
            raise ConfigError(f"{saved_file}: run '{config.run_name}' was trained with a different '{section}' "
                              f"section ({section}.{key}: {theirs.get(key)!r} saved, {ours.get(key)!r} now); "
                              f"expected the same {', '.join(RESUMED_SECTIONS)} sections to resume it, or "
                              "--overwrite instead of --resume to start it again")
    ours, theirs = config.training, saved.training
    if ours.early_stopping_patience is not None and (
            theirs.early_stopping_patience is None or theirs.early_stopping_monitor != ours.early_stopping_monitor):
        trained = ("without early stopping" if theirs.early_stopping_patience is None
                   else f"with training.early_stopping_monitor {theirs.early_stopping_monitor}")
        raise ConfigError(f"{saved_file}: run '{config.run_name}' was trained {trained}, so it kept no weights of "
                          f"its best epoch by {ours.early_stopping_monitor}; expected to resume it with the "
                          "early stopping it was trained with (or training.early_stopping_patience: null), or "
                          "--overwrite instead of --resume to start it again")


def _check_new(config: ExperimentConfig, run_dir: Path, overwrite: bool) -> None:
    """Raises if `run_dir` already holds weights or checkpoints, unless `overwrite`."""
    for name, what in ((WEIGHTS_DIR, "the weights of a finished training"),
                       (CHECKPOINTS_DIR, "the checkpoints of an unfinished training")):
        if (run_dir / name).exists() and not overwrite:
            raise NerError(f"run '{config.run_name}' already holds {what} ({run_dir / name}); expected a new "
                           "run_name, --resume to continue it, or --overwrite to replace it")


def _remove_training_outputs(run_dir: Path) -> None:
    """Deletes what an earlier training wrote in `run_dir` (weights, checkpoints, logs, history, prior)."""
    for name in (WEIGHTS_DIR, CHECKPOINTS_DIR, LOGS_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    for name in (HISTORY_FILE, PRIOR_FILE, SELF_TRAINING_FILE):
        (run_dir / name).unlink(missing_ok=True)


def _flat(section: dict, prefix: str = "") -> dict:
    """A nested config section as {dotted key: value}."""
    out = {}
    for key, value in section.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _train_semi_supervised(config: ExperimentConfig, verbose: bool) -> Path:
    """Loads the supervised run named by `semi_supervised.init_run` and alternates KL and CE steps."""
    stage = config.semi_supervised
    init_dir = _initial_run(config, "semi_supervised.init_run", stage.init_run, same_encoder=True)
    data = prepare_data(config, split=DataSplit.from_json(init_dir / SPLIT_FILE), verbose=verbose)
    run_dir = config.run_dir()
    _remove_training_outputs(run_dir)
    save_config(config, run_dir / CONFIG_FILE)
    data.split.to_json(run_dir / SPLIT_FILE)
    write_label_map(run_dir, data.label_map)
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    initial_weights = inputs.trainable_model.get_weights()  # a re-initialised student starts from these
    load_weights(inputs.trainable_model, init_dir)
    num_labels = data.label_map.num_labels
    if stage.prior is not None:
        prior = np.asarray(stage.prior)
    elif stage.prior_source == "seed001":
        prior = seed001_prior(data.label_map.labels)
    else:
        prior = label_prior(data.encoded("labelled").label_ids, num_labels)
    if prior.shape != (num_labels,):
        raise ConfigError(f"semi_supervised.prior has {prior.size} values; expected one per label "
                          f"({num_labels}: {', '.join(data.label_map.labels)})")
    write_text_atomic(run_dir / PRIOR_FILE, json.dumps(dict(zip(data.label_map.labels, prior.tolist())), indent=1))
    options = KLOptions(special_tokens=stage.kl_special_tokens, confidence_stop_gradient=stage.confidence_stop_gradient,
                        confidence_reduction=stage.confidence_reduction)
    unlabelled = unlabelled_loss(stage.losses, stage.loss_weights, prior, options) if stage.losses else None
    trainer = Trainer(inputs.trainable_model, run_dir, outside_id=data.label_map.label_to_id(OUTSIDE),
                      verbose=verbose, jit_compile=config.training.jit_compile,
                      precision=config.training.precision, score_offset=_score_offset(config, data))
    if stage.self_training is not None:
        _self_train(config, inputs, trainer, unlabelled, initial_weights)
        return run_dir
    trainer.fit_alternating(
        inputs.step_dataset("labelled", stage.pairs), inputs.step_dataset("unlabelled", stage.pairs),
        unlabelled, stage.pairs, stage.learning_rate, stage.unlabelled_learning_rate, stage.evaluate_every,
        validation_data=inputs.monitor_dataset())
    return run_dir


def _pool_potentials(config: ExperimentConfig, inputs: ModelInputs, pool_ids, labels: np.ndarray) -> list:
    """The `WordPotentials` of each of `self_training.teachers` on the pool sentences `pool_ids`, whose gold
    labels at the words the self-trained model read are `labels`; NerError for a teacher that is not a finished
    CRF run of the same split, labels and words (`ner.evaluation.load_crf_member`)."""
    potentials = []
    for run in config.semi_supervised.self_training.teachers:
        _, teacher = load_crf_member(run, (), config.paths.saved_models_dir, config, inputs.data)
        pool = teacher.rows_dataset(teacher.data.rows_of(pool_ids), shuffle=False, part="unlabelled")
        potentials.append(member_potentials(run, teacher, pool, labels, "the self-training pool"))
    return potentials


def _self_train(config: ExperimentConfig, inputs: ModelInputs, trainer: Trainer, kl_loss,
                initial_weights: list) -> None:
    """The stage's pairs in `self_training.rounds` rounds: each round the model as it stands tags the pool,
    and its most confident sentences are the round's unlabelled batches, learnt with the model's own loss
    (plus the stage's KL losses, if any) by the model itself or, with `student: reinitialise`, by the model
    reset to `initial_weights` (its weights before the teacher's were loaded). With `self_training.teachers`
    the model tags together with those runs, as a CRF ensemble. Each round's selection goes to
    `<run dir>/self_training.csv`."""
    stage, options = config.semi_supervised, config.semi_supervised.self_training
    pool_ids = inputs.data.split.unlabelled_ids[:options.pool_size]
    check_pool(inputs.data.split, pool_ids)
    pool_rows = inputs.data.rows_of(pool_ids)
    predictor = FirstPiecePredictor(trainer.model)
    sampler = (MCDropoutPredictor(trainer.model, options.mc_samples, config.model.head.dropout_rate)
               if options.confidence == "mc_dropout" else None)
    labelled = inputs.dataset("labelled", shuffle=True)
    validation = inputs.dataset("validation", shuffle=False)
    history, rounds, teachers = [], [], None
    for index in range(options.rounds):
        pairs = stage.pairs * (index + 1) // options.rounds - stage.pairs * index // options.rounds
        if options.control:  # labelled batches, in another order than the labelled steps' own
            batches = inputs.rows_dataset(inputs.data.rows("labelled"), shuffle=True, seed=config.training.seed + 1)
        else:
            start = time.perf_counter()
            # With teachers, the model's emission scores are all it gives: the ensemble decodes.
            tagged = predictor.predict(inputs.rows_dataset(pool_rows, shuffle=False, part="unlabelled"),
                                       decode=not options.teachers,
                                       probabilities=sampler is None and not options.teachers,
                                       mc_predictor=sampler, emission_scores=bool(options.teachers))
            label_ids = tagged.label_ids
            if options.teachers:
                if teachers is None:  # their potentials on the pool do not change: computed once
                    teachers = _pool_potentials(config, inputs, pool_ids, tagged.labels)
                pooled = average_potentials([word_potentials(trainer.model, tagged.emission_scores), *teachers])
                label_ids = viterbi_label_ids(pooled, tagged.row_lengths)
                word_confidence = marginal_confidence(marginal_probabilities(pooled, tagged.row_lengths), label_ids)
            elif sampler is None:
                word_confidence = marginal_confidence(tagged.probabilities, label_ids)
            else:
                word_confidence = bald_confidence(tagged.mc.mean, tagged.mc.expected_entropy)
            pseudo = select_pseudo_labels(pool_rows, tagged.row_lengths, label_ids, word_confidence,
                                          options.keep_fraction, tagged.labels)
            rounds.append({"round": index + 1, **pseudo.summary(), "seconds": time.perf_counter() - start})
            if trainer.verbose:
                print(f"[self-training] round {index + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in rounds[-1].items()))
            batches = inputs.rows_dataset(pseudo.rows, shuffle=True, word_labels=pseudo.word_labels)
        if options.student == "reinitialise":
            trainer.model.set_weights(initial_weights)
        history = trainer.fit_alternating(labelled, batches, kl_loss, pairs, stage.learning_rate,
                                          stage.unlabelled_learning_rate, stage.evaluate_every,
                                          validation_data=validation, own_loss_on_unlabelled=True, history=history)
    if rounds:
        write_csv(config.run_dir() / SELF_TRAINING_FILE, rounds)
