"""Config loading: base merging, overrides, environment variables, and clear errors."""
import pytest

import ner  # noqa: F401
from ner.config import CONFIG_DIR, ExperimentConfig, load_config, save_config
from ner.errors import ConfigError


def test_shipped_configs_load_with_seed_001_defaults():
    for name, model_type in (("bert_ner.yaml", "bert_ner"), ("ner_baseline.yaml", "ner_baseline")):
        config = load_config(CONFIG_DIR / name, environ={})
        assert config.model.type == model_type
        assert (config.split.test_size, config.split.labelled_size) == (9600, 2560)
        assert (config.training.batch_size, config.training.epochs) == (128, 20)
        assert config.training.learning_rate == pytest.approx(1e-3)
        assert config.model.head.hidden_units == (256, 128, 64)
        assert config.model.head.latent_dim == 32


def test_model_file_overrides_base_key_by_key(tmp_path):
    (tmp_path / "config.yaml").write_text("training: {epochs: 20, batch_size: 64}\n")
    (tmp_path / "m.yaml").write_text("base: config.yaml\nrun_name: m\ntraining: {epochs: 3}\n")
    config = load_config(tmp_path / "m.yaml", environ={})
    assert (config.run_name, config.training.epochs, config.training.batch_size) == ("m", 3, 64)


def test_overrides_and_environment(tmp_path):
    config = load_config(CONFIG_DIR / "bert_ner.yaml", ["training.epochs=2", "encoder.trainable=true"],
                         environ={"NER_GMB_PATH": "/data/gmb.csv", "NER_ENCODER_HANDLE": "/enc"})
    assert config.training.epochs == 2 and config.encoder.trainable is True
    assert config.data.gmb_path == "/data/gmb.csv" and config.encoder.handle == "/enc"


def test_saved_config_loads_back_identical(tmp_path):
    config = load_config(CONFIG_DIR / "bert_ner.yaml", ["training.epochs=2"], environ={})
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml", environ={}) == config
    assert isinstance(config, ExperimentConfig)


@pytest.mark.parametrize("text, message", [
    ("training: {learnin_rate: 0.1}", "unknown key 'training.learnin_rate'"),
    ("training: {epochs: two}", "key 'training.epochs' must be of type int, got 'two'"),
    ("training: {epochs: 1.5}", "key 'training.epochs' must be of type int"),
    ("encoder: {trainable: 1}", "key 'encoder.trainable' must be true or false"),
    ("model: {head: {dropout_rate: 1.5}}", "key 'model.head.dropout_rate' must be a number in [0, 1)"),
    ("data: {tag_scheme: biluo2}", "key 'data.tag_scheme' must be one of"),
    ("model: {head: {hidden_units: 256}}", "key 'model.head.hidden_units' must be a list of int"),
    ("training: [1, 2]", "'training' must be a mapping"),
    ("run_name: 'a/b'", "key 'run_name' must be letters"),
    ("base: missing.yaml", "config file not found"),
    ("semi_supervised: {losses: [confidense]}", "key 'semi_supervised.losses' must be a list of"),
    ("semi_supervised: {losses: [confidence], loss_weights: [1, 2]}", "key 'semi_supervised.loss_weights'"),
    ("semi_supervised: {prior: [0.5, 0.6]}", "key 'semi_supervised.prior' must be null or"),
    ("training: {epochs: [", "not valid YAML"),
    # found by tests/test_config_fuzz.py
    ("base: 5", "key 'base' must be the file name of the base config, e.g. config.yaml, got 5"),
    ("1: x\nrun_name: a", "unknown key '1'; expected one of: run_name, data,"),
    ("2020-01-01: x", "unknown key '2020-01-01'"),
    ("training: {epochs: !!int 1.5}", "bad.yaml: not valid YAML (a value its tag cannot take: invalid literal for "
                                      "int() with base 10: '1.5'); expected a YAML config file"),
    ("semi_supervised: {prior: [.nan, .inf]}", "key 'semi_supervised.prior[0]' must be a finite number, got nan"),
    ("training: {learning_rate: 1" + "0" * 400 + "}",
     "key 'training.learning_rate' must be a number, got an integer of 401 digits"),
    ("training: " + "[" * 5000, "bad.yaml: YAML nested too deeply to read; expected a YAML config file"),
])
def test_bad_config_names_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert message in str(raised.value)
    assert "bad.yaml" in str(raised.value) or "missing.yaml" in str(raised.value)


@pytest.mark.parametrize("override, message", [
    ("training.epochs=[", "override 'training.epochs=[' line 1 column 2: not valid YAML (expected the node content, "
                          "but found '<stream end>'); expected key.path=value, e.g. training.epochs=2 with a YAML "
                          "value"),
    ("training.epochs=!!float x", "override 'training.epochs=!!float x': not valid YAML (a value its tag cannot "
                                  "take: could not convert string to float: 'x')"),
    ("training.seed=!!python/object:os.system x", "not valid YAML (could not determine a constructor for the tag "
                                                  "'tag:yaml.org,2002:python/object:os.system')"),
])
def test_an_override_value_that_is_not_yaml_is_named(override, message):
    with pytest.raises(ConfigError) as raised:
        load_config(CONFIG_DIR / "bert_ner.yaml", [override], environ={})
    assert message in str(raised.value)


def test_missing_config_file_and_bad_override():
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config("nope.yaml", environ={})
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config(CONFIG_DIR / "bert_ner.yaml", ["training.epochs"], environ={})
    with pytest.raises(ConfigError, match="with overrides training.epochs=0: key 'training.epochs'"):
        load_config(CONFIG_DIR / "bert_ner.yaml", ["training.epochs=0"], environ={})


def test_sequence_tagger_configs_and_training_options():
    for name, model_type in (("rnn_ner.yaml", "bilstm"), ("bert_gru.yaml", "bert_gru"),
                             ("bert_bilstm_crf.yaml", "bert_bilstm_crf")):
        assert load_config(CONFIG_DIR / name, environ={}).model.type == model_type
    crf = load_config(CONFIG_DIR / "bert_bilstm_crf.yaml", environ={})
    assert crf.encoder.trainable and crf.model.crf_constraints and crf.data.tag_scheme == "bio"
    assert (crf.training.encoder_learning_rate, crf.training.clip_norm) == (5e-5, 1.0)
    assert load_config(CONFIG_DIR / "rnn_ner.yaml", ["model.rnn.cell=gru"], environ={}).model.rnn.cell == "gru"
    assert load_config(CONFIG_DIR / "bert_gru.yaml", ["training.clip_norm=null"], environ={}).training.clip_norm is None
    default = load_config(CONFIG_DIR / "bert_ner.yaml", environ={})  # the new keys change nothing by default
    assert default.training.clip_norm is None and default.training.encoder_learning_rate is None
    assert load_config(CONFIG_DIR / "bert_ner.yaml", ["training.clip_norm=2"], environ={}).training.clip_norm == 2.0
    finetune = load_config(CONFIG_DIR / "bert_crf_finetune.yaml", environ={})
    assert finetune.encoder.trainable and finetune.model.type == "bert_crf" and finetune.model.casing_dim == 16
    assert (finetune.training.encoder_learning_rate, finetune.training.early_stopping_patience,
            finetune.training.epochs, finetune.training.batch_size) == (5e-5, None, 10, 32)


def test_early_stopping_is_off_by_default_and_set_by_two_keys():
    default = load_config(CONFIG_DIR / "bert_ner.yaml", environ={}).training
    assert (default.early_stopping_patience, default.early_stopping_monitor) == (None, "val_loss")
    on = load_config(CONFIG_DIR / "bert_ner.yaml", ["training.early_stopping_patience=3",
                                                    "training.early_stopping_monitor=val_accuracy_without_o"],
                     environ={}).training
    assert (on.early_stopping_patience, on.early_stopping_monitor) == (3, "val_accuracy_without_o")


@pytest.mark.parametrize("text, message", [
    ("training: {clip_norm: 0}", "key 'training.clip_norm' must be a positive number or null, got 0.0"),
    ("training: {clip_norm: fast}", "key 'training.clip_norm' must be of type float, got 'fast'"),
    ("training: {encoder_learning_rate: 2}", "key 'training.encoder_learning_rate' must be a number in (0, 1) or null"),
    ("training: {encoder_warmup_fraction: 1.0}", "key 'training.encoder_warmup_fraction' must be a number in [0, 1)"),
    ("model: {rnn: {cell: rnn}}", "key 'model.rnn.cell' must be one of ('lstm', 'gru') or null, got 'rnn'"),
    ("model: {rnn: {num_layers: 0}}", "key 'model.rnn.num_layers' must be a positive integer"),
    ("model: {rnn: {unit: 3}}", "unknown key 'model.rnn.unit'"),
    ("model: {type: crf}", "key 'model.type' must be one of"),
    ("model: {word_pooling: last}", "key 'model.word_pooling' must be one of ('first', 'mean'), got 'last'"),
    ("model: {type: bert_ner, word_pooling: mean}",
     "key 'model.word_pooling' must be first: averaging a word's pieces needs a model type that reads where words "
     "start (bert_crf), got 'mean'"),
    ("model: {lexical_templates: rich}",
     "key 'model.lexical_templates' must be one of ('crf', 'extended'), got 'rich'"),
    ("split: {labelled_selection: biased}",
     "key 'split.labelled_selection' must be one of ('random', 'fewer_outside'), got 'biased'"),
    ("split: {added_labelled_file: ' '}",
     "key 'split.added_labelled_file' must be null or the path of a file of sentence ids, got ' '"),
    ("split: {mention_replacement_copies: -1}",
     "key 'split.mention_replacement_copies' must be 0 (off) or a positive integer, got -1"),
    ("split: {mention_replacement_rate: 1.5}", "key 'split.mention_replacement_rate' must be a probability in [0, 1], "
                                               "got 1.5"),
    ("model: {head: {l2: -0.1}}", "key 'model.head.l2' must be a non-negative number, got -0.1"),
    ("model: {head: {l2: .nan}}", "key 'model.head.l2' must be a finite number, got nan"),
    ("data: {corpus: ontonotes}", "key 'data.corpus' must be one of ('gmb', 'conll')"),
    ("data: {conll_tags: iob2}", "key 'data.conll_tags' must be one of ('iob1', 'bio')"),
    ("data: {max_pieces_per_word: 0}", "key 'data.max_pieces_per_word' must be null or an integer ≥ 1, got 0"),
    ("split: {fractions: [0.5, 0.6]}", "key 'split.fractions' must be null or three numbers"),
    ("split: {fractions: [0.1, 0.8, 0.2]}", "key 'split.fractions' must be null or three numbers"),
    ("split: {fractions: [0.0, 0.8, 0.1]}", "key 'split.fractions' must be null or three numbers"),
    ("training: {length_buckets: [32, 16, 128]}",
     "key 'training.length_buckets' must be null or increasing positive widths, e.g. [16, 32, 64, 128], "
     "got [32, 16, 128]"),
    ("training: {length_buckets: []}", "key 'training.length_buckets' must be null or increasing positive widths"),
    ("training: {precision: float16}",
     "key 'training.precision' must be one of ('float32', 'mixed_float16', 'mixed_bfloat16'), got 'float16'"),
    ("training: {precision: mixed_float16, encoder_learning_rate: 5.0e-5}",
     "key 'training.precision' must be float32 or mixed_bfloat16 with an encoder_learning_rate"),
    ("training: {length_buckets: [16, 64]}",
     "key 'training.length_buckets' must be widths up to at least data.max_seq_length (128), got [16, 64]"),
    ("training: {init_run: ' '}", "key 'training.init_run' must be null or the name or directory of a trained run"),
    ("training: {init_run: bert_crf}\nsemi_supervised: {init_run: bert_crf}",
     "key 'training.init_run' must be null with a semi_supervised section (the stage starts from "
     "semi_supervised.init_run), got 'bert_crf'"),
    ("training: {logit_adjustment: -1.0}",
     "key 'training.logit_adjustment' must be a non-negative number (τ; 0: the plain loss), got -1.0"),
    ("training: {early_stopping_patience: 0}",
     "key 'training.early_stopping_patience' must be null (no early stopping) or a positive integer (epochs), got 0"),
    ("training: {early_stopping_patience: 2.5}", "key 'training.early_stopping_patience' must be of type int, got 2.5"),
    ("training: {early_stopping_monitor: val_f1}",
     "key 'training.early_stopping_monitor' must be one of ('val_loss', 'val_accuracy', 'val_accuracy_without_o'), "
     "got 'val_f1'"),
    ("split: {protocol: seed001, test_size: 9600, labelled_size: 2560}\ntraining: {early_stopping_patience: 3}",
     "key 'training.early_stopping_patience' must be null under split.protocol seed001 (it has no validation part: "
     "training monitors a draw of the test part), got 3"),
])
def test_bad_keys_name_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match="bad.yaml") as raised:
        load_config(path, environ={})
    assert message in str(raised.value)


def test_future_work_configs():
    biased = load_config(CONFIG_DIR / "bert_ner_biased_labelled.yaml", environ={})
    assert (biased.run_name, biased.split.labelled_selection) == ("bert_ner_biased_labelled", "fewer_outside")
    l2 = load_config(CONFIG_DIR / "bert_ner_l2.yaml", environ={})
    assert l2.run_name == "bert_ner_l2" and l2.model.head.l2 == pytest.approx(1e-4)
    dropout = load_config(CONFIG_DIR / "bert_ner_dropout.yaml", environ={})
    assert dropout.run_name == "bert_ner_dropout" and dropout.model.head.dropout_rate == 0.5
    default = load_config(CONFIG_DIR / "bert_ner.yaml", environ={})  # the new keys change nothing by default
    assert default.split.labelled_selection == "random" and default.model.head.l2 == 0.0
    for config in (biased, l2, dropout):  # each differs from bert_ner in its own keys only
        assert config.model.type == "bert_ner" and config.training == default.training


def test_exponent_numbers_without_a_dot_read_as_floats(tmp_path):
    (tmp_path / "m.yaml").write_text("training: {learning_rate: 2e-3}\n")  # PyYAML: the string '2e-3'
    config = load_config(tmp_path / "m.yaml", ["training.encoder_learning_rate=5e-5", "training.clip_norm=1E1"],
                         environ={})
    assert (config.training.learning_rate, config.training.encoder_learning_rate, config.training.clip_norm) == (
        0.002, 5e-05, 10.0)
    with pytest.raises(ConfigError, match="key 'training.epochs' must be of type int, got '5e1'"):
        load_config(tmp_path / "m.yaml", ["training.epochs=5e1"], environ={})
