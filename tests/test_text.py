"""Tokeniser, vocabulary, padded batching and seeded splits."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyconv1d.text import (Batch, Vocab, clean_str, iterate_batches, kfold_indices, length_mask,
                           pad_batch, tokenize, train_dev_test_split)

# ------------------------------------------------------------------------------------------
# Tokeniser
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("It's a gem!", "it 's a gem !"),
    ("It\u2019s \u2018fine\u2019, isn\u2019t it", "it 's fine , is n't it"),
    ("Cafe\u0301 hindi: \u0939\u093f\u0928\u094d\u0926\u0940!",
     "caf\u00e9 hindi \u0939\u093f\u0928\u094d\u0926\u0940 !"),
    ("Don't, won't, can't", "do n't , wo n't , ca n't"),
    ("I'm sure we've seen they're here, he'd say we'll go",
     "i 'm sure we 've seen they 're here , he 'd say we 'll go"),
    ("(Really?) Yes!!", "( really ? ) yes ! !"),
    ("The Rock's new ''Conan'' rocks.", "the rock 's new conan rocks"),
    ("``Quoted'' and `single' and \"double\"", "quoted and single and double"),
    ("'Hello,' she said of the dogs' bowl", "hello , she said of the dogs bowl"),
    ("O'Neill arrives at five o'clock", "o'neill arrives at five o'clock"),
    ("co-writer/director J.R.R. Tolkien; 3.5 stars", "co writer director j r r tolkien 3 5 stars"),
    ("Clichés and naïveté: MÜNCH_2", "clichés and naïveté münch 2"),
    ("  spaced \t out \n text  ", "spaced out text"),
    ("What 's the shape of a camel 's spine ?", "what 's the shape of a camel 's spine ?"),
    ("", ""),
    ("...", ""),
    # a word may end in a combining mark (after NFC): its contraction splits off all the same
    ("\u0939\u0948's", "\u0939\u0948 's"),
    ("q\u0303's good, isn't it", "q\u0303 's good , is n't it"),
])
def test_clean_str(text, expected):
    assert clean_str(text) == expected
    assert tokenize(text) == expected.split()


def test_clean_str_keeps_case_on_request():
    assert clean_str("What's NASA's budget?", lower=False) == "What 's NASA 's budget ?"
    assert tokenize("Isn't IT", lower=False) == ["Is", "n't", "IT"]


def test_clean_str_errors():
    with pytest.raises(TypeError, match="text must be a str, got 3"):
        clean_str(3)
    with pytest.raises(TypeError, match="text must be a str, got None"):
        tokenize(None)
    with pytest.raises(TypeError, match="lower must be True or False, got 'no'"):
        clean_str("a", lower="no")


@given(st.text(max_size=60))
def test_clean_str_is_idempotent_and_tidy(text):
    once = clean_str(text)
    assert clean_str(once) == once
    assert once == once.strip() and "  " not in once
    assert once == once.lower()


# ------------------------------------------------------------------------------------------
# Vocabulary
# ------------------------------------------------------------------------------------------

SENTENCES = [["a", "gem", "!"], ["a", "dud", "."], ["b", "gem"], ["a"]]


def test_vocab_build_orders_by_count_then_alphabet():
    vocab = Vocab.build(SENTENCES)
    assert vocab.itos == ["<pad>", "<unk>", "a", "gem", "!", ".", "b", "dud"]
    assert vocab.pad_index == 0 and vocab.unk_index == 1
    assert vocab.counts == {"a": 3, "gem": 2, "!": 1, ".": 1, "b": 1, "dud": 1}
    assert Vocab.build(SENTENCES[::-1]) == vocab  # independent of the order of the sentences
    assert len(vocab) == 8 and "gem" in vocab and "film" not in vocab
    assert vocab["gem"] == 3 and vocab["film"] == 1
    assert repr(vocab) == "Vocab(size=8)"


def test_vocab_min_count_max_size_and_specials():
    assert Vocab.build(SENTENCES, min_count=2).itos == ["<pad>", "<unk>", "a", "gem"]
    assert Vocab.build(SENTENCES, max_size=3).itos == ["<pad>", "<unk>", "a"]
    vocab = Vocab.build([["<pad>", "x", "<unk>", "x"]])
    assert vocab.itos == ["<pad>", "<unk>", "x"]
    assert Vocab(["x", "y", "x", "<unk>"]).itos == ["<pad>", "<unk>", "x", "y"]
    assert Vocab.build(iter([["x"]])).itos == ["<pad>", "<unk>", "x"]  # any iterable


def test_vocab_encode_decode():
    vocab = Vocab.build(SENTENCES)
    ids = vocab.encode(["a", "film", "gem"])
    assert ids.dtype == np.int64 and ids.tolist() == [2, 1, 3]
    assert vocab.encode([]).shape == (0,)
    assert [a.tolist() for a in vocab.encode_many([["b"], [], ["dud", "a"]])] == [[6], [], [7, 2]]
    assert vocab.decode(np.array([2, 1, 3, 0, 0])) == ["a", "<unk>", "gem"]
    assert vocab.decode([2, 0], skip_pad=False) == ["a", "<pad>"]
    assert vocab.decode([]) == []
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 8\), got \[8\]"):
        vocab.decode([8])
    with pytest.raises(TypeError, match="indices must be a 1-D sequence of ints"):
        vocab.decode([[1]])


def test_vocab_round_trips(tmp_path):
    vocab = Vocab.build([["clichés", "a", "a"]])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded.counts == vocab.counts
    assert Vocab.from_dict(vocab.to_dict()).itos == vocab.itos
    with pytest.raises(ValueError, match=r"d\['itos'\] must start with \['<pad>', '<unk>'\]"):
        Vocab.from_dict({"itos": ["a", "b"]})
    with pytest.raises(TypeError, match="d must be a dict from Vocab.to_dict()"):
        Vocab.from_dict(["<pad>"])


def test_vocab_errors():
    with pytest.raises(ValueError, match="min_count must be an int >= 1, got 0"):
        Vocab.build(SENTENCES, min_count=0)
    with pytest.raises(TypeError, match="min_count must be an int >= 1, got 1.5"):
        Vocab.build(SENTENCES, min_count=1.5)
    with pytest.raises(ValueError, match="max_size must be an int >= 2, got 1"):
        Vocab.build(SENTENCES, max_size=1)
    with pytest.raises(TypeError, match=r"sentences\[1\] must be a sequence of str tokens, not a "
                                        r"str \(tokenize it first\)"):
        Vocab.build([["a"], "a film"])
    with pytest.raises(TypeError, match="sentences must be an iterable of token lists"):
        Vocab.build("a film")
    with pytest.raises(TypeError, match=r"sentences\[0\] must hold str tokens, got 3"):
        Vocab.build([["a", 3]])
    with pytest.raises(TypeError, match="tokens must be a sequence of str tokens, not a str"):
        Vocab(["a"]).encode("a")
    for bad in (None, 5):
        with pytest.raises(TypeError, match=f"sentences must be an iterable of token lists, "
                                            f"got {bad}"):
            Vocab.build(bad)
        with pytest.raises(TypeError, match=f"sentences must be a list of token lists, "
                                            f"got {bad}"):
            Vocab(["a"]).encode_many(bad)
    class Sentences:             # the sequence protocol only, as a torch-style Dataset
        def __getitem__(self, i):
            return [["a", "b"], ["b", "c"]][i]

        def __len__(self):
            return 2

    assert Vocab.build(Sentences()).itos[2:] == ["b", "a", "c"]
    assert [s.tolist() for s in Vocab(["a"]).encode_many(Sentences())] == [[2, 1], [1, 1]]
    for counts in (None, ["a"], {"a": "2"}, {"a": True}):
        with pytest.raises(TypeError, match=r"d\['counts'\] must be a dict of token counts"):
            Vocab.from_dict({"itos": ["<pad>", "<unk>", "a"], "counts": counts})


# ------------------------------------------------------------------------------------------
# Padding and batching
# ------------------------------------------------------------------------------------------

def test_pad_batch_widths():
    x, lengths = pad_batch([np.array([5, 6, 7]), [8], []])
    assert x.dtype == np.int64 and lengths.dtype == np.int64
    assert x.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert lengths.tolist() == [3, 1, 0]
    x, _ = pad_batch([[5, 6, 7], [8]], min_length=5, pad_index=9, dtype=np.int32)
    assert x.dtype == np.int32 and x.tolist() == [[5, 6, 7, 9, 9], [8, 9, 9, 9, 9]]
    x, lengths = pad_batch([[1, 2, 3, 4, 5], [6]], min_length=2, max_length=3)
    assert x.tolist() == [[1, 2, 3], [6, 0, 0]] and lengths.tolist() == [3, 1]
    x, _ = pad_batch([[]])
    assert x.shape == (1, 1)


def test_pad_batch_errors():
    with pytest.raises(ValueError, match="sequences must hold at least one sequence"):
        pad_batch([])
    with pytest.raises(ValueError, match="min_length must be an int >= 1, got 0"):
        pad_batch([[1]], min_length=0)
    with pytest.raises(ValueError, match=r"max_length must be >= min_length \(5\), got 3"):
        pad_batch([[1]], min_length=5, max_length=3)
    with pytest.raises(ValueError, match="pad_index must be an int >= 0, got -1"):
        pad_batch([[1]], pad_index=-1)
    with pytest.raises(TypeError, match="dtype must be an integer dtype"):
        pad_batch([[1]], dtype=np.float32)
    with pytest.raises(TypeError, match=r"sequences\[1\] must be a 1-D integer array"):
        pad_batch([[1], [0.5]])
    with pytest.raises(TypeError, match=r"sequences\[0\] must be a 1-D integer array"):
        pad_batch([[[1]]])
    with pytest.raises(TypeError, match="sequences must be a sequence of 1-D integer arrays"):
        pad_batch("abc")


def test_length_mask():
    assert length_mask([2, 0, 3], 4).tolist() == [[True, True, False, False], [False] * 4,
                                                  [True, True, True, False]]
    assert length_mask(np.array([1, 2])).shape == (2, 2)
    with pytest.raises(TypeError, match="lengths must be a 1-D integer array"):
        length_mask([0.5])
    with pytest.raises(ValueError, match=r"lengths must be >= 0, got array\(\[ 1, -1\]\)"):
        length_mask([1, -1], 2)


SEQS = [np.arange(2, 2 + n) for n in [3, 1, 5, 2, 4, 1, 6]]
LABELS = np.array([0, 1, 0, 1, 1, 0, 1])


def test_iterate_batches_in_order_pads_each_batch_to_its_own_longest():
    batches = list(iterate_batches(SEQS, LABELS, batch_size=3, min_length=2))
    assert all(isinstance(b, Batch) for b in batches)
    assert [b.indices.tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.x.shape for b in batches] == [(3, 5), (3, 4), (1, 6)]
    assert [b.y.tolist() for b in batches] == [[0, 1, 0], [1, 1, 0], [1]]
    assert batches[0].lengths.tolist() == [3, 1, 5]
    assert batches[0].x[1].tolist() == [2, 0, 0, 0, 0]
    short = list(iterate_batches([[4], [5]], batch_size=2, min_length=5))
    assert short[0].x.shape == (2, 5) and short[0].y is None
    assert len(list(iterate_batches(SEQS, batch_size=3, drop_last=True))) == 2
    assert list(iterate_batches([], batch_size=3)) == []


def test_iterate_batches_shuffles_deterministically():
    def order(**kw):
        return np.concatenate([b.indices for b in iterate_batches(SEQS, LABELS, batch_size=2,
                                                                  shuffle=True, **kw)])
    first = order(seed=7)
    assert sorted(first.tolist()) == list(range(7))
    assert np.array_equal(first, order(seed=7))
    assert any(not np.array_equal(first, order(seed=s)) for s in range(8, 12))
    rng = np.random.default_rng(7)
    epoch1, epoch2 = order(seed=rng), order(seed=rng)
    assert np.array_equal(epoch1, first)  # a fresh Generator(7) draws the same permutation
    assert not np.array_equal(epoch1, epoch2)
    for b in iterate_batches(SEQS, LABELS, batch_size=2, shuffle=True, seed=3):
        assert b.y.tolist() == LABELS[b.indices].tolist()
        for row, i, n in zip(b.x, b.indices, b.lengths):
            assert row[:n].tolist() == SEQS[i].tolist() and not row[n:].any()


def test_iterate_batches_errors():
    with pytest.raises(ValueError, match=r"labels must have one entry per sequence \(7\), got "
                                         r"shape \(2,\)"):
        iterate_batches(SEQS, [0, 1])
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        iterate_batches(SEQS, batch_size=0)
    with pytest.raises(TypeError, match="shuffle must be True or False, got 1"):
        iterate_batches(SEQS, shuffle=1)
    with pytest.raises(TypeError, match="drop_last must be True or False, got None"):
        iterate_batches(SEQS, drop_last=None)
    with pytest.raises(TypeError, match="seed must be an int >= 0 or a numpy.random.Generator, "
                                        "got None"):
        iterate_batches(SEQS, shuffle=True, seed=None)
    with pytest.raises(ValueError, match="seed must be an int >= 0 or a numpy.random.Generator, "
                                         "got -1"):
        iterate_batches(SEQS, shuffle=True, seed=-1)
    for bad in ("a", 1.5):      # checked without shuffle too
        with pytest.raises(TypeError, match="seed must be an int >= 0 or a numpy.random"):
            iterate_batches(SEQS, seed=bad)
    with pytest.raises(ValueError, match="min_length must be an int >= 1, got 0"):
        iterate_batches(SEQS, min_length=0)  # checked at the call, not at the first batch
    with pytest.raises(ValueError, match="pad_index must be an int >= 0, got -2"):
        iterate_batches(SEQS, pad_index=-2)


# ------------------------------------------------------------------------------------------
# Splits
# ------------------------------------------------------------------------------------------

def _check_partition(parts, n):
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(n))
    for p in parts:
        assert p.dtype == np.int64 and np.all(np.diff(p) > 0)


def test_train_dev_test_split():
    train, dev, test = train_dev_test_split(1000, seed=0)
    _check_partition((train, dev, test), 1000)
    assert (len(train), len(dev), len(test)) == (800, 100, 100)
    again = train_dev_test_split(1000, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((train, dev, test), again))
    other = train_dev_test_split(1000, seed=1)
    assert not np.array_equal(test, other[2])
    train, dev, test = train_dev_test_split(10, (0.7, 0.0, 0.3), seed=2)
    assert (len(train), len(dev), len(test)) == (7, 0, 3)
    assert train_dev_test_split(1, seed=0)[0].tolist() == [0]


def test_train_dev_test_split_stratified():
    labels = np.array([0] * 80 + [1] * 20 + [2] * 10)
    train, dev, test = train_dev_test_split(len(labels), seed=5, stratify=labels)
    _check_partition((train, dev, test), len(labels))
    assert np.bincount(labels[test]).tolist() == [8, 2, 1]
    assert np.bincount(labels[dev]).tolist() == [8, 2, 1]
    assert np.bincount(labels[train]).tolist() == [64, 16, 8]
    words = np.array(["pos", "neg"] * 10)  # any label type
    _check_partition(train_dev_test_split(20, stratify=words), 20)


def test_split_errors():
    with pytest.raises(ValueError, match=r"fractions must be 3 non-negative numbers summing to "
                                         r"1, got \(0.8, 0.1\)"):
        train_dev_test_split(10, (0.8, 0.1))
    with pytest.raises(ValueError, match="summing to 1"):
        train_dev_test_split(10, (0.8, 0.3, -0.1))
    with pytest.raises(TypeError, match="fractions must be 3 numbers, got 'abc'"):
        train_dev_test_split(10, "abc")
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        train_dev_test_split(0)
    with pytest.raises(TypeError, match=r"n must be an int >= 1, got \[1, 2\]"):
        train_dev_test_split([1, 2])
    with pytest.raises(ValueError, match=r"stratify must be a 1-D array of 10 labels, got shape "
                                         r"\(3,\)"):
        train_dev_test_split(10, stratify=[0, 1, 0])


def test_kfold_indices():
    folds = kfold_indices(23, k=5, seed=3)
    assert len(folds) == 5
    tests = [test for _, test in folds]
    _check_partition(tests, 23)
    assert sorted(len(t) for t in tests) == [4, 4, 5, 5, 5]
    for train, test in folds:
        _check_partition((train, test), 23)
    again = kfold_indices(23, k=5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))


def test_kfold_indices_stratified():
    labels = np.array([0] * 47 + [1] * 13 + [2] * 5)
    folds = kfold_indices(len(labels), k=10, seed=0, stratify=labels)
    _check_partition([t for _, t in folds], len(labels))
    counts = np.array([np.bincount(labels[t], minlength=3) for _, t in folds])
    assert np.all(counts.max(axis=0) - counts.min(axis=0) <= 1)
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 1


def test_kfold_errors():
    with pytest.raises(ValueError, match="k must be an int >= 2, got 1"):
        kfold_indices(10, k=1)
    with pytest.raises(ValueError, match=r"k must be <= n \(3\), got 5"):
        kfold_indices(3, k=5)


@given(st.integers(1, 60), st.integers(0, 2 ** 31), st.integers(1, 4))
def test_splits_partition_property(n, seed, n_classes):
    labels = np.arange(n) % n_classes
    _check_partition(train_dev_test_split(n, seed=seed, stratify=labels), n)
    if n >= 2:
        k = min(n, 2 + seed % 9)
        folds = kfold_indices(n, k=k, seed=seed, stratify=labels)
        _check_partition([t for _, t in folds], n)
        assert max(len(t) for _, t in folds) - min(len(t) for _, t in folds) <= 1


def test_pad_batch_refuses_what_its_dtype_cannot_hold():
    """Token indices beyond the dtype wrapped (40000 -> -25536 in int16) and negative ones
    passed; a min_length that would not fit memory asked numpy for petabytes."""
    with pytest.raises(ValueError, match=r"token indices in \[0, 32767\]"):
        pad_batch([[40000, 5]], dtype=np.int16)
    with pytest.raises(ValueError, match="token indices"):
        pad_batch([[2, -1]])
    with pytest.raises(ValueError, match="pad_index 300 does not fit dtype int8"):
        pad_batch([[1]], pad_index=300, dtype=np.int8)
    with pytest.raises(ValueError, match="would need"):
        pad_batch([[1]] * 1000, min_length=10 ** 12)
    assert pad_batch([[1, 2]], dtype=np.int8)[0].tolist() == [[1, 2]]


@pytest.mark.parametrize("fractions", [(math.nan, 0.5, 0.5), (0.5, math.nan, 0.5)])
def test_split_fractions_must_be_numbers(fractions):
    with pytest.raises(ValueError, match="fractions must be 3 non-negative numbers"):
        train_dev_test_split(10, fractions)


def test_vocab_files_fail_whole(tmp_path):
    """save() encodes before it opens the file, so an unwritable word leaves the earlier
    file as it was (it was truncated); load() of a damaged file names it."""
    path = tmp_path / "vocab.json"
    Vocab(["good"]).save(path)
    with pytest.raises(ValueError, match="not valid Unicode"):
        Vocab(["bad\udc80"]).save(path)
    assert Vocab.load(path).itos[-1] == "good"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="vocab.json is not a vocabulary written by"):
        Vocab.load(path)
