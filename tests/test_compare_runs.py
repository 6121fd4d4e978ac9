"""Paired per-seed differences between two folders of runs, against hand-computed values."""
import csv

import pytest

from examples.compare_runs import compare, main

LABELS = ("O", "geo", "gpe", "per", "org", "tim", "art", "nat", "eve")


def run(model, seed, value):
    return {"model": model, "seed": seed, "accuracy": value, "accuracy_without_o": value, "mean_f1": value,
            "entity_f1": value}


def test_differences_pair_the_seeds_both_sides_ran():
    first = [run("bert_crf", 1, 0.80), run("bert_crf", 2, 0.82)]
    second = [run("bert_crf", 1, 0.79), run("bert_crf", 2, 0.80), run("bert_crf", 3, 0.50)]
    found = {r["metric"]: r for r in compare(first, second, ["bert_crf", "bert_ner"])}
    assert set(found) == {"accuracy", "accuracy_without_o", "mean_f1", "entity_f1"}  # no per-class rows given
    entity = found["entity_f1"]
    assert (entity["first"], entity["second"]) == pytest.approx((0.81, 0.795))  # seed 3 is not paired
    assert (entity["difference"], entity["std"], entity["seeds"]) == pytest.approx((0.015, 0.0070710678, 2))
    assert found["accuracy"]["difference"] == pytest.approx(1.5)  # in %


def write_runs(folder, rows, per_class):
    folder.mkdir()
    for name, records in (("runs.csv", rows), ("per_class_f1.csv", per_class)):
        with open(folder / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)


def test_main_writes_the_rare_class_share_and_names_a_missing_folder(tmp_path, capsys):
    rare_found = {"model": "bert_ner", "seed": 1, **dict.fromkeys(LABELS, 0.9), "nat": 0.45}
    none_found = {"model": "bert_ner", "seed": 1, **dict.fromkeys(LABELS, 0.9), "nat": 0.0}
    write_runs(tmp_path / "a", [run("bert_ner", 1, 0.6)], [rare_found])
    write_runs(tmp_path / "b", [run("bert_ner", 1, 0.55)], [none_found])
    main([str(tmp_path / "a"), str(tmp_path / "b"), "--output", str(tmp_path / "out.md")])
    text = (tmp_path / "out.md").read_text(encoding="utf-8")
    assert "| mean_f1: art, nat, eve | 0.2500 | 0.2000 | +0.0500 ± 0.0000 (1) |" in text  # (0.9 + 0.45 + 0.9) / 9
    assert "| entity_f1 | 0.6000 | 0.5500 | +0.0500 ± 0.0000 (1) |" in text
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "a"), str(tmp_path / "missing")])
    assert exit_info.value.code == 2 and str(tmp_path / "missing" / "runs.csv") in capsys.readouterr().err
