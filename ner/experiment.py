"""One run end to end, from a validated config: data → split → features → model → training → evaluation.

The examples and the command line call these functions; each piece they use (reader, featurizer, model,
trainer, evaluator) knows nothing of configs and takes plain arguments. The data and model inputs live
in `ner.data`, the evaluation in `ner.evaluation`; this module re-exports what its callers use.
"""
import json
from pathlib import Path

import numpy as np

from ner.config import ExperimentConfig, load_config, save_config
from ner.data import ModelInputs, model_for, prepare_data
from ner.errors import ConfigError
from ner.evaluation import evaluate, write_results
from ner.losses import label_prior, unlabelled_loss
from ner.preprocessor import DataSplit
from ner.runs import CONFIG_FILE, PRIOR_FILE, SPLIT_FILE, run_dir_for, write_label_map
from ner.tagging import OUTSIDE
from ner.trainers.trainer import Trainer, load_weights
from ner.utils import set_seed, write_text_atomic

__all__ = ["ModelInputs", "evaluate", "model_for", "prepare_data", "train", "write_results"]


def train(config: ExperimentConfig, resume: bool = False, verbose: bool = True) -> Path:
    """Trains the config's model; returns the run directory.

    Without a `semi_supervised` section this is supervised training on the labelled split; with one, it
    is the semi-supervised stage started from the trained run `semi_supervised.init_run`, on that run's
    split. The run directory (`saved_models/<run name>/`) receives the resolved config, the split
    (sentence ids), `history.csv`, the final weights and, when supervised, a checkpoint per epoch.
    """
    set_seed(config.training.seed)
    if config.semi_supervised is not None:
        return _train_semi_supervised(config, verbose)
    run_dir = config.run_dir()
    split = DataSplit.from_json(run_dir / SPLIT_FILE) if resume and (run_dir / SPLIT_FILE).is_file() else None
    data = prepare_data(config, split=split, verbose=verbose)
    save_config(config, run_dir / CONFIG_FILE)
    data.split.to_json(run_dir / SPLIT_FILE)
    write_label_map(run_dir, data.label_map)
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    training = config.training
    trainer = Trainer(inputs.trainable_model, run_dir, outside_id=data.label_map.label_to_id(OUTSIDE),
                      verbose=verbose, seed=training.seed, jit_compile=training.jit_compile)
    # Epoch k's order depends only on (seed, k), so a resumed run reads the same batches as an uninterrupted one.
    train_data = inputs.dataset("labelled", shuffle=True, epoch=trainer.epoch)
    validation_data = inputs.dataset("validation", shuffle=False)
    trainer.fit(train_data, training.epochs, training.learning_rate, validation_data=validation_data, resume=resume,
                clip_norm=training.clip_norm, encoder_learning_rate=training.encoder_learning_rate,
                encoder_warmup_fraction=training.encoder_warmup_fraction)
    return run_dir


def _train_semi_supervised(config: ExperimentConfig, verbose: bool) -> Path:
    """Loads the supervised run named by `semi_supervised.init_run` and alternates KL and CE steps."""
    stage = config.semi_supervised
    init_dir = run_dir_for(stage.init_run, config.paths.saved_models_dir)
    init_config = load_config(init_dir / CONFIG_FILE)
    for section in ("data", "encoder", "model"):
        if getattr(init_config, section) != getattr(config, section):
            raise ConfigError(f"semi_supervised.init_run '{stage.init_run}' was trained with a different "
                              f"'{section}' section than this config; expected them to match")
    data = prepare_data(config, split=DataSplit.from_json(init_dir / SPLIT_FILE), verbose=verbose)
    run_dir = config.run_dir()
    save_config(config, run_dir / CONFIG_FILE)
    data.split.to_json(run_dir / SPLIT_FILE)
    write_label_map(run_dir, data.label_map)
    inputs = ModelInputs(config, data, model_for(config, data), verbose)
    load_weights(inputs.trainable_model, init_dir)
    num_labels = data.label_map.num_labels
    prior = np.asarray(stage.prior) if stage.prior is not None else label_prior(data.encoded("labelled").label_ids,
                                                                                num_labels)
    if prior.shape != (num_labels,):
        raise ConfigError(f"semi_supervised.prior has {prior.size} values; expected one per label "
                          f"({num_labels}: {', '.join(data.label_map.labels)})")
    write_text_atomic(run_dir / PRIOR_FILE, json.dumps(dict(zip(data.label_map.labels, prior.tolist())), indent=1))
    unlabelled = unlabelled_loss(stage.losses, stage.loss_weights, prior)
    batch_size = config.training.batch_size
    trainer = Trainer(inputs.trainable_model, run_dir, outside_id=data.label_map.label_to_id(OUTSIDE),
                      verbose=verbose, jit_compile=config.training.jit_compile)
    trainer.fit_alternating(
        inputs.dataset("labelled", shuffle=True),
        inputs.dataset("unlabelled", shuffle=True, limit=stage.pairs * batch_size),
        unlabelled, stage.pairs, stage.learning_rate, stage.unlabelled_learning_rate, stage.evaluate_every,
        validation_data=inputs.dataset("validation", shuffle=False))
    return run_dir
