"""The simulated active-learning study (examples/active_learning.py) on a 60-sentence corpus and the tiny
encoder: what each round selects and trains on, the rows it reuses, resuming, and a bad ids file."""
import csv
import shutil
from types import SimpleNamespace

import numpy as np
import pytest

import ner  # noqa: F401
from examples import active_learning
from examples.common import METRICS
from ner.preprocessor import DataSplit, make_split
from tests.helpers import PATTERNS, PNG_MAGIC, write_gmb_csv

SEED = 1
# 60 sentences: 12 test, the first 8 labelled, 8 validation, 32 unlabelled; two rounds of 8.
START_SPLIT = make_split(range(1, 61), test_size=12, labelled_size=8, validation_size=8, seed=SEED)
# The learning curve's rows the study copies: made-up numbers, so a copy is recognisable.
CURVE = [{"method": method, "labelled": labelled, "seed": SEED, "accuracy": 0.5, "accuracy_without_o": 0.25,
          "mean_f1": 0.125, "entity_f1": 0.01 * labelled + (0.001 if method == "feature_crf" else 0.0),
          "seconds": 7.0, "commit": "curve"} for method in ("bert_crf", "feature_crf") for labelled in (8, 16, 24)]


def words(sentence_id: int) -> int:
    """Sentence N of `write_gmb_csv` is `PATTERNS[N % 4]`."""
    return len(PATTERNS[sentence_id % len(PATTERNS)][0])


def study_arguments(tmp_path, output) -> list:
    return ["--seeds", str(SEED), "--start", "8", "--step", "8", "--max-labelled", "24", "--strategies", "mnlp",
            "random", "--output", str(output),
            "--learning-curve", str(tmp_path / "curve.csv"),
            *(f"--set={o}" for o in ("data.max_seq_length=16", "split.test_size=12", "split.validation_size=8",
                                     "model.head.hidden_units=[32]", "model.head.latent_dim=8", "training.epochs=1",
                                     "training.batch_size=8", f"paths.saved_models_dir={tmp_path / 'saved_models'}",
                                     f"paths.feature_cache_dir={tmp_path / 'cache'}"))]


def read_rows(output) -> list:
    with open(output / "active_learning" / "runs.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_ids(path) -> list:
    return [int(line) for line in path.read_text(encoding="utf-8").split()]


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_encoder_handle):
    """The study run once: (tmp dir, output dir), under the environment the runs need."""
    tmp_path = tmp_path_factory.mktemp("active_learning")
    write_gmb_csv(tmp_path / "gmb.csv")
    with open(tmp_path / "curve.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CURVE[0]))
        writer.writeheader()
        writer.writerows(CURVE)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NER_GMB_PATH", str(tmp_path / "gmb.csv"))
        patch.setenv("NER_ENCODER_HANDLE", tiny_encoder_handle)
        active_learning.main(study_arguments(tmp_path, tmp_path / "results"))
        yield tmp_path, tmp_path / "results"


@pytest.fixture
def environment(study, monkeypatch, tiny_encoder_handle):
    """The study's environment for a test that runs it again on a copy of its output."""
    tmp_path, output = study
    monkeypatch.setenv("NER_GMB_PATH", str(tmp_path / "gmb.csv"))
    monkeypatch.setenv("NER_ENCODER_HANDLE", tiny_encoder_handle)
    return tmp_path, output


def test_each_round_adds_step_unlabelled_sentences_and_trains_on_exactly_them(study):
    tmp_path, output = study
    first = read_ids(output / "active_learning" / "ids" / "mnlp_seed1_n16.txt")
    second = read_ids(output / "active_learning" / "ids" / "mnlp_seed1_n24.txt")
    assert len(first) == 8 and len(second) == 16 and second[:8] == first  # the set grows by step
    assert set(second) <= set(START_SPLIT.unlabelled_ids)  # never labelled, validation or test
    for labelled, added in ((16, first), (24, second)):
        split = DataSplit.from_json(tmp_path / "saved_models" / f"al_mnlp_n{labelled}_seed1" / "split.json")
        assert split.labelled_ids == START_SPLIT.labelled_ids + tuple(added)
        assert (split.test_ids, split.validation_ids) == (START_SPLIT.test_ids, START_SPLIT.validation_ids)
        assert split.unlabelled_ids == tuple(i for i in START_SPLIT.unlabelled_ids if i not in set(added))


def test_bald_picks_from_a_seeded_sample_of_the_unlabelled_part_of_its_run(environment):
    tmp_path, output = environment
    study = active_learning.Study(output, start=8, step=8, pool_size=10, mc_samples=3, min_steps=0, extra=(),
                                  fresh=False, known={})
    run_dir = tmp_path / "saved_models" / "al_mnlp_n16_seed1"
    split = DataSplit.from_json(run_dir / "split.json")
    pool = np.random.default_rng([SEED, 24]).choice(split.unlabelled_ids, 10, replace=False)
    chosen = active_learning.select_from_pool(run_dir, "bald", study, SEED, 24)
    assert len(set(chosen)) == 8 and set(chosen) <= set(pool.tolist()) <= set(split.unlabelled_ids)


def test_rows_count_sentences_and_words_and_copy_the_learning_curves_rows(study):
    _, output = study
    rows = {(row["strategy"], int(row["labelled"])): row for row in read_rows(output)}
    assert sorted(rows) == sorted((s, n) for s in ("feature_crf", "random", "mnlp") for n in (8, 16, 24))
    added = read_ids(output / "active_learning" / "ids" / "mnlp_seed1_n24.txt")
    assert int(rows["mnlp", 24]["words"]) == sum(words(i) for i in START_SPLIT.labelled_ids + tuple(added))
    assert rows["mnlp", 24]["round"] == "2" and rows["mnlp", 24]["commit"] != "curve"
    assert rows["mnlp", 24]["ids_file"] == "active_learning/ids/mnlp_seed1_n24.txt"
    # the strategy starts from the learning curve's run on the first 8
    assert float(rows["mnlp", 8]["entity_f1"]) == 0.08 and rows["mnlp", 8]["run"] == "lc_bert_crf_n8_seed1"
    first_24 = make_split(range(1, 61), test_size=12, labelled_size=24, validation_size=8, seed=SEED).labelled_ids
    assert first_24[:8] == START_SPLIT.labelled_ids  # a larger random labelled part extends the smaller
    for strategy, f1 in (("random", 0.24), ("feature_crf", 0.241)):
        assert float(rows[strategy, 24]["entity_f1"]) == f1 and rows[strategy, 24]["commit"] == "curve"
        assert int(rows[strategy, 24]["words"]) == sum(words(i) for i in first_24)
    markdown = (output / "active_learning.md").read_text(encoding="utf-8")
    assert "| labelled | reference: feature CRF | random | MNLP |" in markdown
    assert "| 24 | 0.2410 ± 0.0000 | 0.2400 ± 0.0000 |" in markdown
    assert (output / "active_learning.png").read_bytes()[:8] == PNG_MAGIC
    assert (output / "active_learning.csv").is_file()


def test_resuming_skips_finished_rounds_and_trains_an_unfinished_one_on_its_ids(environment, monkeypatch):
    tmp_path, output = environment
    copy = tmp_path / "resumed"
    shutil.copytree(output, copy)
    trained = []

    def train_and_evaluate(config_file, overrides):  # records the run instead of training it
        trained.append(overrides)
        return SimpleNamespace(report=SimpleNamespace(summary_row=lambda: {m: 0.5 for m in METRICS})), 1.0

    monkeypatch.setattr(active_learning, "train_and_evaluate", train_and_evaluate)
    monkeypatch.setattr(active_learning, "select_from_pool", lambda *args: pytest.fail("selected again"))
    active_learning.main(study_arguments(tmp_path, copy))
    assert trained == [] and read_rows(copy) == read_rows(output)
    rows = read_rows(copy)
    with open(copy / "active_learning" / "runs.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(row for row in rows if (row["strategy"], row["labelled"]) != ("mnlp", "24"))
    active_learning.main(study_arguments(tmp_path, copy))
    [overrides] = trained
    assert "run_name=al_mnlp_n24_seed1" in overrides
    assert f"split.added_labelled_file={copy / 'active_learning' / 'ids' / 'mnlp_seed1_n24.txt'}" in overrides
    resumed = read_rows(copy)
    assert len(resumed) == 9 and resumed[-1]["strategy"] == "mnlp" and resumed[-1]["entity_f1"] == "0.5"


def test_a_bad_ids_file_is_one_clear_error_naming_its_line(environment, capsys):
    tmp_path, output = environment
    copy = tmp_path / "damaged"
    shutil.copytree(output, copy)
    rows = read_rows(copy)
    with open(copy / "active_learning" / "runs.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(row for row in rows if (row["strategy"], row["labelled"]) != ("mnlp", "24"))
    ids = copy / "active_learning" / "ids" / "mnlp_seed1_n24.txt"
    ids.write_text(f"{START_SPLIT.unlabelled_ids[0]}\n{START_SPLIT.test_ids[0]}\n", encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:
        active_learning.main(study_arguments(tmp_path, copy))
    assert stopped.value.code == 2
    assert (f"mnlp_seed1_n24.txt:2: sentence id {START_SPLIT.test_ids[0]} is in the split's test part; expected ids "
            "of unlabelled sentences") in capsys.readouterr().err


def test_option_checks(capsys):
    for arguments, message in ((["--max-labelled", "600"], "--max-labelled must be --start (256) plus a multiple"),
                               (["--pool-size", "100"], "--pool-size must be at least --step (256), got 100"),
                               (["--strategies", "margin"], "invalid choice: 'margin'")):
        with pytest.raises(SystemExit):
            active_learning.main(arguments)
        assert message in capsys.readouterr().err
