"""Seed 001's original, leaky protocol (`split.protocol: seed001`) and its KL switches: the draws overlap
across passes as the seed's reshuffled take/skip pipeline does (the default protocol's parts never do),
sentences of >= 48 words are counted and skipped, and each KL switch changes the loss as specified."""
import csv
import dataclasses
import json
import math

import numpy as np
import pytest
import tensorflow as tf

import ner  # noqa: F401
from examples.reproduce_seed001 import SEED001_KL, results_name, run_overrides
from examples.reproduce_seed001 import main as reproduce_main
from ner.config import CONFIG_DIR, SemiSupervisedConfig, build_dataclass, load_config
from ner.data import ModelInputs, model_for, prepare_data
from ner.errors import ConfigError
from ner.evaluation import evaluate
from ner.experiment import train
from ner.losses import ConfidenceKL, DataDistributionKL, KLOptions, kl_mask, unlabelled_loss
from ner.readers import Sentence
from ner.seed001_protocol import MAX_WORDS, SEED001_PRIOR, Seed001Draws, buffer_shuffle, seed001_prior
from tests.helpers import tiny_config

# ----------------------------------------------------------------------------------------------------
# Data: a corpus whose sentences can be told apart by their word pieces

NUM_SHORT = 60  # short sentences, ids 1..60; then two long ones (48 and 60 words) and one of 47 words
LONG_IDS = (61, 62)


def write_numbered_gmb(path) -> None:
    """Sentence n is "john in london <n>" (so its word pieces name it), plus sentences of 48 and 60 words
    (skipped by seed 001's protocol) and one of 47 (kept)."""
    sentences = [(["john", "in", "london", str(n)], ["B-per", "O", "B-geo", "O"]) for n in range(1, NUM_SHORT + 1)]
    sentences += [(["the"] * length, ["O"] * length) for length in (MAX_WORDS, 60, MAX_WORDS - 1)]
    with open(path, "w", newline="", encoding="latin-1") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Sentence #", "Word", "POS", "Tag"])
        for number, (words, tags) in enumerate(sentences, start=1):
            for position, (word, tag) in enumerate(zip(words, tags)):
                writer.writerow([f"Sentence: {number}" if position == 0 else "", word, "NN", tag])


def numbered_config(tmp_path, handle, protocol: str, model_type: str = "ner_baseline"):
    """`tiny_config` on the numbered corpus: batches of 4, 12 test (3 batches) and 8 labelled (2 batches)."""
    config = tiny_config(tmp_path, handle, model_type, epochs=2)
    write_numbered_gmb(config.data.gmb_path)
    return dataclasses.replace(
        config, split=dataclasses.replace(config.split, protocol=protocol, test_size=12, labelled_size=8),
        training=dataclasses.replace(config.training, batch_size=4))


def sentences_of(dataset, data) -> list:
    """The sentence ids of each batch of one pass over `dataset`, told by their word pieces."""
    encoded = data.encoded_all
    by_pieces = {tuple(row[row != 0]): int(i) for row, i in zip(encoded.input_word_ids, encoded.sentence_ids)}
    return [[by_pieces[tuple(row[row != 0])] for row in features["input_word_ids"].numpy()]
            for features, _ in dataset]


def flat(batches) -> list:
    return [i for batch in batches for i in batch]


@pytest.fixture
def seed001_inputs(tmp_path, tiny_encoder_handle):
    config = numbered_config(tmp_path, tiny_encoder_handle, "seed001")
    data = prepare_data(config, verbose=False)
    return ModelInputs(config, data, model_for(config, data), verbose=False)


def test_sentences_of_48_words_or_more_are_counted_and_skipped(tmp_path, tiny_encoder_handle, capsys):
    config = numbered_config(tmp_path, tiny_encoder_handle, "seed001")
    data = prepare_data(config, verbose=True)
    assert data.draws.skipped == 2 and data.draws.sentence_ids == tuple(range(1, NUM_SHORT + 1)) + (63,)
    assert "2 sentences of >= 48 words skipped, 61 kept" in capsys.readouterr().out
    parts = data.split.parts()
    assert not set(LONG_IDS) & set(flat(parts.values()))
    # the evaluation draw: one iteration's parts, disjoint; 61 kept = 15 whole batches of 4 (one dropped)
    assert [len(parts[p]) for p in ("test", "labelled", "validation", "unlabelled")] == [12, 8, 0, 40]
    leak_free = prepare_data(numbered_config(tmp_path, tiny_encoder_handle, "leak_free"), verbose=False)
    assert leak_free.draws is None and set(LONG_IDS) <= set(leak_free.split.unlabelled_ids + leak_free.split.test_ids
                                                              + leak_free.split.labelled_ids
                                                              + leak_free.split.validation_ids)


def test_seed001_parts_are_redrawn_every_pass_and_overlap(seed001_inputs):
    inputs, data = seed001_inputs, seed001_inputs.data
    epoch = tf.Variable(0, dtype=tf.int64)
    labelled, monitor = inputs.dataset("labelled", shuffle=True, epoch=epoch), inputs.monitor_dataset(epoch)
    labelled_sets, test_sets = [], []
    for key in range(4):
        epoch.assign(key)
        batches = sentences_of(labelled, data)
        assert [len(b) for b in batches] == [4, 4] and len(set(flat(batches))) == 8
        labelled_sets.append(set(flat(batches)))
        test_sets.append(set(flat(sentences_of(monitor, data))))
        assert len(test_sets[-1]) == 12
    assert len({frozenset(s) for s in labelled_sets}) == 4 and len({frozenset(s) for s in test_sets}) == 4
    # the model trains on sentences that later passes evaluate on, and on the run's final test draw
    assert any(labelled_sets[a] & test_sets[b] for a in range(4) for b in range(4) if a != b)
    assert set().union(*labelled_sets) & set(data.split.test_ids)
    assert not set(LONG_IDS) & set().union(*labelled_sets, *test_sets)
    epoch.assign(2)  # keyed by the epoch: a resumed run reads the same draw
    assert set(flat(sentences_of(labelled, data))) == labelled_sets[2]
    # the KL loops' `.take(1)`: every step reads the first batch of a fresh draw
    steps = [flat(sentences_of(inputs.step_dataset(part, pairs=3).repeat().take(3), data))
             for part in ("labelled", "unlabelled")]
    assert [len(s) for s in steps] == [12, 12] and len(set(steps[0])) > 4 and len(set(steps[1])) > 4


def test_leak_free_parts_never_overlap(tmp_path, tiny_encoder_handle):
    config = numbered_config(tmp_path, tiny_encoder_handle, "leak_free")
    data = prepare_data(config, verbose=False)
    inputs = ModelInputs(config, data, model_for(config, data), verbose=False)
    split = data.split
    epoch = tf.Variable(0, dtype=tf.int64)
    labelled = inputs.dataset("labelled", shuffle=True, epoch=epoch)
    for key in range(3):
        epoch.assign(key)
        assert sorted(flat(sentences_of(labelled, data))) == sorted(split.labelled_ids)
        assert sorted(flat(sentences_of(inputs.monitor_dataset(epoch), data))) == sorted(split.validation_ids)
    steps = flat(sentences_of(inputs.step_dataset("labelled", pairs=3).repeat().take(6), data))
    assert set(steps) == set(split.labelled_ids)
    unlabelled = flat(sentences_of(inputs.step_dataset("unlabelled", pairs=3).repeat().take(6), data))
    assert set(unlabelled) <= set(split.unlabelled_ids)
    assert not set(split.test_ids) & (set(steps) | set(unlabelled) | set(split.validation_ids))


def test_buffer_shuffle_is_tf_datas_buffer_algorithm():
    class Picks:  # an rng whose uniform draws are fixed by hand
        def random(self, count):
            return np.array([0.9, 0.1, 0.6, 0.0, 0.7][:count])

    # buffer [0 1]: pick slot 1 → 1, refill 2 → [0 2]; slot 0 → 0, refill 3 → [3 2]; slot 1 → 2, refill 4 →
    # [3 4]; slot 0 → 3, stream spent → [4]; slot 0 → 4
    assert buffer_shuffle(5, 2, Picks(), 5).tolist() == [1, 0, 2, 3, 4]
    order = buffer_shuffle(1000, 16, np.random.default_rng(0), 1000)
    assert sorted(order.tolist()) == list(range(1000))
    assert all(item < k + 16 for k, item in enumerate(order))  # output k comes from the first k + buffer items


def test_draws_come_from_the_front_of_the_corpus_and_are_keyed():
    sentences = {i: Sentence(i, ("w",) * (50 if i % 10 == 0 else 3), ("O",) * (50 if i % 10 == 0 else 3))
                 for i in range(1, 201)}
    draws = Seed001Draws.from_sentences(sentences, seed=3, batch_size=4, test_size=8, labelled_size=4, buffer_size=6)
    assert draws.skipped == 20 and len(draws.sentence_ids) == 180 and draws.usable == 180
    front = set(draws.sentence_ids[:8 + 4 + 5])  # 12 outputs from the first 12 + 6 - 1 kept sentences
    for key in range(5):
        assert set(draws.draw("test", key)) | set(draws.draw("labelled", key)) <= front
    assert set(draws.reachable("labelled")) == front
    assert draws.draw("unlabelled", 2, limit=4).tolist() == draws.draw("unlabelled", 2)[:4].tolist()
    assert draws.draw("test", 1).tolist() == draws.draw("test", 1).tolist()
    assert draws.draw("test", 1).tolist() != draws.draw("test", 2).tolist()
    with pytest.raises(ConfigError, match="multiples of training.batch_size"):
        Seed001Draws.from_sentences(sentences, seed=3, batch_size=4, test_size=10, labelled_size=4)
    with pytest.raises(ConfigError, match="keeps 180 sentences .* too few"):
        Seed001Draws.from_sentences(sentences, seed=3, batch_size=4, test_size=160, labelled_size=20)


# ----------------------------------------------------------------------------------------------------
# KL switches, on one row: [CLS] w1 w2 [SEP] [PAD], two classes

LABELS = np.array([[-1, 0, 1, -1, -1]], np.int32)
INPUT_MASK = np.array([[1, 1, 1, 1, 0]], np.int32)
PROBS = np.array([[[0.5, 0.5], [0.8, 0.2], [0.4, 0.6], [0.9, 0.1], [0.3, 0.7]]])
SEED = KLOptions(special_tokens=True, confidence_stop_gradient=False, confidence_reduction="sum")
# DEC's target on the two words: f = [1.2, 0.8]; q²/f = [0.64/1.2, 0.04/0.8] and [0.16/1.2, 0.36/0.8], each
# summing to 7/12, so p = [32/35, 3/35] and [8/35, 27/35]
WORD_KL = (32 / 35 * math.log(32 / 35 / 0.8) + 3 / 35 * math.log(3 / 35 / 0.2),
           8 / 35 * math.log(8 / 35 / 0.4) + 27 / 35 * math.log(27 / 35 / 0.6))  # ≈ 0.04946, 0.06596


def test_kl_mask_adds_cls_and_sep_only_with_special_tokens():
    assert kl_mask(LABELS, INPUT_MASK, special_tokens=False).numpy().tolist() == [[0, 1, 1, 0, 0]]
    assert kl_mask(LABELS, INPUT_MASK, special_tokens=True).numpy().tolist() == [[1, 1, 1, 1, 0]]
    pieces = np.array([[-1, 0, -1, 1, -1, -1]], np.int32)  # w1 has a continuation piece, which stays out
    assert kl_mask(pieces, np.array([[1, 1, 1, 1, 1, 0]]), True).numpy().tolist() == [[1, 1, 0, 1, 1, 0]]
    with pytest.raises(ValueError, match="need the batch's input_mask"):
        kl_mask(LABELS, None, special_tokens=True)


def test_data_distribution_kl_with_special_tokens():
    prior = [0.75, 0.25]
    words = DataDistributionKL(prior)(LABELS, PROBS, INPUT_MASK)  # mean q over w1, w2: [0.6, 0.4]
    assert float(words) == pytest.approx(0.75 * math.log(0.75 / 0.6) + 0.25 * math.log(0.25 / 0.4), rel=1e-5)
    special = DataDistributionKL(prior, SEED)(LABELS, PROBS, INPUT_MASK)  # over [CLS] w1 w2 [SEP]: [0.65, 0.35]
    assert float(special) == pytest.approx(0.75 * math.log(0.75 / 0.65) + 0.25 * math.log(0.25 / 0.35), rel=1e-5)


def test_confidence_kl_mean_or_sum():
    mean = ConfidenceKL()(LABELS, PROBS, INPUT_MASK)
    summed = ConfidenceKL(options=KLOptions(confidence_reduction="sum"))(LABELS, PROBS, INPUT_MASK)
    assert float(mean) == pytest.approx(sum(WORD_KL) / 2, rel=1e-5)
    assert float(summed) == pytest.approx(sum(WORD_KL), rel=1e-5)


def test_confidence_kl_with_special_tokens_treats_cls_and_sep_as_words():
    as_words = np.array([[0, 0, 1, 0, -1]], np.int32)
    options = KLOptions(special_tokens=True)
    assert float(ConfidenceKL(options=options)(LABELS, PROBS, INPUT_MASK)) == pytest.approx(
        float(ConfidenceKL()(as_words, PROBS)), rel=1e-6)
    assert float(ConfidenceKL(options=options)(LABELS, PROBS, INPUT_MASK)) != pytest.approx(
        float(ConfidenceKL()(LABELS, PROBS)), rel=1e-3)


def numpy_confidence_kl_sum(q: np.ndarray) -> float:
    """Σ over the two words of KL(p ‖ q), p = DEC's target of q [2, C] (differentiable: p moves with q)."""
    weight = q ** 2 / q.sum(axis=0)
    p = weight / weight.sum(axis=1, keepdims=True)
    return float(np.sum(p * np.log(p / q)))


def test_confidence_kl_stop_gradient_switch():
    q = tf.constant(PROBS)
    gradients = {}
    for stop in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(q)
            loss = ConfidenceKL(options=KLOptions(confidence_stop_gradient=stop, confidence_reduction="sum"))(
                LABELS, q, INPUT_MASK)
        assert float(loss) == pytest.approx(sum(WORD_KL), rel=1e-5)  # the value does not change
        gradients[stop] = tape.gradient(loss, q).numpy()[0]
    # held fixed: d/dq_ij of Σ_j p_ij (log p_ij - log q_ij) is -p_ij / q_ij at the words, 0 elsewhere
    held = np.zeros((5, 2))
    held[1], held[2] = [-(32 / 35) / 0.8, -(3 / 35) / 0.2], [-(8 / 35) / 0.4, -(27 / 35) / 0.6]
    np.testing.assert_allclose(gradients[True], held, rtol=1e-4, atol=1e-6)
    # through the target: the full derivative of the same formula, by central differences
    words, step, full = PROBS[0, 1:3].copy(), 1e-6, np.zeros((5, 2))
    for i in range(2):
        for j in range(2):
            up, down = words.copy(), words.copy()
            up[i, j] += step
            down[i, j] -= step
            full[1 + i, j] = (numpy_confidence_kl_sum(up) - numpy_confidence_kl_sum(down)) / (2 * step)
    np.testing.assert_allclose(gradients[False], full, rtol=1e-3, atol=1e-5)
    assert np.abs(gradients[False] - gradients[True]).max() > 0.1


def test_seed001_prior_in_label_order():
    labels = ["O", "geo", "gpe", "per", "org", "tim", "art", "nat", "eve"]
    prior = seed001_prior(labels)
    assert prior.tolist() == [0.8468, 0.0430, 0.0153, 0.0327, 0.0352, 0.0256, 0.0007, 0.0002, 0.0005]
    assert prior.sum() == pytest.approx(1.0)
    assert seed001_prior(labels[::-1]).tolist() == prior.tolist()[::-1]
    with pytest.raises(ConfigError, match="expected GMB with data.tag_scheme io"):
        seed001_prior(["O", "B-geo", "I-geo"])
    # the named sum passes its options to every loss
    loss = unlabelled_loss(["data_distribution", "confidence"], [1.0, 1.0], prior, SEED)
    assert [part.options for part in loss.losses] == [SEED, SEED]


# ----------------------------------------------------------------------------------------------------
# End to end, and the config


def test_seed001_runs_train_a_kl_stage_the_seeds_way_and_evaluate_on_a_test_draw(tmp_path, tiny_encoder_handle):
    """reproduce_seed001's path: BERT NER on cached features, then a KL stage on live ones ([CLS]/[SEP])."""
    supervised = numbered_config(tmp_path, tiny_encoder_handle, "seed001", model_type="bert_ner")
    assert supervised.training.feature_cache
    run_dir = train(supervised, verbose=False)
    history = (run_dir / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "val_accuracy" in history[0]  # each epoch evaluated on a "test" draw
    stage = {"init_run": supervised.run_name, "losses": ["data_distribution", "confidence"], "loss_weights": [1, 1],
             "pairs": 4, "evaluate_every": 2, "kl_special_tokens": True, "confidence_stop_gradient": False,
             "confidence_reduction": "sum", "prior_source": "seed001"}
    kl_dir = train(dataclasses.replace(
        supervised, run_name="kl", training=dataclasses.replace(supervised.training, feature_cache=False),
        semi_supervised=build_dataclass(SemiSupervisedConfig, stage, source="test")), verbose=False)
    assert json.loads((kl_dir / "prior.json").read_text()) == SEED001_PRIOR
    assert [line.split(",")[0] for line in (kl_dir / "history.csv").read_text().splitlines()[1:]] == ["2", "4"]
    evaluation = evaluate(str(kl_dir), verbose=False)
    assert evaluation.report.num_sentences == 12
    assert evaluation.split.test_ids == prepare_data(supervised, verbose=False).split.test_ids


def test_reproduce_script_sets_the_seeds_kl_switches_under_its_protocol():
    assert results_name("leak_free") == "reproduction"
    assert results_name("seed001") == "reproduction_seed001_protocol"
    assert run_overrides("bert_ner", 2, ["a=b"]) == ["run_name=bert_ner_seed2", "split.seed=2", "training.seed=2",
                                                     "a=b"]
    kl = run_overrides("bert_confidence_kl", 2, [], "seed001")
    assert kl[:5] == ["run_name=bert_confidence_kl_seed001protocol_seed2", "split.seed=2", "training.seed=2",
                      "split.protocol=seed001", "semi_supervised.init_run=bert_ner_seed001protocol_seed2"]
    assert kl[5:] == SEED001_KL
    # a stage's override reaches the stages only: on another model it would create a stage
    assert run_overrides("ner_baseline", 2, ["semi_supervised.evaluate_every=40", "a=b"])[-1] == "a=b"
    assert run_overrides("bert_both_kl", 2, ["semi_supervised.evaluate_every=40"])[-1] == \
        "semi_supervised.evaluate_every=40"
    config = load_config(CONFIG_DIR / "bert_confidence_kl.yaml", kl, environ={})
    stage = config.semi_supervised
    assert (stage.kl_special_tokens, stage.confidence_stop_gradient, stage.confidence_reduction,
            stage.prior_source, config.training.feature_cache) == (True, False, "sum", "seed001", False)


def test_reproduce_script_starts_self_training_from_bert_crf_and_only_under_the_leak_free_protocol(capsys):
    assert run_overrides("bert_crf_self_training", 3, []) == [
        "run_name=bert_crf_self_training_seed3", "split.seed=3", "training.seed=3",
        "semi_supervised.init_run=bert_crf_seed3"]
    assert run_overrides("bert_crf_self_training_control", 3, [])[-1] == "semi_supervised.init_run=bert_crf_seed3"
    with pytest.raises(SystemExit):
        reproduce_main(["--protocol", "seed001", "--models", "bert_ner", "bert_crf_self_training"])
    assert "--models bert_crf_self_training: these run under --protocol leak_free only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        reproduce_main(["--protocol", "seed001", "--models", "bert_crf_finetune"])
    assert "--models bert_crf_finetune: these run under --protocol leak_free only" in capsys.readouterr().err


def test_reproduce_script_starts_lp_ft_from_the_seeds_bert_crf_run_through_training_init_run():
    """LP-FT is supervised: its init run is `training.init_run`, and stage overrides stay off it."""
    assert run_overrides("bert_crf_lpft", 2, ["semi_supervised.pairs=8", "training.epochs=3"]) == [
        "run_name=bert_crf_lpft_seed2", "split.seed=2", "training.seed=2", "training.init_run=bert_crf_seed2",
        "training.epochs=3"]


def test_defaults_are_the_leak_free_protocol_and_the_packages_kl():
    config = load_config(CONFIG_DIR / "bert_data_dist_kl.yaml", environ={})
    stage = config.semi_supervised
    assert config.split.protocol == "leak_free"
    assert (stage.kl_special_tokens, stage.confidence_stop_gradient, stage.confidence_reduction,
            stage.prior_source) == (False, True, "mean", "labelled")


@pytest.mark.parametrize("overrides, message", [
    (["split.protocol=seed01"], "key 'split.protocol' must be one of ('leak_free', 'seed001'), got 'seed01'"),
    (["split.protocol=seed001", "split.test_size=9000"],
     "key 'split.test_size' must be a multiple of training.batch_size (128) under protocol seed001"),
    (["split.protocol=seed001", "training.batch_size=100"],
     "key 'split.labelled_size' must be a multiple of training.batch_size (100)"),
    (["split.protocol=seed001", "split.fractions=[0.1, 0.8, 0.1]"], "key 'split.fractions' must be null under"),
    (["split.protocol=seed001", "split.labelled_selection=fewer_outside"], "key 'split.labelled_selection' must be"),
    (["split.protocol=seed001", "split.added_labelled_file=ids.txt"], "key 'split.added_labelled_file' must be null"),
    (["split.protocol=seed001", "split.mention_replacement_copies=1"],
     "key 'split.mention_replacement_copies' must be 0 under protocol seed001"),
    (["split.protocol=seed001", "training.group_by_length=true"], "key 'training.group_by_length' must be false"),
    (["semi_supervised.prior_source=corpus"], "key 'semi_supervised.prior_source' must be one of ('labelled', "),
    (["semi_supervised.prior_source=seed001", "semi_supervised.prior=[0.5, 0.5]"],
     "key 'semi_supervised.prior_source' must be labelled (the default) when a prior is given"),
    (["semi_supervised.prior_source=seed001", "data.tag_scheme=bio"],
     "key 'semi_supervised.prior_source' must be labelled unless data.tag_scheme is io"),
    (["semi_supervised.confidence_reduction=max"], "key 'semi_supervised.confidence_reduction' must be one of"),
    (["semi_supervised.confidence_stop_gradient=maybe"],
     "key 'semi_supervised.confidence_stop_gradient' must be true or false"),
    (["semi_supervised.kl_special_tokens=true"],
     "key 'semi_supervised.kl_special_tokens' must be false with cached features"),
])
def test_bad_seed001_keys_are_named(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(CONFIG_DIR / "bert_data_dist_kl.yaml", overrides, environ={})
    assert message in str(error.value)


def test_seed001_rejects_self_training_and_accepts_live_special_tokens():
    with pytest.raises(ConfigError, match="key 'semi_supervised.self_training' must be null under split.protocol"):
        load_config(CONFIG_DIR / "bert_crf_self_training.yaml", ["split.protocol=seed001"], environ={})
    config = load_config(CONFIG_DIR / "bert_data_dist_kl.yaml", ["semi_supervised.kl_special_tokens=true",
                                                                 "training.feature_cache=false"], environ={})
    assert config.semi_supervised.kl_special_tokens
    baseline = load_config(CONFIG_DIR / "ner_baseline.yaml", ["split.protocol=seed001"], environ={})
    assert baseline.split.protocol == "seed001"
