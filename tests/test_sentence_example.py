"""examples/sentence_classification.py on tiny fixture files: training, metrics, saving, predict.

The fixtures are written by the tests in the original formats the example reads with ``--data``,
``--test-data`` and ``--glove`` (``rt-polarity.pos``/``.neg``, TREC ``.label`` files, a GloVe
``.txt`` file), so nothing is fetched and the cache is never touched. The sentences are drawn
from a small vocabulary in which a few cue words carry the label.
"""
import json
import re

import numpy as np
import pytest

FILLER = ("the film is a of and with its to this but that story movie plot cast it one "
          "more than as director scene acting").split()
CUES = {
    "positive": "brilliant gem moving delight superb charming wonderful".split(),
    "negative": "dull mess tedious awful boring clumsy bland".split(),
}
QUESTIONS = {   # TREC coarse class -> question openings
    "HUM": ["Who was", "Who invented", "What person wrote"],
    "LOC": ["Where is", "What country has", "Where was"],
    "NUM": ["How many", "When did", "How much"],
    "DESC": ["Why does", "What is the meaning of", "How does"],
    "ENTY": ["What animal eats", "What color is", "What instrument plays"],
    "ABBR": ["What does the abbreviation", "What is the acronym for", "What does stand for"],
}


@pytest.fixture(scope="module")
def sc(load_example):
    return load_example("sentence_classification.py")


def sentence(rng, cue_words):
    words = list(rng.choice(FILLER, size=rng.integers(3, 12)))
    for _ in range(rng.integers(1, 3)):
        words.insert(rng.integers(0, len(words) + 1), rng.choice(cue_words))
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([" .", " !", "", " , really ."])


@pytest.fixture(scope="module")
def mr_dir(tmp_path_factory):
    """rt-polarity.pos/.neg with 150 sentences each (latin-1, as the originals)."""
    d = tmp_path_factory.mktemp("rt-polaritydata")
    rng = np.random.default_rng(0)
    for label, name in (("positive", "rt-polarity.pos"), ("negative", "rt-polarity.neg")):
        lines = [sentence(rng, CUES[label]) for _ in range(150)]
        lines[0] += " caf\xe9"       # a latin-1 byte
        (d / name).write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    return d


def trec_lines(rng, n):
    classes = list(QUESTIONS)
    lines = []
    for i in range(n):
        c = classes[i % len(classes)]
        opening = rng.choice(QUESTIONS[c])
        rest = " ".join(rng.choice(FILLER, size=rng.integers(2, 6)))
        lines.append(f"{c}:other {opening} {rest} ?")
    return lines


@pytest.fixture(scope="module")
def trec_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("trec")
    rng = np.random.default_rng(1)
    (d / "train_5500.label").write_text("\n".join(trec_lines(rng, 240)) + "\n",
                                        encoding="latin-1")
    (d / "TREC_10.label").write_text("\n".join(trec_lines(rng, 60)) + "\n", encoding="latin-1")
    return d


@pytest.fixture(scope="module")
def glove_txt(tmp_path_factory):
    """A 16-d GloVe-format file over the fixture vocabulary plus words seen only at test time."""
    path = tmp_path_factory.mktemp("glove") / "glove.16d.txt"
    rng = np.random.default_rng(2)
    words = set(FILLER) | {w for ws in CUES.values() for w in ws} | {"unseen"}
    for openings in QUESTIONS.values():
        words |= {w.lower() for o in openings for w in o.split()}
    words |= {",", ".", "!", "?"}
    lines = [w + " " + " ".join(f"{v:.4f}" for v in rng.normal(0, 0.5, 16))
             for w in sorted(words)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(sc, argv):
    return sc.main([str(a) for a in argv])


def test_mr_rand_trains_saves_and_predicts(sc, mr_dir, tmp_path, capsys):
    out = tmp_path / "mr_rand"
    metrics = run(sc, ["--dataset", "mr", "--variant", "rand", "--data", mr_dir, "--epochs", 4,
                       "--patience", 0, "--seed", 3, "--lr", 0.003, "--out", out])
    on_disk = json.loads((out / "metrics.json").read_text())
    for key in ("dataset", "variant", "seed", "test_accuracy", "dev_accuracy", "epochs",
                "seconds", "sentences_per_second"):
        assert key in on_disk, key
    assert on_disk["dataset"] == "mr" and on_disk["variant"] == "rand" and on_disk["seed"] == 3
    assert on_disk["epochs"] == 4
    assert (on_disk["train_size"], on_disk["dev_size"], on_disk["test_size"]) == (240, 30, 30)
    losses = [h["train_loss"] for h in metrics["history"]]
    assert losses[-1] < 0.7 * losses[0], losses          # training lowers the loss
    assert metrics["test_accuracy"] >= 0.8                # the cue words are easy to find
    assert metrics["sentences_per_second"] > 0
    for name in ("model.npz", "vocab.json", "config.json"):
        assert (out / name).is_file(), name
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert (out / "curve.png").stat().st_size > 0

    results = sc.predict(out, ["A brilliant , moving gem .", "A dull and tedious mess ."])
    (_, toks, p_pos), (_, _, p_neg) = results
    assert toks == ["a", "brilliant", ",", "moving", "gem"]
    for p in (p_pos, p_neg):
        assert set(p) == {"negative", "positive"}
        assert sum(p.values()) == pytest.approx(1.0)
    assert p_pos["positive"] > 0.5 > p_neg["positive"]

    capsys.readouterr()
    run(sc, ["--out", out, "--predict", "a wonderful film"])
    printed = capsys.readouterr().out
    assert "positive" in printed and "negative" in printed and "->" in printed

    # a damaged --out folder is named in the error (KeyError 'channels' and the like before)
    config = json.loads((out / "config.json").read_text())
    for name, content in [("config.json", "{}"), ("config.json", "[1"),
                          ("config.json", json.dumps(dict(config, channels=[{"dim": "x"}]))),
                          ("vocab.json", "nonsense"), ("model.npz", "not a zip file")]:
        saved = (out / name).read_bytes()
        (out / name).write_text(content)
        with pytest.raises(SystemExit, match="does not hold a model saved by this example"):
            sc.predict(out, ["a film"])
        (out / name).write_bytes(saved)
    assert sc.predict(out, ["a film"])


def test_repeated_sentences_are_kept_once(sc, mr_dir, tmp_path, capsys):
    """A sentence that occurs twice (the same tokens: MR is lower-cased) is dropped before the
    split, so that no test sentence is also in training."""
    texts = [["a", "b"], ["c"], ["a", "b"], ["a"], ["c"], ["b", "a"], ["a"]]
    expected = [i for i, t in enumerate(texts) if t not in texts[:i]]      # brute force
    assert sc.first_occurrences(texts).tolist() == expected == [0, 1, 3, 5]
    assert sc.first_occurrences([]).tolist() == []
    d = tmp_path / "rt-polaritydata"
    d.mkdir()
    for name in ("rt-polarity.pos", "rt-polarity.neg"):
        lines = (mr_dir / name).read_bytes().decode("latin-1").splitlines()
        # ten repeats, five of them upper-cased (the same tokens once lower-cased)
        lines += lines[:5] + [x.upper() for x in lines[5:10]]
        (d / name).write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    capsys.readouterr()
    metrics = run(sc, ["--dataset", "mr", "--data", d, "--epochs", 1, "--patience", 0,
                       "--maps", 4, "--emb-dim", 8, "--out", tmp_path / "out"])
    assert "20 repeated sentences dropped" in capsys.readouterr().out
    assert (metrics["train_size"], metrics["dev_size"], metrics["test_size"]) == (240, 30, 30)


def test_glove_vocab_zero_is_kims_setup(sc):
    assert sc.parse_args(["--glove-vocab", "0"]).glove_vocab == 0
    with pytest.raises(SystemExit):
        sc.parse_args(["--glove-vocab", "-1"])


def test_same_seed_same_run(sc, mr_dir, tmp_path):
    argv = ["--data", mr_dir, "--epochs", 2, "--patience", 0, "--seed", 5, "--maps", 8,
            "--emb-dim", 16]
    a = run(sc, argv + ["--out", tmp_path / "a"])
    b = run(sc, argv + ["--out", tmp_path / "b"])
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]
    assert a["test_accuracy"] == b["test_accuracy"]
    with np.load(tmp_path / "a" / "model.npz") as fa, np.load(tmp_path / "b" / "model.npz") as fb:
        assert fa.files == fb.files
        for k in fa.files:
            np.testing.assert_array_equal(fa[k], fb[k])


@pytest.mark.parametrize("variant", ["nonstatic", "multichannel"])
def test_trec_with_glove_file_and_test_file(sc, trec_files, glove_txt, tmp_path, variant):
    out = tmp_path / variant
    metrics = run(sc, ["--dataset", "trec", "--variant", variant,
                       "--data", trec_files / "train_5500.label",
                       "--test-data", trec_files / "TREC_10.label", "--glove", glove_txt,
                       "--epochs", 3, "--patience", 0, "--lr", 0.01, "--glove-scale", 1,
                       "--out", out])
    assert metrics["test_size"] == 60 and metrics["train_size"] + metrics["dev_size"] == 240
    assert metrics["emb_dim"] == 16
    assert metrics["test_accuracy"] >= 0.7
    config = json.loads((out / "config.json").read_text())
    assert [c["trained"] for c in config["channels"]] == \
        ([True] if variant == "nonstatic" else [False, True])
    (_, _, probs), = sc.predict(out, ["How many unseen cats ?"])
    assert list(probs) == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert max(probs, key=probs.get) == "NUM"


def test_cross_validation(sc, mr_dir, tmp_path):
    for name in ("model.npz", "vocab.json", "config.json"):    # an earlier run's model
        (tmp_path / name).write_text("stale")
    metrics = run(sc, ["--data", mr_dir, "--cv", 3, "--epochs", 2, "--patience", 0,
                       "--maps", 8, "--emb-dim", 16, "--out", tmp_path])
    assert metrics["cv"] == 3 and len(metrics["fold_test_accuracy"]) == 3
    assert metrics["test_accuracy"] == pytest.approx(np.mean(metrics["fold_test_accuracy"]))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["cv"] == 3 and saved["holdout"] is None and saved["glove_vocab"] is None
    # the folds keep no model, and the stale one, which the metrics no longer describe, is gone
    assert not any((tmp_path / name).exists() for name in ("model.npz", "vocab.json",
                                                           "config.json"))
    with pytest.raises(SystemExit, match="not found"):
        sc.predict(tmp_path, ["a film"])


def test_model_masks_padding(sc):
    """A sentence scores the same alone and padded inside a batch of longer ones."""
    rng = np.random.default_rng(0)
    model = sc.KimCNN([(rng.normal(size=(30, 8)).astype(np.float32), True)], 3, maps=4,
                      rng=rng).eval()
    short = np.array([[5, 6, 7, 0, 0, 0, 0, 0, 0]])
    batch = np.vstack([short, rng.integers(2, 30, (2, 9))])
    alone = model(short[:, :5], np.array([3]))
    padded = model(batch, np.array([3, 9, 9]))
    np.testing.assert_allclose(padded[:1], alone, rtol=1e-5, atol=1e-6)


def test_model_gradient_matches_finite_differences(sc):
    """KimCNN.backward against central differences on a few weights (float64, no dropout)."""
    from pyconv1d import nn
    rng = np.random.default_rng(1)
    model = sc.KimCNN([(rng.normal(size=(20, 6)), True)], 2, maps=3, dropout=0.0, rng=rng)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    x = rng.integers(1, 20, (4, 7))
    x[0, 5:] = 0
    lengths = np.array([5, 7, 6, 7])
    y = np.array([0, 1, 1, 0])
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    loss_fn(model(x, lengths), y)
    model.backward(loss_fn.backward())
    for name, p in model.named_parameters():
        flat = p.data.reshape(-1)
        for i in rng.choice(flat.size, size=min(3, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            up = loss_fn(model(x, lengths), y)
            flat[i] = old - 1e-6
            down = loss_fn(model(x, lengths), y)
            flat[i] = old
            assert p.grad.reshape(-1)[i] == pytest.approx((up - down) / 2e-6, rel=1e-4,
                                                          abs=1e-7), (name, i)


@pytest.mark.parametrize("argv, message", [
    (["--cv", "3", "--holdout", "0.2"], "--holdout and --cv exclude each other"),
    (["--holdout", "0.5"], r"--holdout must lie in \(0, 0.5\), got 0.5"),
    (["--lr", "-1"], "--lr must be > 0, got -1.0"),
    (["--dropout", "1.5"], r"--dropout must be in \[0, 1\), got 1.5"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--split-seed", "-2"], "--split-seed must be >= 0, got -2"),
    (["--weight-decay", "-1"], "--weight-decay must be >= 0, got -1.0"),
    (["--emb-lr-scale", "-1"], "--emb-lr-scale must be >= 0, got -1.0"),
    (["--max-norm", "-1"], "--max-norm must be >= 0, got -1.0"),
])
def test_bad_numbers_are_argparse_errors(sc, argparse_error, argv, message):
    assert re.search(message, argparse_error(sc.parse_args, argv))


def test_bad_data_and_out_are_clear_errors(sc, mr_dir, tmp_path, argparse_error):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert "--out must be a folder, got the file" in argparse_error(sc.parse_args,
                                                                    ["--out", str(afile)])
    missing = tmp_path / "missing"
    with pytest.raises(SystemExit, match=f"--data {missing}: could not be read"):
        sc.main(["--data", str(missing), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match=f"--glove {missing}: could not be read"):
        run(sc, ["--data", mr_dir, "--variant", "static", "--glove", missing,
                 "--out", tmp_path / "o"])
    with pytest.raises(SystemExit, match=f"--test-data {missing}: could not be read"):
        run(sc, ["--data", mr_dir, "--test-data", missing, "--out", tmp_path / "o"])
    with pytest.raises(SystemExit, match="--cv 20000 needs at least as many sentences"):
        run(sc, ["--data", mr_dir, "--cv", 20000, "--out", tmp_path / "o"])
    small = tmp_path / "small.label"      # 4 questions a class: no tenth for dev or test
    small.write_text("".join(f"{c}:other What is {c.lower()} {i} ?\n" for c in ("NUM", "LOC")
                             for i in range(4)))
    with pytest.raises(SystemExit, match="8 sentences are too few for a stratified split"):
        run(sc, ["--dataset", "trec", "--data", small, "--epochs", 1, "--out", tmp_path / "o"])


def test_bad_arguments(sc):
    with pytest.raises(SystemExit):
        sc.parse_args(["--cv", "1"])
    with pytest.raises(SystemExit):
        sc.parse_args(["--threads", "0"])
    with pytest.raises(SystemExit, match="not found"):
        sc.predict("/nonexistent/folder", ["a film"])
