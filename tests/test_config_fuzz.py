"""Fuzzing the config loader: the shipped configs, mutated by a seeded generator from a fixed set of edits
(lines deleted, repeated, swapped or re-indented; values, keys and lines replaced by YAML oddities; bytes
inserted; the file cut), with odd `--set` overrides, load as a valid config or raise ConfigError, never
anything else. A config that loads is saved and loads back equal."""
import random
from pathlib import Path

from ner.config import CONFIG_DIR, ExperimentConfig, load_config, save_config
from ner.errors import ConfigError

TRIALS = 500

VALUES = ["", "~", "null", "true", "no", "-1", "0", "2", "0.5", "1e400", "1.0e400", ".nan", "-.inf", "[]", "{}",
          "[1, [2]]", "{a: 1}", '"x"', "'", '"', "&a x", "*a", "!!binary aGk=", "!!python/object:os.system x",
          "2001-12-14", "12:30:00", "0x1F", "1_000", "9" * 400, "!!set {a}", "? x", "|", ">", "%", "@", "`", "- x",
          "a: b: c", "\t", "!!float x", "!!int 1.5", "!!timestamp x", "!!str", "&x [*x]", "[" * 60,
          "[" * 900 + "]" * 900, "[" * 5000, "{a: [b, {c: d}]}", "<<: {a: 1}", "bio", "gmb", "bert_crf", "mix"]
KEYS = ["base", "1", "null", "[a]", "<<", "x", "run_name", "epochs", "? a", "-", "true", "2020-01-01"]
LINES = ["base: nonexistent.yaml", "base: 5", "base: [x]", "base: config.yaml", "base: fuzzed.yaml", "---", "...",
         "%YAML 1.1", "1: x", "null: x", "[a]: b", "? [a, b]\n: c", "x: &a [*a]", "<<: {run_name: x}",
         "training: 3", "model: {head: {hidden_units: [0]}}", "split:\n  fractions: [0.5, 0.5, 0.5]", "run_name: ''",
         "semi_supervised: {}", "semi_supervised: {losses: []}", "uncertainty: {encoder_dropout: true}",
         "model: {type: bilstm}", "encoder: {handle: 3}", "data: {max_seq_length: .nan}", "true: 1", "1.5: y"]
OVERRIDE_KEYS = ["run_name", "data.corpus", "data.tag_scheme", "training.epochs", "training.learning_rate",
                 "model.head.hidden_units", "split.fractions", "semi_supervised.prior", "model", "paths", "x", "",
                 "a.b.c", ".", "data..corpus", "training.epochs.x"]
BYTES = [b"\xff", b"\x00", b"\xef\xbb\xbf", b"\xc3", b"\r", b"\t", b"\x85", b"\xe2\x80\xa8", b"\x1b", b"\x7f"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One random edit of a YAML document."""
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    line = lines[i]
    edit = rng.randrange(9)
    if edit == 0:
        del lines[i]
    elif edit == 1:
        lines.insert(i, line)
    elif edit == 2:
        j = rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], line
    elif edit == 3:
        lines[i] = rng.choice([b"", b" ", b"  ", b"\t", b"    "]) + line.lstrip()
    elif edit == 4 and b":" in line:
        lines[i] = line.split(b":")[0] + b": " + rng.choice(VALUES).encode()
    elif edit == 5 and b":" in line:
        indent = line[:len(line) - len(line.lstrip())]
        lines[i] = indent + rng.choice(KEYS).encode() + b":" + line.split(b":", 1)[1]
    elif edit == 6:
        lines.insert(i, rng.choice(LINES).encode())
    elif edit == 7:
        data = b"\n".join(lines)
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.choice(BYTES) + data[at:]
    elif edit == 8:
        data = b"\n".join(lines)
        return data[:rng.randrange(len(data) + 1)]
    return b"\n".join(lines)


def test_mutated_configs_load_or_raise_config_error(tmp_path):
    (tmp_path / "config.yaml").write_bytes((CONFIG_DIR / "config.yaml").read_bytes())  # the model files' base
    documents = [(CONFIG_DIR / name).read_bytes() for name in ("config.yaml", "bert_ner.yaml", "bert_crf.yaml")]
    rng = random.Random(16)
    path = tmp_path / "fuzzed.yaml"
    outcomes = {"valid": 0, "ConfigError": 0}
    for trial in range(TRIALS):
        data = rng.choice(documents)
        for _ in range(rng.randint(1, 3)):
            data = mutate(rng, data)
        path.write_bytes(data)
        overrides = [f"{rng.choice(OVERRIDE_KEYS)}={rng.choice(VALUES)}" for _ in range(rng.choice([0, 0, 1, 2]))]
        if rng.random() < 0.05:
            overrides.append(rng.choice(["noequals", "=x", " =1"]))
        try:
            config = load_config(path, overrides, environ={})
        except ConfigError:
            outcomes["ConfigError"] += 1
            continue
        except Exception as error:  # noqa: BLE001  (what the test is for)
            raise AssertionError(f"trial {trial}: {type(error).__name__}: {error}\n"
                                 f"document {data[:2000]!r}\noverrides {overrides}") from error
        outcomes["valid"] += 1
        assert isinstance(config, ExperimentConfig)
        save_config(config, tmp_path / "saved.yaml")
        assert load_config(tmp_path / "saved.yaml", environ={}) == config, f"trial {trial}"
    assert outcomes["valid"] > TRIALS // 20 and outcomes["ConfigError"] > TRIALS // 2, outcomes
