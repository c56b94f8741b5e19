"""Spoken digits: audio -> log-mel spectrogram -> a conv2d or conv1d network built from pyconv1d.

    pip install ".[examples]"
    python examples/spoken_digits.py                              # synthesized corpus, conv2d
    python examples/spoken_digits.py --model conv1d
    python examples/spoken_digits.py --data fsdd                  # real speech (MFCCs)
    python examples/spoken_digits.py --train-synth espeak-ng --test-synth flite
    python examples/spoken_digits.py --data path/to/recordings    # your own folder
    python examples/spoken_digits.py --predict my_digit.wav       # uses --out's model.npz

Data (``--data``)
-----------------
* ``synth`` (default): the committed corpus ``examples/data/spoken_digits`` (espeak-ng and flite
  voices at 8 kHz, split by voice family: no dev or test voice, nor a variant made from one or
  with its formants, is heard in training). With
  ``--train-synth`` / ``--test-synth`` the synthesizers are chosen: train and dev take the
  train and dev voices of ``--train-synth``; the test set is the test voices of ``--test-synth``
  plus every voice of a synthesizer not trained on (``--train-synth espeak-ng --test-synth
  flite`` tests on all 600 flite clips).
* ``fsdd``: the Free Spoken Digit Dataset as 13 MFCCs per frame (``pyconv1d.datasets.
  load_fsdd_mfcc``), seeded stratified 80/20 train/test split by clip (the features carry no
  speaker labels, so test speakers are heard in training), 10 % of train held out as dev.
  The features come precomputed, so each coefficient is standardised with the training set's
  mean and standard deviation (no waveform augmentation is possible).
* a folder: FSDD file names (``{digit}_{speaker}_{n}.wav``) or Speech Commands word folders
  (``pyconv1d.datasets.list_audio_folder``); resampled to 8 kHz. Speech Commands'
  ``validation_list.txt`` / ``testing_list.txt`` are honoured when present; otherwise a seeded
  stratified 80/20 split with 10 % of train as dev.

Front-end
---------
Each clip is trimmed to the word (frames within 40 dB of the loudest 20 ms, 20 ms margins), then
a 256-point (32 ms) Hann STFT every 80 samples (10 ms), 40 Slaney mel bands 20 Hz - 4 kHz, the
natural log, and per-utterance mean and variance normalisation (CMVN) of every band, so gain and
channel colouring drop out.

Variable lengths: every clip is padded with zeros (the mean, after normalisation) to a fixed
number of frames (104 = 1.04 s here, the longest synthesized clip; longer clips lose their
ends), always starting at frame 0, and the global pooling at the end of both networks is
*masked*: the mean and the max over time are taken over the clip's own frames only. Padding
therefore never decides the answer, and batch norm sees batches of one fixed shape, the same in
training and evaluation.

Training-time augmentation (``--data synth`` and folders; never on dev or test)
-------------------------------------------------------------------------------
* speed perturbation (resampling by 0.9 - 1.1: tempo, pitch and formants together, as Kaldi's),
* vocal tract length perturbation (VTLP: the spectrum's frequency axis warped by 0.85 - 1.25,
  a piecewise-linear map that keeps the band edge): voices with shorter or longer vocal tracts,
  such as a female voice when every flite training voice is male,
* pitch shift that leaves the formants in place (half of the clips, by 0.8 - 1.8, log-uniform):
  the log power spectrum is split by cepstral liftering into its envelope and its harmonic fine
  structure, and only the latter is stretched along frequency (the flite training voices speak
  at 100 - 130 Hz; a female voice near 170 - 220 Hz),
* noise mixed in with probability 0.5 (white, pink or brown, 5 - 30 dB SNR),
* SpecAugment (two frequency masks of up to 5 bands, two time masks of up to 8 frames).
For ``fsdd``: SpecAugment time masks only.

Models (``--model``)
--------------------
* ``conv2d``: four blocks Conv2d 3x3 -> BatchNorm2d -> ReLU (-> MaxPool2d 2x2 after the first
  three) with ``w, 2w, 4w, 4w`` channels on the ``(1, mels, frames)`` image, then the masked
  global pool (average over frequency, then mean and max over time), Dropout, Linear.
* ``conv1d``: mel bands (or MFCCs) as channels over time: Conv1d k=5 -> BatchNorm1d -> ReLU,
  then residual depthwise-separable blocks (depthwise Conv1d k=3 with dilation 1, 2, 4, 8, twice,
  -> pointwise Conv1d 1x1 -> BatchNorm1d -> ReLU, plus the input), masked mean/max pool,
  Dropout, Linear.
Adam, cross entropy with label smoothing 0.1, ReduceLROnPlateau on the dev loss (halving after
two flat epochs), early stopping on dev accuracy (ties: lower dev loss) with ``--patience``,
and the best dev epoch's weights kept. Everything random draws from ``--seed``; pyconv1d's
kernels give bitwise identical results for every ``--threads``.

Output (``--out``)
------------------
``metrics.json`` (data, model, test_accuracy, epochs, seconds, dev accuracy, per-synthesizer
test accuracy, accuracy on the Asterisk recordings when installed), ``spectrograms.png``,
``confusion.png``, ``history.json`` and ``model.npz`` (the state dict plus the front-end
settings and label names, under ``__config__``); ``--predict file.wav`` reads it back.
When ``/usr/share/asterisk/sounds/en_US_f_Allison/digits/{0..9}.wav`` exist (Debian package
``asterisk-core-sounds-en-wav``: ten digits recorded by a real speaker), an audio model is also
scored on them.
"""
import argparse
import json
import math
import time
import zipfile
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal

from pyconv1d import audio, datasets, nn, optim

HERE = Path(__file__).resolve().parent
SYNTH_ROOT = HERE / "data" / "spoken_digits"
ASTERISK_DIGITS = Path("/usr/share/asterisk/sounds/en_US_f_Allison/digits")
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SYNTHS = {"espeak": "espeak-ng", "espeak-ng": "espeak-ng", "flite": "flite", "all": "all"}

#: Log-mel front-end for audio (saved with the model, so --predict computes the same features).
FRONTEND = {"kind": "logmel", "sr": 8000, "n_fft": 256, "hop_length": 80, "n_mels": 40,
            "fmin": 20.0, "fmax": 4000.0, "floor": 1e-10, "n_frames": 104, "trim_db": 40.0}

#: Training-time augmentation of waveforms / spectrograms (see the module docstring).
AUGMENT = {"speed": (0.9, 1.1), "vtlp": (0.85, 1.25), "pitch": (0.8, 1.8), "pitch_p": 0.5,
           "noise_p": 0.5, "snr_db": (5.0, 30.0), "freq_masks": 2, "freq_width": 5,
           "time_masks": 2, "time_width": 8}


# --------------------------------------------------------------------------- progress bars

def _tqdm(iterable=None, **kwargs):
    """tqdm when installed (the ``examples`` extra), else a silent stand-in."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar(iterable)
    return tqdm(iterable, **kwargs)


class _NoBar:
    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


def _log(msg):
    try:
        from tqdm.auto import tqdm
        tqdm.write(msg)
    except ImportError:
        print(msg, flush=True)


# --------------------------------------------------------------------------- front-end

def trim(x, sr, top_db=40.0, frame_ms=20.0, margin_ms=20.0):
    """Cut leading and trailing silence: keep 20 ms frames within ``top_db`` of the loudest."""
    n = max(int(sr * frame_ms / 1000), 1)
    hop = max(n // 2, 1)
    if len(x) <= n:
        return x
    power = (audio.frame(x, n, hop).astype(np.float64) ** 2).mean(axis=1)
    db = 10 * np.log10(power + 1e-12)
    loud = np.flatnonzero(db > db.max() - top_db)
    margin = int(sr * margin_ms / 1000)
    start = max(loud[0] * hop - margin, 0)
    end = min(loud[-1] * hop + n + margin, len(x))
    return x[start:end]


def warp_matrix(alpha, n_bins, edge=0.8):
    """VTLP as a matrix ``W`` with ``(W @ S)[k] = S(g(k))``: bin ``k`` takes the power of bin
    ``g(k) = k / alpha`` below ``edge * n_bins * min(1, alpha)``, then a straight line to the
    last bin (so the band edge stays put). ``alpha > 1`` moves formants up."""
    k = np.arange(n_bins, dtype=np.float64)
    top = n_bins - 1
    b = edge * top * min(1.0, alpha)
    src = np.where(k <= b, k / alpha, b / alpha + (k - b) * (top - b / alpha) / (top - b))
    src = np.clip(src, 0, top)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, top)
    frac = src - lo
    W = np.zeros((n_bins, n_bins))
    W[k.astype(int), lo] += 1 - frac
    W[k.astype(int), hi] += frac
    return W


def colored_noise(n, kind, rng):
    """Unit-power white, pink (1/f power) or brown (1/f^2) noise of ``n`` samples."""
    z = rng.standard_normal(n)
    if kind != "white":
        spec = scipy.fft.rfft(z)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 if kind == "pink" else 1.0)
        spec[0] = 0.0
        z = scipy.fft.irfft(spec, n)
    return z / max(float(np.sqrt(np.mean(z ** 2))), 1e-12)


def interp_rows(factor, n_rows):
    """Rows ``lo``, ``hi`` and weights with ``out[k] = in(k / factor)`` (clamped at the edge)."""
    src = np.clip(np.arange(n_rows) / factor, 0, n_rows - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n_rows - 1)
    return lo, hi, (src - lo).astype(np.float32)[:, None]


def shift_pitch(S, factor, lifter=24):
    """Formant-preserving pitch shift of a power spectrogram ``(F, T)``, source-filter style.

    The log spectrum is split by cepstral liftering into a smooth envelope (the first
    ``lifter`` DCT coefficients: formants, ~330 Hz detail over 4 kHz) and the rest (the
    harmonics of the voice's pitch); only the latter is stretched along frequency by
    ``factor``. Only the power is used downstream, so no phase needs to be rebuilt.
    """
    logS = np.log(np.maximum(S, 1e-10))
    c = scipy.fft.dct(logS, type=2, norm="ortho", axis=0)
    c[lifter:] = 0
    env = scipy.fft.idct(c, type=2, norm="ortho", axis=0)
    fine = logS - env
    lo, hi, w = interp_rows(factor, S.shape[0])
    fine = fine[lo] * (1 - w) + fine[hi] * w
    return np.exp(env + fine).astype(np.float32)


class FrontEnd:
    """Waveform -> normalised log-mel spectrogram ``(n_mels, T)``, with optional augmentation."""

    def __init__(self, cfg):
        self.cfg = dict(cfg)
        self.fb = audio.mel_filterbank(cfg["sr"], cfg["n_fft"], cfg["n_mels"], cfg["fmin"],
                                       cfg["fmax"]).astype(np.float32)
        self._warped = {}     # VTLP range -> (warps, filterbanks applied to warped spectra)

    def warped_filterbank(self, vtlp, rng):
        """``fb @ warp_matrix(alpha)`` for an alpha drawn from ``vtlp`` (41 steps, precomputed)."""
        if vtlp not in self._warped:
            alphas = np.linspace(vtlp[0], vtlp[1], 41)
            n_bins = self.fb.shape[1]
            self._warped[vtlp] = np.stack([self.fb @ warp_matrix(a, n_bins).astype(np.float32)
                                           for a in alphas])
        banks = self._warped[vtlp]
        return banks[rng.integers(len(banks))]

    def waveform(self, x):
        return trim(np.asarray(x, np.float32), self.cfg["sr"], self.cfg["trim_db"])

    def __call__(self, x, rng=None, aug=None):
        """``x``: a trimmed waveform at ``cfg['sr']``; with ``aug``, ``rng`` draws the
        augmentation. Returns float32 ``(n_mels, T)``, T not yet padded."""
        c = self.cfg
        if aug:
            lo, hi = aug["speed"]
            speed = rng.uniform(lo, hi)
            down = int(round(100 * speed))
            if down != 100:
                x = scipy.signal.resample_poly(x, 100, down).astype(np.float32)
            if rng.random() < aug["noise_p"]:
                kind = ("white", "pink", "brown")[rng.integers(3)]
                snr = rng.uniform(*aug["snr_db"])
                power = float(np.mean(x.astype(np.float64) ** 2)) + 1e-12
                x = x + (np.sqrt(power / 10 ** (snr / 10))
                         * colored_noise(len(x), kind, rng)).astype(np.float32)
        S = audio.spectrogram(x, c["n_fft"], c["hop_length"])
        if aug and rng.random() < aug["pitch_p"]:
            lo, hi = np.log(aug["pitch"])
            S = shift_pitch(S, float(np.exp(rng.uniform(lo, hi))))
        fb = self.warped_filterbank(tuple(aug["vtlp"]), rng) if aug else self.fb
        L = np.log(np.maximum(fb @ S, np.float32(c["floor"])))
        L = audio.cmvn(L)
        if aug:
            L = audio.spec_augment(L, rng, aug["freq_masks"], aug["freq_width"],
                                   aug["time_masks"], aug["time_width"], value=0.0)
        return L.astype(np.float32)


def pad_batch(feats, n_frames):
    """Zero-pad (or cut) each ``(F, T_i)`` to ``(F, n_frames)``, starting at frame 0.
    Returns the batch ``(N, F, n_frames)`` and the lengths (frames that are the clip's own)."""
    n_feat = feats[0].shape[0]
    out = np.zeros((len(feats), n_feat, n_frames), np.float32)
    lengths = np.empty(len(feats), np.int64)
    for i, f in enumerate(feats):
        t = min(f.shape[1], n_frames)
        out[i, :, :t] = f[:, :t]
        lengths[i] = max(t, 1)
    return out, lengths


class _FeatureSet:
    """Clips whose features ``(F, T_i)`` are padded to ``n_frames`` in batches; without
    augmentation every clip's padded features are computed once and cached. Subclasses give
    ``raw_features(i)`` and ``augmented(i, rng, aug)``."""

    def __init__(self, labels, n_frames, meta=None):
        self.labels = np.asarray(labels, np.int64)
        self.n_frames = n_frames
        self.meta = meta or {}
        self._cache = None

    def __len__(self):
        return len(self.labels)

    def batch(self, idx, rng=None, aug=None):
        if aug is None:
            if self._cache is None:
                self._cache = pad_batch([self.raw_features(i) for i in range(len(self))],
                                        self.n_frames)
            return self._cache[0][idx], self._cache[1][idx]
        return pad_batch([self.augmented(i, rng, aug) for i in idx], self.n_frames)


class AudioSet(_FeatureSet):
    """Clips as trimmed waveforms; log-mel features from the front-end."""

    def __init__(self, waves, labels, frontend, meta=None):
        super().__init__(labels, frontend.cfg["n_frames"], meta)
        self.frontend = frontend
        self.waves = [frontend.waveform(w) for w in waves]

    def raw_features(self, i):
        return self.frontend(self.waves[i])

    def augmented(self, i, rng, aug):
        return self.frontend(self.waves[i], rng, aug)


class SequenceSet(_FeatureSet):
    """Precomputed feature sequences ``(T_i, F)`` (FSDD's MFCCs), standardised per feature."""

    def __init__(self, sequences, labels, mean, std, n_frames):
        super().__init__(labels, n_frames)
        self.seqs = [((s - mean) / std).T.astype(np.float32) for s in sequences]

    def raw_features(self, i):
        return self.seqs[i]

    def augmented(self, i, rng, aug):
        return audio.spec_augment(self.seqs[i], rng, 0, 0, aug["time_masks"],
                                  aug["time_width"], value=0.0)


# --------------------------------------------------------------------------- data

def stratified_split(labels, fraction, rng):
    """Indices ``(rest, held_out)``: ``fraction`` of every class (at least one of a class with
    two or more items) held out, seeded."""
    labels = np.asarray(labels)
    rest, held = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1), len(idx) - 1) if len(idx) > 1 else 0
        held.extend(idx[:k])
        rest.extend(idx[k:])
    return np.sort(np.array(rest, np.int64)), np.sort(np.array(held, np.int64))


def load_synth(train_synth="all", test_synth="all", root=SYNTH_ROOT):
    """The committed corpus as {split: (waves, labels, synthesizers, voices)}."""
    d = audio.load_spoken_digits(root)
    train_set = {"espeak-ng", "flite"} if train_synth == "all" else {train_synth}
    test_set = {"espeak-ng", "flite"} if test_synth == "all" else {test_synth}
    synth = d.synthesizer
    in_train = np.isin(synth, sorted(train_set))
    masks = {
        "train": (d.split == "train") & in_train,
        "dev": (d.split == "dev") & in_train,
        "test": np.isin(synth, sorted(test_set)) & ((d.split == "test") | ~in_train),
    }
    out = {}
    for name, m in masks.items():
        idx = np.flatnonzero(m)
        out[name] = ([d.waveforms[i] for i in idx], d.labels[idx], synth[idx], d.voice[idx])
    return out, d.sr, list(DIGIT_NAMES)


def load_folder(directory, sr, seed):
    """A user's folder (FSDD names or Speech Commands word folders) as
    {split: (waves, labels)} and the label names."""
    files = datasets.list_audio_folder(directory)
    labels = np.asarray(files.labels, np.int64)
    rng = np.random.default_rng(seed)
    if files.splits is not None:
        splits = np.asarray(files.splits)
        train = np.flatnonzero(splits == "train")
        dev = np.flatnonzero(splits == "validation")
        test = np.flatnonzero(splits == "test")
        if len(dev) == 0:
            keep, held = stratified_split(labels[train], 0.1, rng)
            train, dev = train[keep], train[held]
    else:
        train, test = stratified_split(labels, 0.2, rng)
        keep, held = stratified_split(labels[train], 0.1, rng)
        train, dev = train[keep], train[held]
    out = {}
    for name, idx in (("train", train), ("dev", dev), ("test", test)):
        waves = [audio.load(files.paths[i], sr=sr)[0] for i in idx]
        out[name] = (waves, labels[idx], [str(files.paths[i]) for i in idx])
    return out, list(files.label_names)


def build_sets(args):
    """({split: dataset}, config): the datasets and the settings saved with the model."""
    cfg = {"data": args.data, "label_names": list(DIGIT_NAMES)}
    if args.data == "fsdd":
        fsdd = datasets.load_fsdd_mfcc(data_home=args.data_home)
        rng = np.random.default_rng(args.seed)
        train, test = stratified_split(fsdd.labels, 0.2, rng)
        keep, held = stratified_split(fsdd.labels[train], 0.1, rng)
        train, dev = train[keep], train[held]
        frames = np.concatenate([fsdd.sequences[i] for i in train])
        mean, std = frames.mean(axis=0), frames.std(axis=0) + 1e-6
        longest = max(len(s) for s in fsdd.sequences)
        n_frames = int(8 * math.ceil(longest / 8))
        cfg["frontend"] = {"kind": "mfcc-precomputed", "n_mfcc": int(frames.shape[1]),
                           "n_frames": n_frames, "mean": mean.tolist(), "std": std.tolist()}
        sets = {name: SequenceSet([fsdd.sequences[i] for i in idx], fsdd.labels[idx], mean, std,
                                  n_frames)
                for name, idx in (("train", train), ("dev", dev), ("test", test))}
        return sets, cfg
    frontend = FrontEnd(FRONTEND)
    cfg["frontend"] = dict(FRONTEND)
    if args.data == "synth":
        parts, sr, names = load_synth(args.train_synth, args.test_synth)
        cfg.update(train_synth=args.train_synth, test_synth=args.test_synth)
        sets = {}
        for name, (waves, labels, synth, voice) in parts.items():
            sets[name] = AudioSet(waves, labels, frontend, {"synthesizer": synth,
                                                            "voice": voice})
        return sets, cfg
    parts, names = load_folder(args.data, FRONTEND["sr"], args.seed)
    cfg["label_names"] = names
    sets = {name: AudioSet(waves, labels, frontend, {"file": np.array(paths)})
            for name, (waves, labels, paths) in parts.items()}
    return sets, cfg


# --------------------------------------------------------------------------- models

class MaskedStatsPool(nn.Module):
    """Global pooling over the valid frames only: ``(N, C, T)`` or ``(N, C, H, T)`` ->
    ``(N, 2C)`` = [mean over time, max over time] (4-D input is first averaged over H)."""

    def forward(self, x, lengths):
        self._shape = x.shape
        h = x.mean(axis=2) if x.ndim == 4 else x
        n, c, t = h.shape
        lengths = np.clip(np.asarray(lengths), 1, t)
        mask = (np.arange(t)[None, :] < lengths[:, None])[:, None, :]       # (N, 1, T)
        denom = lengths.astype(h.dtype)[:, None]
        mean = np.where(mask, h, 0).sum(axis=2) / denom
        idx = np.where(mask, h, -np.inf).argmax(axis=2)                     # (N, C)
        mx = np.take_along_axis(h, idx[..., None], axis=2)[..., 0]
        self._cache = (mask, denom, idx, h.dtype)
        return np.concatenate([mean, mx], axis=1).astype(h.dtype)

    def backward(self, grad_output):
        mask, denom, idx, dtype = self._saved("_cache")
        c = grad_output.shape[1] // 2
        g_mean, g_max = grad_output[:, :c], grad_output[:, c:]
        g = np.where(mask, (g_mean / denom)[..., None], 0).astype(dtype)
        n = np.arange(g.shape[0])[:, None]
        ch = np.arange(c)[None, :]
        g[n, ch, idx] += g_max
        if len(self._shape) == 4:
            h = self._shape[2]
            g = np.broadcast_to((g / h)[:, :, None, :], self._shape).copy()
        return g


class Residual(nn.Module):
    """``x + body(x)``."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)

    def backward(self, grad_output):
        return grad_output + self.body.backward(grad_output)


def body_layers(kind, n_features, width, layers=nn, residual=Residual):
    """The convolutional body of :class:`DigitNet` as ``(modules, time stride, channels out)``,
    built from ``layers`` (``pyconv1d.nn``, or ``torch.nn`` for the training benchmark's twin,
    which has the same class names) and ``residual`` (a module computing ``x + body(x)``)."""
    if kind == "conv2d":
        chans = [1, width, 2 * width, 4 * width, 4 * width]
        modules = []
        for i in range(4):
            modules += [layers.Conv2d(chans[i], chans[i + 1], 3, padding=1, bias=False),
                        layers.BatchNorm2d(chans[i + 1]), layers.ReLU()]
            if i < 3:
                modules.append(layers.MaxPool2d(2))
        return modules, 8, chans[-1]
    if kind == "conv1d":
        c = width
        modules = [layers.Conv1d(n_features, c, 5, padding="same", bias=False),
                   layers.BatchNorm1d(c), layers.ReLU()]
        for d in (1, 2, 4, 8, 1, 2, 4, 8):
            modules.append(residual(layers.Sequential(
                layers.Conv1d(c, c, 3, padding="same", dilation=d, groups=c),   # depthwise
                layers.Conv1d(c, c, 1, bias=False),                             # pointwise
                layers.BatchNorm1d(c), layers.ReLU())))
        return modules, 1, c
    raise ValueError(f"model must be 'conv2d' or 'conv1d', got {kind!r}")


class DigitNet(nn.Module):
    """A convolutional body, masked mean/max pooling over time, Dropout and Linear.

    ``forward(x, lengths)`` takes features ``(N, F, T)`` and each clip's length in frames.
    """

    def __init__(self, kind, n_features, n_classes, width, dropout=0.2):
        super().__init__()
        self.kind = kind
        modules, self.time_stride, out = body_layers(kind, n_features, width)
        self.body = nn.Sequential(*modules)
        self.pool = MaskedStatsPool()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * out, n_classes)

    def forward(self, x, lengths):
        h = self.body(x[:, None] if self.kind == "conv2d" else x)
        t = h.shape[-1]
        frames = np.minimum(-(-np.asarray(lengths) // self.time_stride), t)
        return self.fc(self.drop(self.pool(h, frames)))

    def backward(self, grad_output, input_grad=True):
        g = self.body.backward(self.pool.backward(self.drop.backward(
            self.fc.backward(grad_output))), input_grad=input_grad)
        if g is None:
            return None
        return g[:, 0] if self.kind == "conv2d" else g


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- training

def evaluate(model, data, batch_size=128):
    """(accuracy, mean cross-entropy, predicted labels, probabilities) in eval mode."""
    model.eval()
    probs = []
    for start in range(0, len(data), batch_size):
        idx = np.arange(start, min(start + batch_size, len(data)))
        x, lengths = data.batch(idx)
        probs.append(softmax(model(x, lengths).astype(np.float64)))
    p = np.concatenate(probs) if probs else np.zeros((0, 1))
    pred = p.argmax(axis=1)
    y = data.labels
    loss = float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean()) if len(y) else 0.0
    acc = float((pred == y).mean()) if len(y) else float("nan")
    return acc, loss, pred, p


def train(model, sets, args, rng, aug):
    """Adam + ReduceLROnPlateau, early stopping on dev accuracy; returns the history."""
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    opt = optim.Adam(model.parameters(), lr=args.lr)
    sched = optim.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=2)
    train_set, dev_set = sets["train"], sets["dev"]
    best, best_state, history, waited = None, None, [], 0
    t_start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(len(train_set))
        batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        if len(batches) > 1 and len(batches[-1]) < 2:         # batch norm needs two clips
            batches[-2] = np.concatenate([batches[-2], batches.pop()])
        bar = _tqdm(batches, desc=f"epoch {epoch}/{args.epochs}", leave=False, unit="batch")
        total, seen = 0.0, 0
        for idx in bar:
            x, lengths = train_set.batch(idx, rng, aug)
            loss = loss_fn(model(x, lengths), train_set.labels[idx])
            opt.zero_grad()
            model.backward(loss_fn.backward(), input_grad=False)   # features need none
            optim.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += loss * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total / seen:.3f}")
        bar.close()
        dev_acc, dev_loss, _, _ = evaluate(model, dev_set)
        sched.step(dev_loss)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": total / seen, "dev_loss": dev_loss,
                        "dev_accuracy": dev_acc, "lr": opt.param_groups[0]["lr"],
                        "seconds": seconds})
        score = (dev_acc, -dev_loss)
        improved = best is None or score > best
        if improved:
            best, best_state, waited = score, model.state_dict(), 0
        else:
            waited += 1
        _log(f"epoch {epoch:3d}  train loss {total / seen:.4f}  dev loss {dev_loss:.4f}  "
             f"dev acc {dev_acc:.4f}  lr {opt.param_groups[0]['lr']:.2g}  {seconds:.1f}s"
             + ("  *" if improved else ""))
        if args.patience and waited >= args.patience:
            _log(f"early stop: no better dev score for {args.patience} epochs")
            break
    model.load_state_dict(best_state)
    return history, time.perf_counter() - t_start


# --------------------------------------------------------------------------- save / load

def save_model(path, model, cfg):
    state = model.state_dict()
    with open(path, "wb") as fh:
        np.savez(fh, __config__=np.array(json.dumps(cfg)), **state)


def load_model(path):
    """(model, settings) that :func:`save_model` wrote to ``path``."""
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"{path} not found: train first, e.g. python examples/spoken_digits.py "
                         f"--out {path.parent}")
    try:        # a damaged or foreign file: name it, not a KeyError deep inside
        with np.load(path, allow_pickle=False) as z:
            cfg = json.loads(str(z["__config__"]))
            state = {k: z[k] for k in z.files if k != "__config__"}
        model = DigitNet(cfg["model"], cfg["n_features"], len(cfg["label_names"]), cfg["width"],
                         cfg["dropout"])
        model.load_state_dict(state)
        if cfg["frontend"]["kind"] == "logmel":     # the whole front end, on 0.25 s of noise
            fe = FrontEnd(cfg["frontend"])
            noise = np.random.default_rng(0).standard_normal(int(cfg["frontend"]["sr"]) // 4)
            pad_batch([fe(fe.waveform(noise))], cfg["frontend"]["n_frames"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile) as e:
        raise SystemExit(f"{path} is not a model saved by this example "
                         f"({type(e).__name__}: {e}); train again with --out {path.parent}") from e
    model.eval()
    return model, cfg


def audio_features(cfg, waves):
    """Features of waveforms (already at the model's rate) for a model trained on audio."""
    fe = FrontEnd(cfg["frontend"])
    return pad_batch([fe(fe.waveform(w)) for w in waves], cfg["frontend"]["n_frames"])


def predict_file(path, model_path):
    model, cfg = load_model(model_path)
    if cfg["frontend"]["kind"] != "logmel":
        raise SystemExit(f"{model_path} was trained on precomputed FSDD MFCCs, whose extraction "
                         f"settings are not known; --predict needs a model trained on audio "
                         f"(--data synth or a folder)")
    try:
        wave, _ = audio.load(path, sr=cfg["frontend"]["sr"])
    except (OSError, RuntimeError) as exc:      # soundfile's LibsndfileError is a RuntimeError
        raise SystemExit(f"--predict: cannot read {path} as audio ({exc})") from None
    if wave.size == 0:
        raise SystemExit(f"--predict: {path} holds no samples")
    x, lengths = audio_features(cfg, [wave])
    p = softmax(model(x, lengths).astype(np.float64))[0]
    k = int(p.argmax())
    name = cfg["label_names"][k]
    digit = str(DIGIT_NAMES.index(name)) if name in DIGIT_NAMES else name
    print(f"{path}: {digit} ({name})  probability {p[k]:.3f}")
    return k, float(p[k])


def score_asterisk(model, cfg):
    """Accuracy on the ten Asterisk 'Allison' digit recordings, or None when absent."""
    files = [ASTERISK_DIGITS / f"{d}.wav" for d in range(10)]
    if cfg["frontend"]["kind"] != "logmel" or cfg["label_names"] != list(DIGIT_NAMES) \
            or not all(f.is_file() for f in files):
        return None
    waves = [audio.load(f, sr=cfg["frontend"]["sr"])[0] for f in files]
    x, lengths = audio_features(cfg, waves)
    model.eval()
    pred = model(x, lengths).argmax(axis=1)
    return {"accuracy": float((pred == np.arange(10)).mean()),
            "predictions": [int(p) for p in pred]}


# --------------------------------------------------------------------------- plots

def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _log("matplotlib is not installed (pip install '.[examples]'): no plots")
        return None
    return plt


def plot_features(path, data, names, title):
    plt = _pyplot()
    if plt is None:
        return
    shown, seen = [], set()
    for i, y in enumerate(data.labels):
        if int(y) not in seen:
            seen.add(int(y))
            shown.append(i)
        if len(shown) == 8:
            break
    fig, axes = plt.subplots(2, 4, figsize=(12, 5), squeeze=False)
    for ax, i in zip(axes.flat, shown):
        f = data.raw_features(i)
        ax.imshow(f, origin="lower", aspect="auto", cmap="magma")
        label = names[int(data.labels[i])]
        extra = data.meta.get("voice")
        ax.set_title(label + (f"\n{extra[i]}" if extra is not None else ""), fontsize=8)
        ax.set_xlabel("frame (10 ms)" if title == "log-mel" else "frame")
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.suptitle(f"{title} features (normalised), test clips")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(path, labels, pred, names, title):
    plt = _pyplot()
    if plt is None:
        return
    k = len(names)
    cm = np.zeros((k, k), np.int64)
    np.add.at(cm, (labels, pred), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="synth",
                   help="'synth' (the committed corpus), 'fsdd' (FSDD MFCCs) or a folder of "
                        "recordings (FSDD names or Speech Commands word folders)")
    p.add_argument("--model", choices=("conv2d", "conv1d"), default="conv2d")
    p.add_argument("--epochs", type=int, default=40, help="at most this many (early stopping)")
    p.add_argument("--patience", type=int, default=8,
                   help="stop after this many epochs without a better dev score (0: never)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="OpenMP threads for the kernels (default: OpenMP's)")
    p.add_argument("--out", default=None,
                   help="output folder (default runs/spoken_digits/<data>-<model>)")
    p.add_argument("--predict", metavar="FILE",
                   help="classify FILE with the model saved in --out, and exit")
    p.add_argument("--train-synth", default="all", choices=sorted(SYNTHS),
                   help="synthesizer(s) to train (and early-stop) on, --data synth")
    p.add_argument("--test-synth", default="all", choices=sorted(SYNTHS),
                   help="synthesizer(s) to test on, --data synth")
    p.add_argument("--width", type=int, default=None,
                   help="channels: conv2d's first block (default 16), conv1d's (default 128)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=True,
                   help="training-time augmentation (speed, VTLP, noise, SpecAugment)")
    p.add_argument("--data-home", default=None,
                   help="cache folder for --data fsdd (default: $PYCONV1D_DATA or ~/...)")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "width", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("patience", "seed"):
        if getattr(args, name) < 0:
            p.error(f"--{name} must be >= 0, got {getattr(args, name)}")
    if not args.lr > 0:
        p.error(f"--lr must be > 0, got {args.lr}")
    for name in ("dropout", "label_smoothing"):
        if not 0 <= getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(args, name)}")
    if args.predict is not None and not args.predict.strip():
        p.error("--predict needs a file name, got an empty one")
    if not args.data.strip():
        p.error("--data needs 'synth', 'fsdd' or a folder, got an empty string")
    args.train_synth = SYNTHS[args.train_synth]
    args.test_synth = SYNTHS[args.test_synth]
    if args.width is None:
        args.width = 16 if args.model == "conv2d" else 128
    if args.out is None:
        name = Path(args.data).name if args.data not in ("synth", "fsdd") else args.data
        if args.data == "synth" and (args.train_synth, args.test_synth) != ("all", "all"):
            name += f"-{args.train_synth}-to-{args.test_synth}"
        args.out = str(Path("runs") / "spoken_digits" / f"{name}-{args.model}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        p.error(f"--out must be a folder, got the file {args.out}")
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    nn.set_num_threads(args.threads)
    if args.predict is not None:
        return predict_file(args.predict, out / "model.npz")
    nn.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    try:
        sets, cfg = build_sets(args)
    except (OSError, datasets.DatasetError) as exc:
        raise SystemExit(f"--data {args.data}: {exc}") from None
    empty = [k for k, v in sets.items() if len(v) == 0]
    if empty:
        raise SystemExit(f"--data {args.data}: no clips for the {' and '.join(empty)} "
                         f"split(s) ({', '.join(f'{k} {len(v)}' for k, v in sets.items())}); "
                         f"it needs recordings of more speakers or files")
    out.mkdir(parents=True, exist_ok=True)
    names = cfg["label_names"]
    n_features = sets["train"].batch(np.arange(1))[0].shape[1]
    _log(f"data {args.data}: train {len(sets['train'])}, dev {len(sets['dev'])}, "
         f"test {len(sets['test'])} clips, {n_features} features, "
         f"{time.perf_counter() - t0:.1f}s to load")
    if args.data == "fsdd":
        aug = {"time_masks": AUGMENT["time_masks"], "time_width": 4} if args.augment else None
    else:
        aug = dict(AUGMENT) if args.augment else None

    model = DigitNet(args.model, n_features, len(names), args.width, args.dropout)
    n_params = sum(p.size for p in model.parameters())
    _log(f"{args.model}: {n_params:,} parameters")
    history, seconds = train(model, sets, args, rng, aug)

    dev_acc, dev_loss, _, _ = evaluate(model, sets["dev"])
    test_acc, test_loss, pred, _ = evaluate(model, sets["test"])
    cfg.update(model=args.model, n_features=int(n_features), width=args.width,
               dropout=args.dropout, seed=args.seed)
    save_model(out / "model.npz", model, cfg)
    best = max(history, key=lambda h: (h["dev_accuracy"], -h["dev_loss"]))
    metrics = {
        "data": args.data, "model": args.model, "test_accuracy": test_acc,
        "test_loss": test_loss, "dev_accuracy": dev_acc, "epochs": len(history),
        "best_epoch": best["epoch"], "seconds": round(seconds, 1),
        "seconds_per_epoch": round(float(np.mean([h["seconds"] for h in history])), 2),
        "threads": args.threads, "seed": args.seed, "parameters": int(n_params),
        "clips": {k: len(v) for k, v in sets.items()}, "augment": aug,
    }
    if args.data == "synth":
        metrics["train_synth"], metrics["test_synth"] = args.train_synth, args.test_synth
        synth = sets["test"].meta["synthesizer"]
        metrics["test_accuracy_by_synthesizer"] = {
            s: float((pred[synth == s] == sets["test"].labels[synth == s]).mean())
            for s in sorted(set(synth.tolist()))}
        voice = sets["test"].meta["voice"]
        wrong = voice[pred != sets["test"].labels]
        metrics["test_errors_by_voice"] = {v: int((wrong == v).sum())
                                           for v in sorted(set(wrong.tolist()))}
    asterisk = score_asterisk(model, cfg)
    if asterisk is not None:
        metrics["asterisk_allison"] = asterisk
    with open(out / "metrics.json", "w") as fh:
        json.dump(metrics, fh, indent=2)
    with open(out / "history.json", "w") as fh:
        json.dump(history, fh, indent=2)
    plot_features(out / "spectrograms.png", sets["test"], names,
                  "MFCC" if args.data == "fsdd" else "log-mel")
    plot_confusion(out / "confusion.png", sets["test"].labels, pred, names,
                   f"{args.data} {args.model}: test accuracy {test_acc:.2%}")
    summary = f"test accuracy {test_acc:.4f}  dev {dev_acc:.4f}"
    if "test_accuracy_by_synthesizer" in metrics:
        summary += "  " + "  ".join(f"{s} {a:.4f}" for s, a in
                                    metrics["test_accuracy_by_synthesizer"].items())
    if asterisk is not None:
        summary += f"  asterisk {asterisk['accuracy']:.2f}"
    print(f"{summary}  ({len(history)} epochs, {seconds:.0f}s) -> {out}")
    return metrics


if __name__ == "__main__":
    main()
