"""The gap decomposition against hand-computed sums of per-seed differences."""
import pytest

from examples.decompose_seed001_gap import OTHER_SHARE, RARE_SHARE, decompose, main, markdown, with_class_shares
from examples.reproduce_seed001 import MODELS, SEED001_PER_CLASS_F1


def runs(model, values):
    """Runs of `model`, seed → value of every metric."""
    return [{"model": model, "seed": seed, "accuracy": value, "accuracy_without_o": value, "mean_f1": value}
            for seed, value in values.items()]


LEAK_FREE = runs("bert_ner", {1: 0.95, 2: 0.96})
MPNET = runs("bert_ner", {1: 0.97})
SEED001 = (runs("bert_ner", {1: 0.955, 2: 0.965}) + runs("bert_ce_control", {1: 0.96, 2: 0.97})
           + runs("bert_confidence_kl", {1: 0.97, 2: 0.975}))


def steps(records, row, metric):
    return {r["step"]: (r["mean"], r["std"], r["seeds"]) for r in records if (r["row"], r["metric"]) == (row, metric)}


def test_each_step_is_a_paired_difference_and_the_residual_is_what_seed_001_adds():
    found = steps(decompose(LEAK_FREE, SEED001, MPNET), "+ confidence KL", "accuracy")
    assert found["leak-free MiniLM BERT NER"] == pytest.approx((95.5, 0.70710678, 2))
    assert found["encoder: MPNet − MiniLM"] == pytest.approx((2.0, 0.0, 1))  # seed 1 only
    assert found["protocol: seed 001's − leak-free"] == pytest.approx((0.5, 0.0, 2))
    assert found["extra labelled batches: control − BERT NER"] == pytest.approx((0.5, 0.0, 2))
    assert found["KL terms: stage − control"] == pytest.approx((0.75, 0.35355339, 2))  # +1.0 and +0.5
    assert found["sum"][0] == pytest.approx(99.25)
    assert found["seed 001 reported"][0] == 96.05
    assert found["unexplained: seed 001 − sum"][0] == pytest.approx(96.05 - 99.25)
    mean_f1 = steps(decompose(LEAK_FREE, SEED001, MPNET), "+ confidence KL", "mean_f1")
    assert mean_f1["sum"][0] == pytest.approx(0.955 + 0.02 + 0.005 + 0.005 + 0.0075)  # no % scaling


def test_a_row_without_its_stage_runs_has_no_sum():
    found = steps(decompose(LEAK_FREE, SEED001, MPNET), "+ data-distribution KL", "accuracy")
    assert "KL terms: stage − control" not in found and "sum" not in found
    assert "extra labelled batches: control − BERT NER" in found


def test_markdown_signs_the_differences_only():
    text = markdown(decompose(LEAK_FREE, SEED001, MPNET))
    assert "| leak-free MiniLM BERT NER | 95.50 ± 0.71 (2) | 95.50 ± 0.71 (2) | 0.9550 ± 0.0071 (2) |" in text
    assert "| KL terms: stage − control | +0.75 ± 0.35 (2) |" in text
    assert "| sum | 99.25 | 99.25 | 0.9925 |" in text
    assert "| unexplained: seed 001 − sum | -3.20 |" in text


def per_class(model, seed, rare, other):
    """A per-class row: art, nat, eve at `rare` each, the other six classes at `other` each."""
    labels = ("O", "geo", "gpe", "per", "org", "tim")
    return {"model": model, "seed": seed, **dict.fromkeys(labels, other), **dict.fromkeys(("art", "nat", "eve"), rare)}


def test_mean_f1_splits_into_the_rare_and_the_other_classes_shares():
    runs = with_class_shares(LEAK_FREE, [per_class("bert_ner", 1, 0.3, 0.9)])  # seed 2 has no per-class row
    assert runs[0][RARE_SHARE] == pytest.approx(0.9 / 9) and runs[0][OTHER_SHARE] == pytest.approx(5.4 / 9)
    assert RARE_SHARE not in runs[1]
    seed001 = with_class_shares(SEED001[:2], [per_class("bert_ner", 1, 0.0, 0.9)])
    mpnet = with_class_shares(MPNET, [per_class("bert_ner", 1, 0.6, 0.9)])
    found = steps(decompose(runs, seed001, mpnet), "BERT NER", RARE_SHARE)
    assert found["leak-free MiniLM BERT NER"] == pytest.approx((0.1, 0.0, 1))
    assert found["encoder: MPNet − MiniLM"] == pytest.approx((0.1, 0.0, 1))
    assert found["protocol: seed 001's − leak-free"] == pytest.approx((-0.1, 0.0, 1))
    seed001_rare = (0.0 + 0.178 + 0.243) / 9  # seed 001's art, nat and eve F1 for BERT NER
    assert found["seed 001 reported"][0] == pytest.approx(seed001_rare)
    assert found["unexplained: seed 001 − sum"][0] == pytest.approx(seed001_rare - 0.1)
    other = steps(decompose(runs, seed001, mpnet), "BERT NER", OTHER_SHARE)
    assert other["seed 001 reported"][0] == pytest.approx((0.985 + 0.827 + 0.864 + 0.878 + 0.638 + 0.876) / 9)
    assert other["sum"][0] == pytest.approx(5.4 / 9)


@pytest.mark.parametrize("stage", SEED001_PER_CLASS_F1)
def test_seed_001s_per_class_f1_averages_to_its_reported_mean_f1(stage):
    assert sum(SEED001_PER_CLASS_F1[stage].values()) / 9 == pytest.approx(MODELS[stage][2][2], abs=5e-5)


def test_missing_runs_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--results", str(tmp_path)])
    assert exit_info.value.code == 2
    assert f"{tmp_path / 'reproduction' / 'runs.csv'}" in capsys.readouterr().err


def test_the_baseline_row_has_the_protocol_step_alone():
    leak_free = LEAK_FREE + runs("ner_baseline", {1: 0.93, 2: 0.94})
    seed001 = SEED001 + runs("ner_baseline", {1: 0.935, 2: 0.94})
    found = steps(decompose(leak_free, seed001, MPNET), "NER baseline", "accuracy")
    assert list(found) == ["leak-free NER baseline", "protocol: seed 001's − leak-free", "sum", "seed 001 reported",
                           "unexplained: seed 001 − sum"]
    assert found["protocol: seed 001's − leak-free"] == pytest.approx((0.25, 0.35355339, 2))  # +0.5 and 0.0
    assert found["unexplained: seed 001 − sum"][0] == pytest.approx(93.65 - 93.75)


def test_seed_001s_head_and_input_are_steps_where_their_runs_exist():
    head = runs("bert_ner", {1: 0.957, 2: 0.968})
    head_input = runs("bert_ner", {1: 0.950})
    found = steps(decompose(LEAK_FREE, SEED001, MPNET, head, head_input), "+ confidence KL", "accuracy")
    assert list(found)[3:5] == ["seed 001's head: last layer, dropout 0", "seed 001's input: one piece per word"]
    assert found["seed 001's head: last layer, dropout 0"] == pytest.approx((0.25, 0.07071068, 2))  # +0.2, +0.3
    assert found["seed 001's input: one piece per word"] == pytest.approx((-0.7, 0.0, 1))
    assert found["sum"][0] == pytest.approx(99.25 + 0.25 - 0.7)
    baseline = steps(decompose(LEAK_FREE, SEED001, MPNET, head, head_input), "NER baseline", "accuracy")
    assert not any(step.startswith("seed 001's") for step in baseline)  # no baseline runs with its head
    baseline_runs = runs("ner_baseline", {1: 0.93})
    baseline = steps(decompose(LEAK_FREE, SEED001 + runs("ner_baseline", {1: 0.935}), MPNET,
                               head + baseline_runs, head_input), "NER baseline", "accuracy")
    assert baseline["seed 001's head: dropout 0"] == pytest.approx((-0.5, 0.0, 1))
    assert "seed 001's input: one piece per word" not in baseline
