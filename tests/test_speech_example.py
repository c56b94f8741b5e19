"""examples/spoken_digits.py on tiny generated recordings: loaders, training, saving, predict.

The fixtures are short tones written with soundfile (one pitch per class), in the two folder
layouts the example reads: FSDD file names and Speech Commands word folders. No network.
"""
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

sf = pytest.importorskip("soundfile")

from pyconv1d import nn  # noqa: E402


@pytest.fixture(scope="module")
def sd(load_example):
    return load_example("spoken_digits.py")


def tone(label, take, sr, seconds=0.3):
    """A class-specific chord (two harmonics) with an envelope, lead-in silence and noise."""
    rng = np.random.default_rng(1000 * label + take)
    f0 = 300.0 + 350.0 * label
    n = int(seconds * sr)
    t = np.arange(n) / sr
    x = np.sin(2 * np.pi * f0 * t) + 0.4 * np.sin(2 * np.pi * 2 * f0 * t)
    x *= np.hanning(n) * 0.5 * rng.uniform(0.5, 1.0)
    lead = np.zeros(int(rng.uniform(0.02, 0.08) * sr))
    x = np.concatenate([lead, x, lead]) + 0.003 * rng.standard_normal(2 * len(lead) + n)
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def fsdd_dir(tmp_path_factory):
    """``{digit}_{speaker}_{n}.wav``: digits 0-2, two speakers, five takes, 8 kHz."""
    root = tmp_path_factory.mktemp("fsdd")
    for d in range(3):
        for s, speaker in enumerate(("jackson", "theo")):
            for n in range(5):
                sf.write(root / f"{d}_{speaker}_{n}.wav", tone(d, 10 * s + n, 8000), 8000)
    (root / "notes.txt").write_text("not audio")
    (root / "README.wav.txt").write_text("not audio either")
    return root


@pytest.fixture(scope="module")
def speech_commands_dir(tmp_path_factory):
    """Word folders at 16 kHz with Speech Commands' validation and testing lists."""
    root = tmp_path_factory.mktemp("speech_commands")
    val, test = [], []
    for label, word in enumerate(("no", "yes")):
        (root / word).mkdir()
        for n in range(8):
            name = f"{word}/spk{n % 4:02d}a_nohash_{n}.wav"
            sf.write(root / name, tone(label, n, 16000, seconds=0.25), 16000)
            (val if n == 6 else test if n == 7 else []).append(name)
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white.wav", np.zeros(1600, np.float32), 16000)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return root


def test_load_folder_fsdd_names(sd, fsdd_dir):
    parts, names = sd.load_folder(fsdd_dir, 8000, seed=0)
    assert names == list(sd.DIGIT_NAMES)
    files = [f for split in parts.values() for f in split[2]]
    assert len(files) == len(set(files)) == 30                   # every clip once
    for split in ("train", "dev", "test"):
        waves, labels, paths = parts[split]
        assert len(waves) == len(labels) == len(paths) > 0
        for w, y, p in zip(waves, labels, paths):
            assert int(Path(p).name[0]) == y                      # label from the file name
            assert w.dtype == np.float32 and w.ndim == 1
    assert sorted(set(parts["train"][1].tolist())) == [0, 1, 2]
    assert sorted(set(parts["test"][1].tolist())) == [0, 1, 2]   # stratified
    again, _ = sd.load_folder(fsdd_dir, 8000, seed=0)
    assert again["test"][2] == parts["test"][2]                  # seeded


def test_load_folder_speech_commands(sd, speech_commands_dir):
    parts, names = sd.load_folder(speech_commands_dir, 8000, seed=0)
    assert names == ["no", "yes"]                                # _background_noise_ skipped
    assert sorted(Path(p).name for p in parts["dev"][2]) == ["spk02a_nohash_6.wav"] * 2
    assert sorted(Path(p).name for p in parts["test"][2]) == ["spk03a_nohash_7.wav"] * 2
    assert len(parts["train"][2]) == 12
    waves, labels, paths = parts["train"]
    for w, y, p in zip(waves, labels, paths):
        assert Path(p).parent.name == names[y]
        assert len(w) == len(sf.read(p)[0]) // 2                 # 16 kHz -> 8 kHz


def test_pad_batch_and_masked_pool_gradient(sd):
    x, lengths = sd.pad_batch([np.ones((3, 5), np.float32), np.ones((3, 12), np.float32)], 8)
    assert x.shape == (2, 3, 8) and lengths.tolist() == [5, 8]
    assert x[0, :, 5:].sum() == 0 and x[1].sum() == 24         # padded, and cropped
    rng = np.random.default_rng(0)
    h = rng.standard_normal((2, 3, 4, 6))
    h[0, :, :, 2:] = 100.0                                        # padding must never win
    pool = sd.MaskedStatsPool()
    out = pool(h, np.array([2, 6]))
    assert np.allclose(out[0, :3], h[0, :, :, :2].mean(axis=(1, 2)))
    assert np.allclose(out[0, 3:], h[0, :, :, :2].mean(axis=1).max(axis=1))
    w = rng.standard_normal(out.shape)
    g = pool.backward(w)
    assert np.all(g[0, :, :, 2:] == 0)
    eps, num = 1e-6, np.zeros_like(h)
    for i in np.ndindex(h.shape):
        hp, hm = h.copy(), h.copy()
        hp[i] += eps
        hm[i] -= eps
        num[i] = ((pool(hp, np.array([2, 6])) - pool(hm, np.array([2, 6]))) * w).sum() / (2 * eps)
    np.testing.assert_allclose(g, num, atol=1e-6)


def test_stratified_split(sd):
    labels = np.repeat(np.arange(4), 10)
    rest, held = sd.stratified_split(labels, 0.2, np.random.default_rng(0))
    assert len(set(rest) & set(held)) == 0 and len(rest) + len(held) == 40
    assert np.bincount(labels[held]).tolist() == [2, 2, 2, 2]


@pytest.mark.parametrize("kind,width", [("conv1d", 8), ("conv2d", 4)])
def test_smoke_training_lowers_the_loss(sd, fsdd_dir, kind, width):
    parts, names = sd.load_folder(fsdd_dir, 8000, seed=0)
    fe = sd.FrontEnd(sd.FRONTEND)
    train_set = sd.AudioSet(parts["train"][0], parts["train"][1], fe)
    nn.manual_seed(0)
    model = sd.DigitNet(kind, sd.FRONTEND["n_mels"], len(names), width)
    args = type("Args", (), {"label_smoothing": 0.0, "lr": 3e-3, "batch_size": 8,
                             "epochs": 4, "patience": 10})()
    history, _ = sd.train(model, {"train": train_set, "dev": train_set}, args,
                          np.random.default_rng(0), dict(sd.AUGMENT))
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert history[-1]["dev_loss"] < history[0]["dev_loss"]


def test_main_writes_results_and_predict_reads_them(sd, fsdd_dir, tmp_path, capsys):
    out = tmp_path / "run"
    metrics = sd.main(["--data", str(fsdd_dir), "--model", "conv1d", "--width", "8",
                       "--epochs", "3", "--seed", "1", "--threads", "1", "--out", str(out)])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("data", "model", "test_accuracy", "epochs", "seconds", "dev_accuracy"):
        assert key in saved
    assert saved["model"] == "conv1d" and 1 <= saved["epochs"] <= 3
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert (out / "model.npz").is_file() and (out / "history.json").is_file()
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "spectrograms.png").stat().st_size > 0
        assert (out / "confusion.png").stat().st_size > 0

    model, cfg = sd.load_model(out / "model.npz")
    assert cfg["frontend"] == sd.FRONTEND and cfg["model"] == "conv1d"
    capsys.readouterr()
    wav = fsdd_dir / "2_theo_4.wav"
    k, p = sd.main(["--predict", str(wav), "--out", str(out)])
    printed = capsys.readouterr().out
    m = re.search(r": (\d) \((\w+)\)  probability ([01]\.\d{3})$", printed.strip())
    assert m, printed
    assert int(m.group(1)) == k and m.group(2) == sd.DIGIT_NAMES[k]
    assert abs(float(m.group(3)) - p) < 1e-3 and 0.1 <= p <= 1.0

    # a damaged --out folder is named in the error (KeyError, BadZipFile... before)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    with np.load(out / "model.npz") as z:
        state = dict(z)
    cfg = json.loads(str(state["__config__"]))
    bad_hop = dict(cfg, frontend=dict(cfg["frontend"], hop_length=0))
    del cfg["width"]
    for content in [b"not a zip file", (out / "model.npz").read_bytes()[:300],
                    dict(state, __config__=np.array("{")),
                    dict(state, __config__=np.array(json.dumps(cfg))),
                    dict(state, __config__=np.array(json.dumps(bad_hop))),
                    {k: v for k, v in state.items() if "weight" not in k}]:
        if isinstance(content, bytes):
            (damaged / "model.npz").write_bytes(content)
        else:
            np.savez(damaged / "model.npz", **content)
        with pytest.raises(SystemExit, match="model.npz is not a model saved by this example"):
            sd.main(["--predict", str(wav), "--out", str(damaged)])
    (damaged / "model.npz").unlink()
    with pytest.raises(SystemExit, match="model.npz not found: train first"):
        sd.main(["--predict", str(wav), "--out", str(damaged)])
    # a missing or unreadable file to classify is named, not a traceback
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    for path in (junk, tmp_path / "missing.wav"):
        with pytest.raises(SystemExit, match=f"--predict: cannot read {re.escape(str(path))} "
                                             f"as audio"):
            sd.main(["--predict", str(path), "--out", str(out)])


@pytest.mark.parametrize("argv, message", [
    (["--lr", "0"], "--lr must be > 0, got 0.0"),
    (["--dropout", "1"], r"--dropout must be in \[0, 1\), got 1.0"),
    (["--label-smoothing", "-0.1"], r"--label-smoothing must be in \[0, 1\), got -0.1"),
    (["--seed", "-1"], "--seed must be >= 0, got -1"),
    (["--patience", "-1"], "--patience must be >= 0, got -1"),
])
def test_bad_numbers_are_argparse_errors(sd, argparse_error, argv, message):
    assert re.search(message, argparse_error(sd.parse_args, argv))


def test_bad_data_and_out_are_clear_errors(sd, tmp_path, argparse_error):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert "--out must be a folder, got the file" in argparse_error(sd.parse_args,
                                                                    ["--out", str(afile)])
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, message in ((tmp_path / "missing", "does not exist"),
                            (empty, "no recordings named")):
        with pytest.raises(SystemExit, match=f"--data {re.escape(str(folder))}: .*{message}"):
            sd.main(["--data", str(folder), "--out", str(tmp_path / "o")])


def test_patience_zero_never_stops_early(sd, fsdd_dir, tmp_path):
    metrics = sd.main(["--data", str(fsdd_dir), "--model", "conv1d", "--width", "4",
                       "--epochs", "3", "--patience", "0", "--threads", "1",
                       "--out", str(tmp_path / "run")])
    assert metrics["epochs"] == 3
