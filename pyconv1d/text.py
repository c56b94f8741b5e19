"""Text front-end for sentence classification: tokeniser, vocabulary, padded batches, splits.

The pieces a Kim (2014) CNN needs, reusable on their own:

- :func:`clean_str` / :func:`tokenize`: Kim's clean-up (keep letters, digits and a little
  punctuation; split off contractions and ``, ! ? ( )``; collapse spaces; lower-case).
- :class:`Vocab`: tokens to indices with a minimum count, ``<pad>`` = 0 and ``<unk>`` = 1.
- :func:`pad_batch` / :func:`iterate_batches`: batches padded to their longest sentence and to
  at least the widest filter, in a deterministic seeded order.
- :func:`train_dev_test_split` / :func:`kfold_indices`: seeded (optionally stratified) splits.

Examples
--------
>>> from pyconv1d.text import Vocab, tokenize, pad_batch
>>> sentences = [tokenize(s) for s in ["It's a gem!", "A dud, isn't it?"]]
>>> sentences[0]
['it', "'s", 'a', 'gem', '!']
>>> vocab = Vocab.build(sentences)
>>> x, lengths = pad_batch(vocab.encode_many(sentences), min_length=5)
>>> x.shape, lengths.tolist()
((2, 7), [5, 7])
"""
import json
import numbers
import os
import re
import unicodedata
from collections import Counter, namedtuple

import numpy as np

from . import _checks

__all__ = [
    "Batch",
    "Vocab",
    "clean_str",
    "iterate_batches",
    "kfold_indices",
    "length_mask",
    "pad_batch",
    "tokenize",
    "train_dev_test_split",
]

PAD = "<pad>"
UNK = "<unk>"
PAD_INDEX = 0
UNK_INDEX = 1


def _iterable(value):
    """Whether iter() takes ``value`` (the sequence protocol too: a class with __getitem__)."""
    try:
        iter(value)
    except TypeError:
        return False
    return True


def _word_char(c):
    """A letter, a digit or a combining mark (which belongs to the letter before it)."""
    return c.isalnum() or unicodedata.category(c)[0] == "M"


# Anything other than a letter, a digit or ( ) , ! ? ' ` becomes a space (\w minus "_").
_NOT_KEPT = re.compile(r"[^\w(),!?'`]|_")
# Paired quote marks: `` '' and a lone ` (they are quotes, not apostrophes).
_QUOTES = re.compile(r"``|''|`")
# Contractions split off the word before them: it's -> it 's, isn't -> is n't, ... (the
# word's last character is checked in _split_contractions: \w misses combining marks)
_CONTRACTION = re.compile(r"(?:'s|'ve|'re|'d|'ll|'m|n't)\b", re.IGNORECASE)
# An apostrophe that opens a word (but not a contraction such as 's) or closes one: a quote.
_OPEN_QUOTE = re.compile(r"(?<!\w)'(?!(?:s|ve|re|d|ll|m|t)\b)", re.IGNORECASE)
_CLOSE_QUOTE = re.compile(r"(?<=\w)'(?!\w)")
_PUNCT = re.compile(r"([(),!?])")
_SPACES = re.compile(r"\s+")
# Typographic apostrophes (it’s) act like the ASCII one.
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def _keep_word_chars(s):
    """Step 1 of :func:`clean_str`: other characters become spaces."""
    if s.isascii():
        return _NOT_KEPT.sub(" ", s)
    # Combining marks (Devanagari vowel signs, accents NFC cannot compose) belong to their word.
    return "".join(c if _word_char(c) or c in "(),!?'`" else " " for c in s)


def _split_contractions(s):
    """Step 2 of :func:`clean_str`: a space before each contraction that follows a word (whose
    last character may be a combining mark, as Devanagari vowel signs are)."""
    return _CONTRACTION.sub(
        lambda m: " " + m.group(0) if m.start() and _word_char(s[m.start() - 1])
        else m.group(0), s)


def clean_str(text, *, lower=True):
    """Kim (2014)'s sentence clean-up, as a string of space-separated tokens.

    0. Typographic apostrophes (’) become ``'``; lower-casing (``lower=True``); Unicode NFC
       normalisation.
    1. Every character other than a letter, a digit, a combining mark or ``( ) , ! ? ' `` `
       becomes a space: full stops, hyphens, slashes, underscores and other symbols go.
    2. Contractions are split from their word: ``'s 've 're 'd 'll 'm`` and ``n't``
       (``don't`` -> ``do n't``).
    3. Quote marks are dropped: doubled ``''`` and backquotes, and apostrophes that open or close
       a word without being part of a contraction (``'hello'`` -> ``hello``).
    4. ``, ! ? ( )`` become tokens of their own; runs of spaces collapse; ends are stripped.

    Unlike Kim's ASCII-only pattern, letters are any Unicode letters (``clichés`` stays whole,
    which matters for word vectors such as GloVe that contain them), and Kim's list of
    contractions gains ``'m``.

    Parameters
    ----------
    text : str
    lower : bool, default True
        Lower-case the result (Kim keeps case for TREC only).

    Returns
    -------
    str

    Examples
    --------
    >>> from pyconv1d.text import clean_str
    >>> clean_str("The Rock's new ''Conan'' -- isn't it (great)?")
    "the rock 's new conan is n't it ( great ) ?"
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {text!r}")
    if not isinstance(lower, (bool, np.bool_)):
        raise TypeError(f"lower must be True or False, got {lower!r}")
    s = text.translate(_APOSTROPHES)
    if lower:
        s = s.lower()
    s = unicodedata.normalize("NFC", s)  # é as one letter, not e + a combining accent
    s = _keep_word_chars(s)
    s = _QUOTES.sub(" ", s)
    s = _split_contractions(s)
    s = _OPEN_QUOTE.sub(" ", s)
    s = _CLOSE_QUOTE.sub(" ", s)
    s = _PUNCT.sub(r" \1 ", s)
    return _SPACES.sub(" ", s).strip()


def tokenize(text, *, lower=True):
    """Tokens of :func:`clean_str` (``clean_str(text).split()``).

    Parameters
    ----------
    text : str
    lower : bool, default True

    Returns
    -------
    list of str

    Examples
    --------
    >>> from pyconv1d.text import tokenize
    >>> tokenize("Don't miss it -- a gem, really!")
    ['do', "n't", 'miss', 'it', 'a', 'gem', ',', 'really', '!']
    """
    return clean_str(text, lower=lower).split()


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_tokens(tokens, name):
    if isinstance(tokens, str):
        raise TypeError(f"{name} must be a sequence of str tokens, not a str (tokenize it "
                        f"first), got {tokens!r}")
    try:
        tokens = list(tokens)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of str tokens, got {tokens!r}") from None
    for t in tokens:
        if not isinstance(t, str):
            raise TypeError(f"{name} must hold str tokens, got {t!r}")
    return tokens


class Vocab:
    """Token <-> index mapping with ``<pad>`` = 0 and ``<unk>`` = 1.

    Build one with :meth:`build` from tokenised training sentences; tokens seen fewer than
    ``min_count`` times map to ``<unk>``. Tokens are ordered by decreasing count, ties broken
    alphabetically, so the indices do not depend on the order of the sentences.

    Parameters
    ----------
    tokens : sequence of str, default ()
        The tokens after ``<pad>`` and ``<unk>``, in index order (duplicates and the special
        tokens themselves are skipped).

    Attributes
    ----------
    itos : list of str
        ``itos[i]`` is the token of index ``i``; ``itos[0] == '<pad>'``, ``itos[1] == '<unk>'``.
    stoi : dict
        Token to index.
    counts : dict
        Training counts of each token (empty when not built with :meth:`build`).

    Examples
    --------
    >>> from pyconv1d.text import Vocab
    >>> vocab = Vocab.build([["a", "gem"], ["a", "dud"]], min_count=2)
    >>> vocab.itos
    ['<pad>', '<unk>', 'a']
    >>> vocab.encode(["a", "film"]).tolist()
    [2, 1]
    """

    pad_token = PAD
    unk_token = UNK
    pad_index = PAD_INDEX
    unk_index = UNK_INDEX

    def __init__(self, tokens=()):
        tokens = _check_tokens(tokens, "tokens")
        self.itos = [PAD, UNK]
        self.stoi = {PAD: PAD_INDEX, UNK: UNK_INDEX}
        self.counts = {}
        for t in tokens:
            if t not in self.stoi:
                self.stoi[t] = len(self.itos)
                self.itos.append(t)

    @classmethod
    def build(cls, sentences, *, min_count=1, max_size=None):
        """A vocabulary of the tokens of ``sentences``.

        Parameters
        ----------
        sentences : iterable of sequences of str
            Tokenised sentences (training data only, to keep the test set unseen).
        min_count : int, default 1
            Tokens seen fewer times map to ``<unk>``.
        max_size : int, optional
            Keep at most this many tokens (the most frequent), ``<pad>`` and ``<unk>`` included.

        Returns
        -------
        Vocab

        Examples
        --------
        >>> from pyconv1d.text import Vocab
        >>> len(Vocab.build([["b", "a", "b"]]))
        4
        """
        min_count = _check_int(min_count, "min_count", 1)
        if max_size is not None:
            max_size = _check_int(max_size, "max_size", 2)
        if isinstance(sentences, str) or not _iterable(sentences):
            raise TypeError(f"sentences must be an iterable of token lists, got {sentences!r}")
        counter = Counter()
        for i, sentence in enumerate(sentences):
            counter.update(_check_tokens(sentence, f"sentences[{i}]"))
        for special in (PAD, UNK):
            counter.pop(special, None)
        kept = sorted((t for t, c in counter.items() if c >= min_count),
                      key=lambda t: (-counter[t], t))
        if max_size is not None:
            kept = kept[:max_size - 2]
        vocab = cls(kept)
        vocab.counts = {t: counter[t] for t in kept}
        return vocab

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def __getitem__(self, token):
        """Index of ``token`` (``<unk>``'s index for unknown tokens)."""
        return self.stoi.get(token, UNK_INDEX)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.itos == other.itos

    def __repr__(self):
        return f"Vocab(size={len(self)})"

    def encode(self, tokens):
        """Indices of ``tokens`` as an int64 array (unknown tokens -> 1).

        Examples
        --------
        >>> from pyconv1d.text import Vocab
        >>> Vocab(["film"]).encode(["film", "dud"]).tolist()
        [2, 1]
        """
        tokens = _check_tokens(tokens, "tokens")
        return np.fromiter((self.stoi.get(t, UNK_INDEX) for t in tokens), dtype=np.int64,
                           count=len(tokens))

    def encode_many(self, sentences):
        """:meth:`encode` of each tokenised sentence: a list of int64 arrays.

        Examples
        --------
        >>> from pyconv1d.text import Vocab
        >>> [a.tolist() for a in Vocab(["a"]).encode_many([["a"], ["a", "b"]])]
        [[2], [2, 1]]
        """
        if isinstance(sentences, str) or not _iterable(sentences):
            raise TypeError(f"sentences must be a list of token lists, got {sentences!r}")
        return [self.encode(s) for s in sentences]

    def decode(self, indices, *, skip_pad=True):
        """Tokens of ``indices`` (padding dropped when ``skip_pad``).

        Examples
        --------
        >>> from pyconv1d.text import Vocab
        >>> Vocab(["a", "gem"]).decode([2, 3, 1, 0])
        ['a', 'gem', '<unk>']
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise TypeError(f"indices must be a 1-D sequence of ints, got {indices!r}")
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self)}), got {indices!r}")
        return [self.itos[i] for i in idx.tolist() if not (skip_pad and i == PAD_INDEX)]

    def to_dict(self):
        """A JSON-serialisable dict (``Vocab.from_dict`` restores it).

        Examples
        --------
        >>> from pyconv1d.text import Vocab
        >>> v = Vocab.build([["a", "b", "a"]])
        >>> Vocab.from_dict(v.to_dict()) == v
        True
        """
        return {"itos": list(self.itos), "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, d):
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or "itos" not in d:
            raise TypeError(f"d must be a dict from Vocab.to_dict(), got {d!r:.80}")
        itos = _check_tokens(d["itos"], "d['itos']")
        if itos[:2] != [PAD, UNK]:
            raise ValueError(f"d['itos'] must start with {[PAD, UNK]}, got {itos[:2]}")
        vocab = cls(itos[2:])
        counts = d.get("counts", {})
        if not isinstance(counts, dict) or not all(
                isinstance(k, str) and isinstance(v, numbers.Integral)
                and not isinstance(v, (bool, np.bool_)) for k, v in counts.items()):
            raise TypeError(f"d['counts'] must be a dict of token counts (str: int), got "
                            f"{counts!r:.80}")
        vocab.counts = dict(counts)
        return vocab

    def save(self, path):
        """Write the vocabulary as JSON (UTF-8).

        Examples
        --------
        >>> import os, tempfile
        >>> from pyconv1d.text import Vocab
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Vocab(["a"]).save(os.path.join(tmp, "vocab.json"))
        ...     Vocab.load(os.path.join(tmp, "vocab.json")).itos
        ['<pad>', '<unk>', 'a']
        """
        # encoded in full before the file is opened: a word that cannot be written (a lone
        # surrogate) leaves an earlier file as it was
        try:
            data = json.dumps(self.to_dict(), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"the vocabulary holds a word that is not valid Unicode "
                             f"({exc.object[exc.start:exc.end]!r})") from None
        with open(path, "wb") as fh:
            fh.write(data)

    @classmethod
    def load(cls, path):
        """Read a vocabulary written by :meth:`save`."""
        with open(path, "rb") as fh:
            raw = fh.read()
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{os.fspath(path)} is not a vocabulary written by Vocab.save "
                             f"({exc})") from None
        return cls.from_dict(data)


def _as_index_arrays(sequences, name):
    if isinstance(sequences, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of 1-D integer arrays, got {sequences!r}")
    try:
        seqs = list(sequences)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of 1-D integer arrays, got "
                        f"{sequences!r}") from None
    out = []
    for i, s in enumerate(seqs):
        a = np.asarray(s)
        if a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
            raise TypeError(f"{name}[{i}] must be a 1-D integer array, got {s!r:.80}")
        out.append(a)
    return out


def pad_batch(sequences, *, min_length=1, max_length=None, pad_index=PAD_INDEX, dtype=np.int64):
    """Stack index sequences into a padded ``(batch, width)`` array.

    The width is the longest sequence, but at least ``min_length`` (set it to the widest
    convolution filter so that a 'valid' convolution of every row has an output), and at most
    ``max_length`` (longer sequences are truncated).

    Parameters
    ----------
    sequences : sequence of 1-D integer arrays
    min_length : int, default 1
    max_length : int, optional
    pad_index : int, default 0
    dtype : integer dtype, default numpy.int64

    Returns
    -------
    x : ndarray, shape (batch, width)
        Sequence ``i`` in ``x[i, :lengths[i]]``, then ``pad_index``.
    lengths : ndarray of int64, shape (batch,)
        Lengths after truncation (0 for an empty sequence).

    Examples
    --------
    >>> from pyconv1d.text import pad_batch
    >>> x, lengths = pad_batch([[5, 6, 7], [8]], min_length=4)
    >>> x.tolist(), lengths.tolist()
    ([[5, 6, 7, 0], [8, 0, 0, 0]], [3, 1])
    """
    seqs = _as_index_arrays(sequences, "sequences")
    if not seqs:
        raise ValueError("sequences must hold at least one sequence, got an empty sequence")
    min_length = _check_int(min_length, "min_length", 1)
    if max_length is not None:
        max_length = _check_int(max_length, "max_length", 1)
        if max_length < min_length:
            raise ValueError(f"max_length must be >= min_length ({min_length}), got "
                             f"{max_length!r}")
    pad_index = _check_int(pad_index, "pad_index", 0)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be an integer dtype, got {dtype!r}") from None
    if not np.issubdtype(dtype, np.integer):
        raise TypeError(f"dtype must be an integer dtype, got {dtype!r}")
    top = np.iinfo(dtype).max
    if pad_index > top:
        raise ValueError(f"pad_index {pad_index} does not fit dtype {dtype} (at most {top})")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    if max_length is not None:
        lengths = np.minimum(lengths, max_length)
    width = max(int(lengths.max()), min_length)
    _checks.check_fits(len(seqs) * width * 8,
                       f"a batch of {len(seqs)} x {width} (min_length={min_length})")
    # filled as int64 and checked in one pass before the cast, which would wrap silently
    x = np.full((len(seqs), width), pad_index, dtype=np.int64)
    for i, (s, n) in enumerate(zip(seqs, lengths.tolist())):
        x[i, :n] = s[:n]
    if x.min() < 0 or x.max() > top:
        bad = int(np.flatnonzero(((x < 0) | (x > top)).any(axis=1))[0])
        raise ValueError(f"sequences[{bad}] must hold token indices in [0, {top}] (dtype "
                         f"{dtype}), got {seqs[bad]!r:.80}")
    return x.astype(dtype, copy=False), lengths


def length_mask(lengths, width=None):
    """Boolean ``(batch, width)`` mask: True on the real tokens, False on padding.

    Examples
    --------
    >>> from pyconv1d.text import length_mask
    >>> length_mask([2, 1], 3).astype(int).tolist()
    [[1, 1, 0], [1, 0, 0]]
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or (lengths.size and not np.issubdtype(lengths.dtype, np.integer)):
        raise TypeError(f"lengths must be a 1-D integer array, got {lengths!r}")
    if lengths.size and lengths.min() < 0:
        raise ValueError(f"lengths must be >= 0, got {lengths!r}")
    if width is None:
        width = int(lengths.max()) if lengths.size else 0
    width = _check_int(width, "width", 0)
    return np.arange(width) < lengths[:, None]


Batch = namedtuple("Batch", ["x", "y", "lengths", "indices"])
Batch.__doc__ = """One padded batch from :func:`iterate_batches`.

x : ndarray (batch, width) of token indices
y : ndarray of labels (None when no labels were given)
lengths : ndarray of int64, the unpadded lengths
indices : ndarray of int64, positions of these sentences in the input
"""


def _rng(seed, name="seed"):
    return np.random.default_rng(_checks.check_seed(seed, name))


def iterate_batches(sequences, labels=None, *, batch_size=50, shuffle=False, seed=0,
                    min_length=1, max_length=None, pad_index=PAD_INDEX, drop_last=False):
    """Yield padded batches of index sequences (and their labels).

    Each batch is padded to its own longest sentence (at least ``min_length``), not to the longest
    of the data set. With ``shuffle`` the order is a permutation drawn from ``seed``: an int gives
    the same order on every call (pass ``seed + epoch`` for a new order each epoch), a
    ``numpy.random.Generator`` advances, so successive calls differ but a seeded run repeats.

    Parameters
    ----------
    sequences : sequence of 1-D integer arrays
    labels : array_like, optional
        One label per sequence.
    batch_size : int, default 50
    shuffle : bool, default False
    seed : int or numpy.random.Generator, default 0
    min_length : int, default 1
        Minimum width (the widest filter).
    max_length : int, optional
        Truncate longer sequences.
    pad_index : int, default 0
    drop_last : bool, default False
        Skip a final batch smaller than ``batch_size``.

    Yields
    ------
    Batch
        ``(x, y, lengths, indices)``.

    Examples
    --------
    >>> from pyconv1d.text import iterate_batches
    >>> seqs = [[2, 3], [4], [5, 6, 7]]
    >>> for b in iterate_batches(seqs, [0, 1, 0], batch_size=2, min_length=3):
    ...     print(b.x.tolist(), b.y.tolist(), b.lengths.tolist())
    [[2, 3, 0], [4, 0, 0]] [0, 1] [2, 1]
    [[5, 6, 7]] [0] [3]
    """
    seqs = _as_index_arrays(sequences, "sequences")
    n = len(seqs)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.ndim < 1 or labels.shape[0] != n:
            raise ValueError(f"labels must have one entry per sequence ({n}), got shape "
                             f"{labels.shape}")
    batch_size = _check_int(batch_size, "batch_size", 1)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    if not isinstance(drop_last, (bool, np.bool_)):
        raise TypeError(f"drop_last must be True or False, got {drop_last!r}")
    _checks.check_seed(seed, "seed")      # even when unused, as with shuffle
    # Check the padding arguments now rather than at the first batch.
    pad_batch([np.zeros(0, dtype=np.int64)], min_length=min_length, max_length=max_length,
              pad_index=pad_index)
    order = _rng(seed).permutation(n) if shuffle else np.arange(n)
    return _batches(seqs, labels, order, batch_size, min_length, max_length, pad_index,
                    drop_last)


def _batches(seqs, labels, order, batch_size, min_length, max_length, pad_index, drop_last):
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        if drop_last and len(idx) < batch_size:
            return
        x, lengths = pad_batch([seqs[i] for i in idx], min_length=min_length,
                               max_length=max_length, pad_index=pad_index)
        yield Batch(x, None if labels is None else labels[idx], lengths, idx.astype(np.int64))


def _check_n(n, stratify, name="n"):
    n = _check_int(n, name, 1)
    if stratify is not None:
        stratify = np.asarray(stratify)
        if stratify.ndim != 1 or stratify.shape[0] != n:
            raise ValueError(f"stratify must be a 1-D array of {n} labels, got shape "
                             f"{stratify.shape}")
    return n, stratify


def _grouped_permutation(n, stratify, rng):
    """A permutation of range(n); with stratify, the classes one after another, each shuffled."""
    if stratify is None:
        return [rng.permutation(n)]
    _, inverse = np.unique(stratify, return_inverse=True)
    return [rng.permutation(np.flatnonzero(inverse == c)) for c in range(inverse.max() + 1)]


def train_dev_test_split(n, fractions=(0.8, 0.1, 0.1), *, seed=0, stratify=None):
    """Seeded train/dev/test index split.

    Parameters
    ----------
    n : int
        Number of examples.
    fractions : tuple of 3 floats, default (0.8, 0.1, 0.1)
        Train, dev and test shares; non-negative, summing to 1. Sizes are rounded for dev and
        test; train takes the rest.
    seed : int or numpy.random.Generator, default 0
    stratify : array_like, optional
        Labels: split each class in the same proportions.

    Returns
    -------
    train, dev, test : ndarray of int64
        Sorted, disjoint indices covering ``range(n)``.

    Examples
    --------
    >>> from pyconv1d.text import train_dev_test_split
    >>> train, dev, test = train_dev_test_split(10, seed=1)
    >>> len(train), len(dev), len(test)
    (8, 1, 1)
    """
    n, stratify = _check_n(n, stratify)
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise TypeError(f"fractions must be 3 numbers, got {fractions!r}") from None
    if len(fr) != 3 or not all(f >= 0 for f in fr) or abs(sum(fr) - 1) > 1e-9:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got "
                         f"{fractions!r}")
    rng = _rng(seed)
    train, dev, test = [], [], []
    for group in _grouped_permutation(n, stratify, rng):
        m = len(group)
        n_test = int(round(fr[2] * m))
        n_dev = min(int(round(fr[1] * m)), m - n_test)
        test.append(group[:n_test])
        dev.append(group[n_test:n_test + n_dev])
        train.append(group[n_test + n_dev:])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in (train, dev, test))


def kfold_indices(n, k=10, *, seed=0, stratify=None):
    """Seeded k-fold cross-validation indices.

    Fold sizes differ by at most one; with ``stratify`` every class is spread over the folds as
    evenly as possible.

    Parameters
    ----------
    n : int
        Number of examples.
    k : int, default 10
        Number of folds, 2 <= k <= n.
    seed : int or numpy.random.Generator, default 0
    stratify : array_like, optional
        Labels to stratify by.

    Returns
    -------
    list of (train, test) pairs of sorted int64 index arrays
        The ``k`` test sets partition ``range(n)``.

    Examples
    --------
    >>> from pyconv1d.text import kfold_indices
    >>> folds = kfold_indices(7, k=3)
    >>> [len(test) for _, test in folds]
    [3, 2, 2]
    """
    n, stratify = _check_n(n, stratify)
    k = _check_int(k, "k", 2)
    if k > n:
        raise ValueError(f"k must be <= n ({n}), got {k!r}")
    order = np.concatenate(_grouped_permutation(n, stratify, _rng(seed)))
    fold = np.empty(n, dtype=np.int64)
    fold[order] = np.arange(n) % k
    everything = np.arange(n, dtype=np.int64)
    return [(everything[fold != f], everything[fold == f]) for f in range(k)]
