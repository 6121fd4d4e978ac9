"""The `ner` command: train, evaluate, predict and export on a tiny run, and one-line errors."""
import contextlib
import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ner  # noqa: F401
from ner.cli import main, read_texts
from ner.config import save_config
from ner.errors import DataError
from ner.readers import read_conll
from tests.helpers import tiny_config

REPO = Path(__file__).resolve().parents[1]
TEXT = "John Smith said the president in London today"


def run_cli(argv):
    """`ner argv...` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
            status = 0
        except SystemExit as exited:
            status = exited.code
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_encoder_handle):
    """`ner train` on the tiny GMB data: (config, its YAML file, the run directory, what train printed)."""
    directory = tmp_path_factory.mktemp("cli")
    config = tiny_config(directory, tiny_encoder_handle, "ner_baseline", "bio")
    config_file = directory / "tiny.yaml"
    save_config(config, config_file)
    status, out, err = run_cli(["train", "--config", str(config_file)])
    assert status == 0, err
    return config, config_file, config.run_dir(), out


def test_train_then_resume(trained):
    config, config_file, run_dir, out = trained
    assert f"[train] run '{config.run_name}' saved in {run_dir}" in out
    assert f"ner evaluate --run {run_dir}" in out
    assert (run_dir / "weights").is_dir() and (run_dir / "logs").is_dir()
    status, out, _ = run_cli(["train", "--config", str(config_file), "--resume"])  # all epochs done
    assert status == 0 and "Epoch" not in out


def test_evaluate_writes_results_shared_with_the_example(trained):
    config, _, run_dir, _ = trained
    status, out, _ = run_cli(["evaluate", "--run", str(run_dir)])
    assert status == 0 and f"\n[evaluate] {config.run_name}: accuracy " in out
    results = config.results_dir()
    assert {"metrics.csv", "report.md", "config.yaml", "split.json", "latent_pca_true.png"} <= {
        p.name for p in results.iterdir()}
    assert f"Produced by `ner evaluate --run {run_dir}`" in (results / "report.md").read_text()
    metrics = (results / "metrics.csv").read_text()

    from examples.example_evaluate_model import main as example_main

    with contextlib.redirect_stdout(io.StringIO()):
        example_main(["--run", str(run_dir)])
    assert "Produced by `python -m examples.example_evaluate_model --run" in (results / "report.md").read_text()
    assert (results / "metrics.csv").read_text() == metrics


def test_predict_formats(trained, tmp_path):
    _, _, run_dir, _ = trained
    status, out, err = run_cli(["predict", "--run", str(run_dir), "--format", "json", TEXT, ""])
    assert status == 0 and err == ""
    first, second = (json.loads(line) for line in out.splitlines())
    assert [(e["text"], e["type"], e["start"], e["end"]) for e in first["entities"]] == [
        ("John Smith", "per", 0, 10), ("London", "geo", 33, 39), ("today", "tim", 40, 45)]
    assert all(0 < e["confidence"] <= 1 and e["review"] is False for e in first["entities"])
    assert second == {"text": "", "entities": []}

    status, out, _ = run_cli(["predict", "--run", str(run_dir), "--format", "conll", TEXT, "The army said today"])
    conll = tmp_path / "predicted.conll"
    conll.write_text(out)
    sentences = read_conll(conll, scheme_in="bio")
    assert [s.words for s in sentences] == [tuple(TEXT.split()), ("The", "army", "said", "today")]
    assert sentences[0].tags == ("B-per", "I-per", "O", "O", "O", "O", "B-geo", "B-tim")

    status, out, err = run_cli(["predict", "--run", str(run_dir), TEXT, "--threshold", "1.0"])
    lines = out.splitlines()
    assert status == 0 and lines[0] == TEXT and lines[1].split()[:3] == ["per", "John", "Smith"]
    assert all(line.endswith("review") for line in lines[1:] if not line.endswith(" 1.00"))
    assert err.startswith("[predict] ") and "flagged for review" in err


def test_predict_jsonl_has_tokens_and_html_is_escaped(trained):
    _, _, run_dir, _ = trained
    status, out, _ = run_cli(["predict", "--run", str(run_dir), "--format", "jsonl", TEXT, ""])
    first, second = (json.loads(line) for line in out.splitlines())
    assert status == 0 and second == {"text": "", "entities": [], "tokens": []}
    assert [(t["text"], t["start"], t["end"], t["sentence"], t["tag"]) for t in first["tokens"][:2]] == [
        ("John", 0, 4, 0, "B-per"), ("Smith", 5, 10, 0, "I-per")]
    assert [t["tag"] for t in first["tokens"]] == ["B-per", "I-per", "O", "O", "O", "O", "B-geo", "B-tim"]
    assert [(e["text"], e["type"]) for e in first["entities"]] == [("John Smith", "per"), ("London", "geo"),
                                                                  ("today", "tim")]

    text = f"<script>x</script> & {TEXT}"
    status, page, _ = run_cli(["predict", "--run", str(run_dir), "--format", "html", "--threshold", "1.0", text])
    assert status == 0 and page.startswith("<!DOCTYPE html>") and "<script" not in page
    body = page[page.index('<p class="text">'):]
    shown = re.sub("<[^>]+>", "", re.sub('<span class="type">[^<]*</span>', "", body))  # the text, escaped
    assert "&lt;script&gt;x&lt;/script&gt; &amp;" in shown and html.unescape(shown).strip() == text
    [record] = [json.loads(line) for line in run_cli(["predict", "--run", str(run_dir), "--format", "json",
                                                      "--threshold", "1.0", text])[1].splitlines()]
    entities = record["entities"]
    assert body.count('<span class="type">') == len(entities) and len(entities) >= 3
    assert body.count('<span class="entity review" style=') == sum(e["review"] for e in entities)
    assert 'John Smith<span class="type">per?</span>' in body


def test_predict_reads_one_text_per_line(trained, tmp_path):
    _, _, run_dir, _ = trained
    path = tmp_path / "texts.txt"
    path.write_bytes(f"{TEXT}\r\n\nThe army said today\n".encode())
    assert read_texts(str(path)) == [TEXT, "", "The army said today"]
    status, out, _ = run_cli(["predict", "--run", str(run_dir), "--input", str(path), "--format", "json",
                              "--mc-samples", "3"])
    assert status == 0 and [json.loads(line)["text"] for line in out.splitlines()] == read_texts(str(path))


POOL = ["John Smith said the president in London today", "The army said today",
        "the president of London said", " ".join(["the president said"] * 8)]  # 24 words: cut into rows


def write_pool(directory: Path) -> Path:
    path = directory / "pool.txt"
    path.write_text("".join(line + "\n" for line in POOL), encoding="utf-8")
    return path


def select_jsonl(run_dir, pool, *options):
    status, out, err = run_cli(["select", "--run", str(run_dir), "--pool", str(pool), "--format", "jsonl", *options])
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()], err


def test_select_ranks_the_pool_by_hand_computed_mnlp_and_entropy(trained, tmp_path):
    from ner.api import load
    from ner.uncertainty.metrics import entropy

    _, _, run_dir, _ = trained
    pool = write_pool(tmp_path)
    probabilities = [p for _, p in load(str(run_dir)).predict_words([line.split() for line in POOL])]
    expected = {"mnlp": [-np.log(p.max(-1)).mean() for p in probabilities],  # a softmax model: sum / n
                "entropy": [entropy(p).mean() for p in probabilities]}
    for strategy, scores in expected.items():
        records, err = select_jsonl(run_dir, pool, "--budget", "3", "--strategy", strategy)
        order = np.argsort(-np.array(scores), kind="stable")[:3]
        assert [r["number"] for r in records] == (order + 1).tolist() and [r["rank"] for r in records] == [1, 2, 3]
        assert [r["words"] for r in records] == [POOL[i].split() for i in order]
        np.testing.assert_allclose([r["score"] for r in records], np.array(scores)[order], atol=2e-6)
        assert all(r["penalty"] == 0 for r in records)
        assert err == f"[select] 3 of 4 pool sentences by {strategy} (diversity 0.0)\n"


def test_select_writes_all_o_conll_and_takes_all_when_the_budget_exceeds_the_pool(trained, tmp_path):
    _, _, run_dir, _ = trained
    output = tmp_path / "to_label.conll"
    status, out, err = run_cli(["select", "--run", str(run_dir), "--pool", str(write_pool(tmp_path)), "--budget",
                                "10", "--strategy", "random", "--seed", "3", "--output", str(output)])
    assert status == 0 and out == ""
    assert "budget 10 is more than the pool's 4 sentences: all are selected" in err
    assert f"4 of 4 pool sentences by random (diversity 0.0); written to {output}" in err
    sentences = read_conll(output, scheme_in="bio")
    order = np.argsort(-np.random.default_rng(3).random(4), kind="stable")
    assert [s.words for s in sentences] == [tuple(POOL[i].split()) for i in order]
    assert {tag for s in sentences for tag in s.tags} == {"O"}
    conll_pool, _ = run_cli(["select", "--run", str(run_dir), "--pool", str(output), "--pool-format", "conll",
                             "--budget", "1", "--strategy", "random", "--seed", "3"])[:2]
    assert conll_pool == 0


def test_select_leaves_out_the_sentences_already_labelled(trained, tmp_path):
    _, _, run_dir, _ = trained
    pool, labelled = write_pool(tmp_path), tmp_path / "labelled.conll"
    first, _ = select_jsonl(run_dir, pool, "--budget", "2")
    status, _, _ = run_cli(["select", "--run", str(run_dir), "--pool", str(pool), "--budget", "2", "--output",
                            str(labelled)])
    assert status == 0
    rest, err = select_jsonl(run_dir, pool, "--budget", "4", "--exclude", str(labelled))
    assert "[select] 2 pool sentences are in the --exclude files: left out" in err
    assert sorted(r["number"] for r in first + rest) == [1, 2, 3, 4]  # numbers are the pool's lines
    assert [r["words"] for r in rest] == [POOL[r["number"] - 1].split() for r in rest]


def test_select_bald_and_diversity_run_end_to_end(trained, tmp_path):
    _, _, run_dir, _ = trained
    pool = write_pool(tmp_path)
    first, _ = select_jsonl(run_dir, pool, "--budget", "4", "--strategy", "bald", "--mc-samples", "4")
    again, _ = select_jsonl(run_dir, pool, "--budget", "4", "--strategy", "bald", "--mc-samples", "4")
    assert first == again and all(r["score"] >= 0 for r in first)  # seeded samples; mutual information >= 0
    records, _ = select_jsonl(run_dir, pool, "--budget", "4", "--diversity", "0.5")
    assert records[0]["penalty"] == 0 and all(0 <= r["penalty"] <= 0.5 for r in records)
    assert sorted(r["number"] for r in records) == [1, 2, 3, 4]


def test_select_names_the_empty_pool_lines(trained, tmp_path):
    _, _, run_dir, _ = trained
    pool = tmp_path / "pool.txt"
    pool.write_text("The army said today\n\n  \nJohn said\n", encoding="utf-8")
    status, out, err = run_cli(["select", "--run", str(run_dir), "--pool", str(pool), "--budget", "1"])
    assert status == 2 and out == ""
    assert err == (f"error: {pool} lines 2, 3: no words; expected one sentence per line (remove the empty lines)\n")


def test_export(trained, tmp_path):
    _, _, run_dir, _ = trained
    status, out, _ = run_cli(["export", "--run", str(run_dir), "--output", str(tmp_path / "served")])
    assert status == 0 and "serving SavedModel" in out and (tmp_path / "served" / "saved_model.pb").is_file()


def test_tag_corpus_names_the_bulk_extra_when_ray_is_missing(trained, tmp_path, monkeypatch):
    _, _, run_dir, _ = trained
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("John said\n", encoding="utf-8")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    status, out, err = run_cli(["tag-corpus", "--run", str(run_dir), "--input", str(corpus),
                                "--output", str(tmp_path / "tagged.jsonl")])
    assert status == 2 and out == "" and not (tmp_path / "tagged.jsonl").exists()
    assert err.startswith("error: ner tag-corpus runs on Ray Data, which is not installed")
    assert err.rstrip().endswith("install the bulk extra: pip install -e '.[bulk]'")


def test_bad_input_files_name_file_and_line(tmp_path):
    with pytest.raises(DataError, match="input file not found: .*absent.txt"):
        read_texts(str(tmp_path / "absent.txt"))
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"fine\ncaf\xe9\n")
    with pytest.raises(DataError, match=r"latin\.txt line 2: bytes are not valid UTF-8"):
        read_texts(str(latin))
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert read_texts(str(empty)) == []


@pytest.mark.parametrize("argv, expected", [
    (["predict", "--run", "no_such_run", "text"], "error: run 'no_such_run' not found"),
    (["evaluate", "--run", "no_such_run"], "error: run 'no_such_run' not found"),
    (["export", "--run", "no_such_run", "--output", "x"], "error: run 'no_such_run' not found"),
    (["uncertainty", "--run", "no_such_run"], "error: run 'no_such_run' not found"),
    (["uncertainty", "--run", "bert_ner", "--mc-samples", "0"], "expected a positive integer, got 0"),
    (["train", "--config", "config/bert_ner.yaml", "--set", "training.epoch=2"], "unknown key 'training.epoch'"),
    (["train", "--config", "config/missing.yaml"], "error: config file not found"),
    (["predict", "--run", "bert_ner", "--threshold", "2", "text"], "expected a number in [0, 1], got 2"),
    (["predict", "--run", "bert_ner", "--mc-samples", "-1", "text"], "expected 0 or a positive integer"),
    (["predict", "--run", "bert_ner"], "one of the arguments TEXT --input is required"),
    (["predict", "--run", "bert_ner", "text", "--input", "f.txt"], "not allowed with argument"),
    (["predict", "--run", "bert_ner", "--format", "xml", "text"], "invalid choice: 'xml'"),
    (["select", "--run", "bert_ner", "--pool", "absent.txt", "--budget", "2"], "error: input file not found"),
    (["select", "--run", "bert_ner", "--pool", "p.txt", "--budget", "0"], "expected a positive integer, got 0"),
    (["select", "--run", "bert_ner", "--pool", "p.txt", "--budget", "2", "--strategy", "margin"],
     "invalid choice: 'margin' (choose from 'mnlp', 'bald', 'entropy', 'random')"),
    (["select", "--run", "bert_ner", "--pool", "p.txt", "--budget", "2", "--diversity", "-1"],
     "expected 0 or a positive number, got -1"),
    (["tag-corpus", "--run", "bert_ner", "--input", "absent.jsonl", "--output", "o.jsonl"],
     "error: input file not found: absent.jsonl; expected a UTF-8 text file"),
    (["tag-corpus", "--run", "bert_ner", "--input", "setup.py", "--output", "o.jsonl", "--errors", "setup.py"],
     "error: the input, output and bad-lines files must be three different files, got setup.py, o.jsonl and setup.py"),
    (["tag-corpus", "--run", "bert_ner", "--input", "c", "--output", "o", "--input-format", "csv"],
     "invalid choice: 'csv' (choose from 'text', 'jsonl')"),
    (["tag-corpus", "--run", "bert_ner", "--input", "c", "--output", "o", "--workers", "0"],
     "expected a positive integer, got 0"),
    (["tag-corpus", "--run", "bert_ner", "--input", "c", "--output", "o", "--threads", "-1"],
     "expected a positive integer, got -1"),
])
def test_errors_are_one_line_with_status_2(argv, expected, monkeypatch, tmp_path):
    monkeypatch.setenv("NER_GMB_PATH", str(tmp_path / "never_read.csv"))
    monkeypatch.chdir(REPO)
    status, out, err = run_cli(argv)
    assert status == 2 and out == ""
    assert expected in err and err.strip().splitlines()[-1].count("error") == 1


def test_bad_input_is_answered_before_tensorflow_is_imported(tmp_path):
    """Config, override, run and input-file errors come from checks that need no TensorFlow (so they answer
    at once): in a fresh process, each command fails with its error and TensorFlow is still not imported."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {REPO / 'config' / 'config.yaml'}\ntraining:\n  epochs: -1\n")
    cases = {"key 'training.epochs' must be a positive integer, got -1": ["train", "--config", str(bad)],
             "unknown key 'training.epoch'": ["evaluate", "--run", "bert_ner", "--set", "training.epoch=2"],
             "run 'no_such_run' not found": ["uncertainty", "--run", "no_such_run"],
             "run 'no_such_run' not found:": ["export", "--run", "no_such_run", "--output", "x"],
             "input file not found": ["predict", "--run", "no_such_run", "--input", str(tmp_path / "absent.txt")],
             "run 'no_such_run' not found: expected": ["tag-corpus", "--run", "no_such_run", "--input", str(bad),
                                                       "--output", str(tmp_path / "tagged.jsonl")]}
    script = """
import contextlib, io, json, sys
from ner.cli import main
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as exited:
            print(json.dumps([exited.code, err.getvalue(), "tensorflow" in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", script, json.dumps(list(cases.values()))], cwd=REPO,
                          capture_output=True, text=True, check=True)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(cases)
    for expected, (status, err, tensorflow) in zip(cases, answers):
        assert status == 2 and err.startswith("error: ") and expected in err and not tensorflow, (expected, err)
