"""End to end on small data the test makes: config → GMB CSV → split → train → saved run → evaluate → files."""
import csv
import dataclasses
import json

import numpy as np
import pytest

import ner  # noqa: F401
from ner.api import Tagger
from ner.config import CONFIG_DIR, EncoderConfig, SemiSupervisedConfig, build_dataclass, load_config
from ner.errors import ConfigError, DataError, EncoderError, NerError
from ner.data import prepare_data
from ner.evaluation import evaluate, write_results
from ner.experiment import train
from ner.model_evaluator import build_report
from ner.preprocessor import DataSplit
from ner.tagging import bio_tags
from tests.helpers import PNG_MAGIC, give_run_random_scores, randomise_output_scores, tiny_config


def test_baseline_learns_word_level_patterns(tmp_path, tiny_encoder_handle):
    """The baseline sees each word's identity, so near-perfect scores prove labels, pieces and words align."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "ner_baseline", "bio")
    report = evaluate(str(train(config, verbose=False)), verbose=False).report
    assert report.token.accuracy > 0.95 and report.entity.f1 > 0.9


@pytest.mark.parametrize("model_type, scheme", [("bert_ner", "io"), ("ner_baseline", "bio")])
def test_train_save_evaluate_report(tmp_path, tiny_encoder_handle, model_type, scheme):
    config = tiny_config(tmp_path, tiny_encoder_handle, model_type, scheme, epochs=4)
    run_dir = train(config, verbose=False)
    assert {"config.yaml", "split.json", "history.csv", "weights", "checkpoints"} <= {p.name for p in run_dir.iterdir()}
    split = DataSplit.from_json(run_dir / "split.json")
    assert [len(ids) for ids in split.parts().values()] == [12, 32, 8, 8]

    evaluation = evaluate(str(run_dir), verbose=False)
    report = evaluation.report
    assert report.num_sentences == 12
    assert report.token.labels[0] == "O" and len(report.token.labels) == 9  # always scored on types
    history = (run_dir / "history.csv").read_text().splitlines()
    first_loss, last_loss = (float(line.split(",")[1]) for line in (history[1], history[-1]))
    assert last_loss < 0.8 * first_loss
    assert evaluation.latent.shape == (report.num_tokens, 8)
    assert evaluation.latent_true.shape == evaluation.latent_pred.shape == (report.num_tokens,)
    assert tuple(s.sentence_id for s in evaluation.sentences) == split.test_ids
    assert build_report([s.tags for s in evaluation.sentences], evaluation.predicted_tags,
                        bio_tags()).entity == report.entity  # the tags scored are the ones kept

    results = write_results(evaluation, "ner evaluate --run test-run")
    assert results == config.results_dir()
    with open(results / "metrics.csv", newline="") as handle:
        [metrics] = list(csv.DictReader(handle))
    assert metrics["run_name"] == config.run_name and int(metrics["num_tokens"]) == report.num_tokens
    for name, value in report.summary_row().items():
        assert float(metrics[name]) == value
    markdown = (results / "report.md").read_text()
    assert (f"Produced by `ner evaluate --run test-run` at {evaluation.evaluated_at} from the run in `{run_dir}`"
            in markdown)
    assert f"| entity F1 (strict spans, micro) | {report.entity.f1:.4f} |" in markdown
    for figure in ("latent_pca_true.png", "latent_pca_predicted.png", "confusion_by_true.png"):
        assert f"![{figure}]({figure})" in markdown and (results / figure).read_bytes()[:8] == PNG_MAGIC
    assert DataSplit.from_json(results / "split.json") == split
    assert load_config(results / "config.yaml") == config


def test_bert_bilstm_crf_trains_and_evaluates_on_spans(tmp_path, tiny_encoder_handle):
    """The CRF tagger through the same train / evaluate path: fine-tuned encoder on its own schedule,
    BILUO labels, the CRF's Viterbi labels scored as BIO spans over the 9 types, the same labels
    `ner.api` predicts."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_bilstm_crf", "biluo", epochs=3)
    config = dataclasses.replace(
        config, encoder=dataclasses.replace(config.encoder, trainable=True),
        model=dataclasses.replace(config.model, rnn=dataclasses.replace(config.model.rnn, units=8)),
        training=dataclasses.replace(config.training, clip_norm=1.0, encoder_learning_rate=1e-3))
    run_dir = train(config, verbose=False)
    history = (run_dir / "history.csv").read_text().splitlines()
    first_loss, last_loss = (float(line.split(",")[1]) for line in (history[1], history[-1]))
    assert last_loss < 0.8 * first_loss
    # Random scores (the first seed of those tried) whose Viterbi labels differ from the argmax of the
    # marginals somewhere on the test part, so that decoding by either shows. Three tiny epochs leave the
    # words' features much alike, so only about one seed in ten gives such scores: the search runs in
    # memory over many seeds and saves the one it finds.
    data = prepare_data(config, split=DataSplit.from_json(run_dir / "split.json"), verbose=False)
    sentences = data.part_sentences("test")
    tagger = Tagger.from_run(str(run_dir))
    for seed in range(200):
        randomise_output_scores(tagger.model, seed)
        words = tagger.predict_words([s.words for s in sentences])  # one row per sentence
        label_ids = np.concatenate([ids for ids, _ in words])
        marginals = np.concatenate([probabilities for _, probabilities in words])
        if (marginals.argmax(-1) != label_ids).any():
            break
    else:
        pytest.fail("no seed gave Viterbi labels that differ from the max-marginal ones")
    give_run_random_scores(run_dir, seed)
    evaluation = evaluate(str(run_dir), verbose=False)
    assert len(evaluation.labels) == 1 + 4 * 8  # BILUO over the 8 GMB types
    assert evaluation.report.token.labels[0] == "O" and len(evaluation.report.token.labels) == 9
    assert evaluation.report.num_sentences == 12
    np.testing.assert_array_equal(evaluation.latent_pred, label_ids)  # the test part fits the PCA batches
    label_map = data.label_map
    predicted = [label_map.to_bio([label_map.id_to_label(i) for i in ids]) for ids, _ in words]
    expected = build_report([list(s.tags) for s in sentences], predicted, bio_tags(label_map.entity_types))
    np.testing.assert_array_equal(evaluation.report.token.confusion, expected.token.confusion)
    assert evaluation.report.entity.f1 == expected.entity.f1


def test_evaluation_is_repeatable_and_finds_the_run_where_training_put_it(tmp_path, tiny_encoder_handle):
    """By name, a run is looked up in the `paths.saved_models_dir` that training honoured (here under
    tmp_path, not saved_models/), from the overrides or given directly."""
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=1)
    run_dir = train(config, verbose=False)
    assert run_dir == tmp_path / "saved_models" / config.run_name
    first = evaluate(str(run_dir), verbose=False)
    by_override = evaluate(config.run_name, [f"paths.saved_models_dir={tmp_path / 'saved_models'}"], verbose=False)
    by_argument = evaluate(config.run_name, verbose=False, saved_models_dir=str(tmp_path / "saved_models"))
    for second in (by_override, by_argument):
        np.testing.assert_array_equal(first.report.token.confusion, second.report.token.confusion)


def test_clear_errors_for_missing_data_encoder_and_run(tmp_path, tiny_encoder_handle):
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=1)
    missing_data = load_config(CONFIG_DIR / "bert_ner.yaml", environ={"NER_GMB_PATH": str(tmp_path / "no.csv")})
    with pytest.raises(DataError, match="no.csv"):
        train(missing_data, verbose=False)
    bad_encoder = dataclasses.replace(config, encoder=EncoderConfig(handle=str(tmp_path / "no_encoder")))
    with pytest.raises(EncoderError, match="no_encoder"):
        train(bad_encoder, verbose=False)
    with pytest.raises(NerError, match="run 'nothing_here' not found"):
        evaluate("nothing_here", verbose=False)


@pytest.mark.parametrize("argv, expected", [
    (["--set", "training.epoch=2"], "unknown key 'training.epoch'"),
    (["--config", "config/missing.yaml"], "config file not found"),
    (["--set", "data.gmb_path=/nonexistent/gmb.csv"], "GMB data file not found: /nonexistent/gmb.csv"),
])
def test_example_scripts_print_one_error_line(capsys, argv, expected):
    from examples.common import train_main

    with pytest.raises(SystemExit) as exited:
        train_main("config/bert_ner.yaml", argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0]


@pytest.mark.parametrize("losses", [["data_distribution"], ["confidence"], ["data_distribution", "confidence"]])
def test_semi_supervised_stage_starts_from_the_supervised_run(tmp_path, tiny_encoder_handle, losses):
    supervised = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=2)
    train(supervised, verbose=False)
    stage = {"init_run": supervised.run_name, "losses": losses, "loss_weights": [1.0] * len(losses),
             "pairs": 6, "evaluate_every": 3}
    config = dataclasses.replace(supervised, run_name="kl", semi_supervised=build_dataclass(
        SemiSupervisedConfig, stage, source="test"))
    run_dir = train(config, verbose=False)
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("pair,unlabelled_loss,loss") and [line.split(",")[0] for line in history[1:]] == ["3", "6"]
    assert (run_dir / "split.json").read_text() == (supervised.run_dir() / "split.json").read_text()
    prior = json.loads((run_dir / "prior.json").read_text())
    assert list(prior) == ["O", "geo", "gpe", "per", "org", "tim", "art", "nat", "eve"]
    assert sum(prior.values()) == pytest.approx(1.0) and prior["art"] == 0.0
    assert evaluate(str(run_dir), verbose=False).report.num_sentences == 12


def test_semi_supervised_stage_rejects_a_mismatched_init_run(tmp_path, tiny_encoder_handle):
    supervised = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner", epochs=1)
    train(supervised, verbose=False)
    mismatched = dataclasses.replace(
        supervised, run_name="kl", data=dataclasses.replace(supervised.data, max_seq_length=12),
        semi_supervised=SemiSupervisedConfig(init_run=supervised.run_name))
    with pytest.raises(ConfigError, match="different 'data' section"):
        train(mismatched, verbose=False)
    wrong_prior = dataclasses.replace(supervised, run_name="kl", semi_supervised=SemiSupervisedConfig(
        init_run=supervised.run_name, prior=(0.5, 0.5)))
    with pytest.raises(ConfigError, match="semi_supervised.prior has 2 values; expected one per label"):
        train(wrong_prior, verbose=False)


def test_init_run_starts_a_fine_tuned_run_from_a_frozen_runs_head(tmp_path, tiny_encoder_handle):
    """LP-FT: a bert_crf head trained on cached features (frozen encoder, its random output scores saved as
    its weights) starts a run that fine-tunes the encoder. With learning rates of 1e-12 that run keeps the
    frozen run's weights, so both tag alike; it reads the frozen run's split; an init run with another
    model section, or none, is refused by name."""
    frozen = tiny_config(tmp_path, tiny_encoder_handle, "bert_crf", epochs=1)
    frozen_tagger = give_run_random_scores(train(frozen, verbose=False))
    tiny = 1e-12
    fine_tuned = dataclasses.replace(
        frozen, run_name="lp_ft", encoder=dataclasses.replace(frozen.encoder, trainable=True),
        training=dataclasses.replace(frozen.training, init_run=frozen.run_name, learning_rate=tiny,
                                     encoder_learning_rate=tiny))
    run_dir = train(fine_tuned, verbose=False)
    assert (run_dir / "split.json").read_text() == (frozen.run_dir() / "split.json").read_text()
    sentences = [["John", "lives", "in", "Paris", "."], ["The", "UN", "met", "on", "Monday", "in", "Geneva", "."]]
    expected = frozen_tagger.predict_words(sentences)
    for (labels, probabilities), (want_labels, want_probabilities) in zip(
            Tagger.from_run(str(run_dir)).predict_words(sentences), expected):
        np.testing.assert_array_equal(labels, want_labels)
        np.testing.assert_allclose(probabilities, want_probabilities, atol=1e-5)
    assert len({tuple(labels) for labels, _ in expected}) > 1 or len(set(expected[0][0])) > 1  # not all O

    other_model = dataclasses.replace(fine_tuned, run_name="refused",
                                      model=dataclasses.replace(fine_tuned.model, casing_dim=4))
    with pytest.raises(ConfigError, match="training.init_run 'bert_crf_io' was trained with a different 'model'"):
        train(other_model, verbose=False)
    missing = dataclasses.replace(fine_tuned, run_name="refused",
                                  training=dataclasses.replace(fine_tuned.training, init_run="nowhere"))
    with pytest.raises(ConfigError, match="training.init_run: run 'nowhere' not found"):
        train(missing, verbose=False)


def test_logit_adjustment_is_tau_log_of_the_labelled_words_label_distribution(tmp_path, tiny_encoder_handle):
    from types import SimpleNamespace
    from ner.experiment import _score_offset

    labelled = SimpleNamespace(label_ids=np.array([[-1, 0, 0, 1, -1], [-1, 0, 2, -1, -1]]))  # O O x O z: 3/5, 1/5, 1/5
    data = SimpleNamespace(encoded={"labelled": labelled}.__getitem__, label_map=SimpleNamespace(num_labels=3))
    config = tiny_config(tmp_path, tiny_encoder_handle, "bert_ner")
    assert _score_offset(config, data) is None  # τ = 0: the plain loss
    config = dataclasses.replace(config, training=dataclasses.replace(config.training, logit_adjustment=0.5))
    np.testing.assert_allclose(_score_offset(config, data), 0.5 * np.log([0.6, 0.2, 0.2]), rtol=1e-6)
