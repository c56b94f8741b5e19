"""Audio front-end: files, resampling, spectrograms, mel filterbanks, MFCCs, augmentation.

Everything here works on numpy arrays with time on the last axis, so that a batch ``(N, L)``
of waveforms becomes a batch ``(N, n_mels, T)`` of features, which is the ``(N, C, L)`` layout
of :func:`pyconv1d.conv1d` (mel bins as channels) and, with a channel axis added,
``(N, 1, n_mels, T)`` for :func:`pyconv1d.conv2d`.

Argument names follow librosa (``sr``, ``n_fft``, ``hop_length``, ``win_length``, ``fmin``,
``fmax``, ``htk``, ``norm``) so that a user's habits carry over; the defaults are chosen for
speech (40 mel bins, 512-point FFT). Logarithms are natural (as Kaldi and torchaudio), not
decibels (as ``librosa.power_to_db``); MFCCs are therefore librosa's divided by
``10 / ln(10)`` when librosa keeps the whole range (``librosa.feature.mfcc(..., top_db=None)``;
its default clips the log-mel 80 dB below the peak, which pyconv1d does not).

:class:`MelSpectrogram` computes the same log-mel spectrogram with pyconv1d's own strided
:func:`pyconv1d.conv1d` over a bank of windowed cosine and sine kernels, with a backward pass,
so that the front-end can run inside a model.

Reading and writing files needs the ``soundfile`` package (libsndfile: WAV, FLAC, OGG/Vorbis
and more); it is imported only by :func:`load`, :func:`save`, :func:`info` and
:func:`load_spoken_digits`.
"""
import csv
import math
import numbers
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.fft
import scipy.signal

from . import _blas, _checks
from .functional import conv1d, conv1d_backward
from .nn.module import Module, get_num_threads

__all__ = [
    "MelSpectrogram",
    "SpokenDigits",
    "cmvn",
    "frame",
    "get_window",
    "hz_to_mel",
    "info",
    "load",
    "load_spoken_digits",
    "log_mel",
    "mel_filterbank",
    "mel_frequencies",
    "mel_spectrogram",
    "mel_to_hz",
    "mfcc",
    "preemphasis",
    "resample",
    "save",
    "spec_augment",
    "spectrogram",
    "stft",
]

_PAD_MODES = ("constant", "reflect")
#: The most masks of each kind spec_augment draws per utterance (each is a Python loop step).
MAX_MASKS = 10_000
#: save() takes an array of more channels than samples for soundfile's (L, C) layout when it
#: has more than this many (a short clip of up to this many channels is written as it is).
MAX_SAVE_CHANNELS = 64
#: The largest term of resample's ratio in lowest terms (its filter has 20 times as many taps:
#: 44.1 to 48 kHz is 160/147; 2.6 million taps take seconds to design, whatever the input).
MAX_RESAMPLE_FACTOR = 1 << 17


# --------------------------------------------------------------------------- validation


def _as_audio(x, name="x", min_ndim=1):
    arr = _checks.as_float_array(x, name)
    if arr.ndim < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimension(s) (time last), "
                         f"got shape {arr.shape}")
    return arr


def _fits(elements, what):
    """A ValueError naming ``what`` when ``elements`` float64 values would not fit memory."""
    _checks.check_fits(elements * 8, what)


def _positive_int(value, name):
    return _checks.check_int(value, name, 1)


def _real(value, name, lo=None, hi=None, lo_open=False, hi_open=False):
    """A finite real number in the given interval, as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    bad = not math.isfinite(v)
    if lo is not None:
        bad |= v <= lo if lo_open else v < lo
    if hi is not None:
        bad |= v >= hi if hi_open else v > hi
    if bad:
        lo_s = "-inf" if lo is None else repr(lo)
        hi_s = "inf" if hi is None else repr(hi)
        interval = ("(" if lo_open or lo is None else "[") + f"{lo_s}, {hi_s}" + \
            (")" if hi_open or hi is None else "]")
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return v


def _sample_rate(sr, name="sr"):
    if isinstance(sr, (bool, np.bool_)):
        raise TypeError(f"{name} must be a positive int (samples per second), got {sr!r}")
    if not isinstance(sr, numbers.Integral):
        if isinstance(sr, numbers.Real) and float(sr).is_integer() and sr > 0:
            return int(sr)
        raise TypeError(f"{name} must be a positive int (samples per second), got {sr!r}")
    if sr <= 0:
        raise ValueError(f"{name} must be a positive int (samples per second), got {sr!r}")
    return int(sr)


def _log_floor(floor, dtype):
    """``floor`` in ``dtype``: a ValueError when it rounds below the dtype's smallest normal
    number (1e-50 is 0 in float32, and silence would give ``-inf``)."""
    value = dtype.type(floor)
    if value < np.finfo(dtype).tiny:
        raise ValueError(f"floor must be at least {np.finfo(dtype).tiny} for {dtype} data, "
                         f"got {floor!r}")
    return value


def _stft_lengths(n_fft, hop_length, win_length):
    n_fft = _positive_int(n_fft, "n_fft")
    win_length = n_fft if win_length is None else _positive_int(win_length, "win_length")
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length!r}")
    hop_length = max(win_length // 4, 1) if hop_length is None \
        else _positive_int(hop_length, "hop_length")
    return n_fft, hop_length, win_length


def _pad_mode(pad_mode):
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"pad_mode must be one of {_PAD_MODES}, got {pad_mode!r}")
    return pad_mode


# --------------------------------------------------------------------------- files


def _soundfile():
    try:
        import soundfile
    except ImportError as exc:  # pragma: no cover - soundfile is a dependency
        raise ImportError("reading and writing audio files needs the soundfile package: "
                          "pip install soundfile") from exc
    return soundfile


def info(path):
    """Sample rate, channels, frames, format and subtype of an audio file, without reading it.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    soundfile._SoundFileInfo
        With attributes ``samplerate``, ``channels``, ``frames``, ``duration``, ``format``
        and ``subtype``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from pyconv1d import audio
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.flac")
    >>> audio.save(path, np.zeros(800, dtype=np.float32), 8000)
    >>> i = audio.info(path)
    >>> i.samplerate, i.channels, i.frames, i.format
    (8000, 1, 800, 'FLAC')
    """
    path = os.fspath(path)
    if not os.path.isfile(path):          # libsndfile would say only "System error"
        raise FileNotFoundError(f"no audio file {path!r}")
    return _soundfile().info(path)


def load(path, sr=None, mono=True, dtype=np.float32):
    """Read an audio file (WAV, FLAC, OGG/Vorbis, ... anything libsndfile reads).

    Parameters
    ----------
    path : str or path-like
    sr : int, optional
        Resample to this rate with :func:`resample`; None keeps the file's rate.
    mono : bool
        Average the channels into one (mix-down). False keeps them, channels first.
    dtype : float32 or float64
        Samples are scaled to [-1, 1] as by libsndfile.

    Returns
    -------
    audio : ndarray, shape (L,) if ``mono`` else (C, L)
    sr : int
        The sample rate of ``audio``.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from pyconv1d import audio
    >>> path = os.path.join(tempfile.mkdtemp(), "stereo.wav")
    >>> stereo = np.stack([np.full(1600, 0.5), np.full(1600, -0.25)])
    >>> audio.save(path, stereo, 16000)
    >>> x, sr = audio.load(path)
    >>> x.shape, sr, round(float(x[100]), 3)
    ((1600,), 16000, 0.125)
    >>> x, sr = audio.load(path, sr=8000, mono=False)
    >>> x.shape, sr
    ((2, 800), 8000)
    """
    dtype = _checks.float_dtype(dtype)
    if sr is not None:
        sr = _sample_rate(sr)
    mono = _checks.check_bool(mono, "mono")
    path = os.fspath(path)
    if not os.path.isfile(path):          # libsndfile would say only "System error"
        raise FileNotFoundError(f"no audio file {path!r}")
    data, file_sr = _soundfile().read(path, dtype=dtype.name, always_2d=True)
    data = data.T  # (C, L)
    if mono:
        data = data.mean(axis=0, dtype=dtype) if data.shape[0] > 1 else data[0]
    data = np.ascontiguousarray(data, dtype=dtype)
    if sr is not None and sr != file_sr:
        data = resample(data, file_sr, sr)
    return data, int(sr if sr is not None else file_sr)


def save(path, audio, sr, subtype=None, format=None, compression_level=None):
    """Write audio to a file with soundfile; the format follows the extension.

    Parameters
    ----------
    path : str or path-like
        ``.wav``, ``.flac``, ``.ogg`` (Vorbis), ... as libsndfile knows them.
    audio : array_like, shape (L,) or (C, L)
        Floats in [-1, 1]: values outside are clipped when the subtype stores integers. An
        array of more than ``MAX_SAVE_CHANNELS`` (64) rows and fewer columns is refused: it is
        soundfile's ``(L, C)`` layout, to be transposed.
    sr : int
        Sample rate.
    subtype : str, optional
        For example ``'PCM_16'`` (the default for WAV and FLAC), ``'PCM_24'``, ``'FLOAT'``,
        ``'VORBIS'``; see ``soundfile.available_subtypes()``.
    format : str, optional
        Overrides the extension, e.g. ``'FLAC'``.
    compression_level : float in [0, 1], optional
        For FLAC, OGG (Vorbis) and MP3: 1 is the smallest file; None keeps libsndfile's
        default.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from pyconv1d import audio
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    >>> audio.save(path, tone, 8000)
    >>> y, sr = audio.load(path, dtype=np.float64)
    >>> bool(np.abs(y - tone).max() < 2 ** -15)
    True
    """
    sf = _soundfile()
    x = _as_audio(audio, "audio")
    if x.ndim > 2:
        raise ValueError(f"audio must have shape (L,) or (C, L), got shape {x.shape}")
    if x.ndim == 2 and x.shape[0] > MAX_SAVE_CHANNELS and x.shape[0] > x.shape[1]:
        raise ValueError(f"audio must have shape (C, L), channels first, got shape {x.shape} "
                         f"(more than {MAX_SAVE_CHANNELS} channels and more channels than "
                         f"samples: for soundfile's (L, C) pass audio.T)")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio must be finite, got NaN or inf samples")
    sr = _sample_rate(sr)
    path = os.fspath(path)
    for value, name in ((subtype, "subtype"), (format, "format")):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, got {value!r}")
    ext = os.path.splitext(path)[1].lstrip(".").upper()
    if format is None:      # libsndfile's own names for two extensions soundfile does not map
        format = {"OGA": "OGG", "AIF": "AIFF"}.get(ext)
    fmt = (format or ext).upper()
    if subtype is None:
        try:
            subtype = sf.default_subtype(fmt)
        except (ValueError, TypeError):
            subtype = None
    if subtype is None or subtype.upper() not in ("FLOAT", "DOUBLE"):
        x = np.clip(x, -1.0, 1.0)
    kwargs = {}
    if compression_level is not None:
        kwargs["compression_level"] = _real(compression_level, "compression_level", 0.0, 1.0)
        if fmt not in ("FLAC", "OGG", "MP3"):
            raise ValueError(f"compression_level applies to FLAC, OGG and MP3 files only, got "
                             f"format {fmt!r} (path {path!r})")
    sf.write(path, x.T, sr, subtype=subtype, format=format, **kwargs)


def resample(x, orig_sr, target_sr, axis=-1):
    """Change the sample rate with a polyphase filter (``scipy.signal.resample_poly``).

    The ratio ``target_sr / orig_sr`` is reduced by their greatest common divisor, so 44100 to
    16000 upsamples by 160 and downsamples by 441 (neither term may exceed
    ``MAX_RESAMPLE_FACTOR``, 131,072). The anti-aliasing filter is scipy's default
    Kaiser window (beta 5).

    Parameters
    ----------
    x : array_like, float32 or float64
    orig_sr, target_sr : int
    axis : int
        The time axis.

    Returns
    -------
    ndarray
        ``ceil(L * target_sr / orig_sr)`` samples along ``axis``, in the dtype of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import resample
    >>> x = np.sin(2 * np.pi * 100 * np.arange(22050) / 22050)
    >>> y = resample(x, 22050, 8000)
    >>> y.shape
    (8000,)
    >>> expected = np.sin(2 * np.pi * 100 * np.arange(8000) / 8000)
    >>> bool(np.abs(y - expected)[100:-100].max() < 1e-3)
    True
    """
    x = _as_audio(x)
    orig_sr = _sample_rate(orig_sr, "orig_sr")
    target_sr = _sample_rate(target_sr, "target_sr")
    if orig_sr == target_sr:
        return x.copy()
    g = math.gcd(orig_sr, target_sr)
    axis = _checks.check_axis(axis, "axis", x.ndim)
    up, down = target_sr // g, orig_sr // g
    # resample_poly designs a filter of 20 * max(up, down) + 1 taps whatever the input's length
    if max(up, down) > MAX_RESAMPLE_FACTOR:
        raise ValueError(f"resampling from orig_sr={orig_sr} to target_sr={target_sr} is by "
                         f"{up}/{down} in lowest terms, more than {MAX_RESAMPLE_FACTOR} (its "
                         f"filter would have {20 * max(up, down) + 1} taps); resample in two "
                         f"steps through a rate closer to both")
    _fits(-(-x.size * up // down), f"resampling to target_sr={target_sr}")
    y = scipy.signal.resample_poly(x, up, down, axis=axis)
    return np.ascontiguousarray(y, dtype=x.dtype)


# --------------------------------------------------------------------------- framing, STFT


def preemphasis(x, coef=0.97, axis=-1):
    """First-order high-pass ``y[t] = x[t] - coef * x[t-1]``, with ``y[0] = x[0]``.

    Parameters
    ----------
    x : array_like, float32 or float64
    coef : float in [0, 1]
    axis : int

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import preemphasis
    >>> preemphasis(np.array([1.0, 1.0, 2.0, 0.0]), coef=0.5)
    array([ 1. ,  0.5,  1.5, -1. ])
    """
    x = _as_audio(x)
    coef = _real(coef, "coef", 0.0, 1.0)
    axis = _checks.check_axis(axis, "axis", x.ndim)
    x = np.moveaxis(x, axis, -1)
    y = x.copy()
    y[..., 1:] -= x.dtype.type(coef) * x[..., :-1]
    return np.ascontiguousarray(np.moveaxis(y, -1, axis))


def frame(x, frame_length, hop_length):
    """Overlapping frames of the last axis, as a read-only view (no copy).

    Parameters
    ----------
    x : ndarray, shape (..., L)
    frame_length, hop_length : int
        ``L >= frame_length``.

    Returns
    -------
    ndarray, shape (..., n_frames, frame_length)
        ``n_frames = 1 + (L - frame_length) // hop_length``; frame ``t`` is
        ``x[..., t*hop_length : t*hop_length + frame_length]``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import frame
    >>> frame(np.arange(7), 3, 2)
    array([[0, 1, 2],
           [2, 3, 4],
           [4, 5, 6]])
    """
    x = np.asarray(x)
    frame_length = _positive_int(frame_length, "frame_length")
    hop_length = _positive_int(hop_length, "hop_length")
    if x.ndim == 0 or x.shape[-1] < frame_length:
        raise ValueError(f"x must have at least frame_length={frame_length} samples on its "
                         f"last axis, got shape {x.shape}")
    windows = np.lib.stride_tricks.sliding_window_view(x, frame_length, axis=-1)
    return windows[..., ::hop_length, :]


def get_window(window, win_length, n_fft=None, dtype=np.float64):
    """A periodic (DFT-even) analysis window, zero-padded in the centre of ``n_fft`` samples.

    Parameters
    ----------
    window : str, tuple or array_like
        A name or ``(name, parameter)`` for ``scipy.signal.get_window`` with ``fftbins=True``
        (``'hann'``, ``'hamming'``, ``('kaiser', 8.0)``, ...), or the samples themselves
        (``win_length`` of them).
    win_length : int
    n_fft : int, optional
        Total length; ``(n_fft - win_length) // 2`` zeros go on the left, the rest on the right
        (librosa's and torch.stft's convention). Defaults to ``win_length``.

    Examples
    --------
    >>> from pyconv1d.audio import get_window
    >>> get_window('hann', 4)
    array([0. , 0.5, 1. , 0.5])
    >>> get_window('hann', 2, n_fft=4)
    array([0., 0., 1., 0.])
    """
    win_length = _positive_int(win_length, "win_length")
    n_fft = win_length if n_fft is None else _positive_int(n_fft, "n_fft")
    _fits(4 * n_fft, f"a window of n_fft={n_fft}")
    if win_length > n_fft:
        raise ValueError(f"win_length must be <= n_fft={n_fft}, got {win_length!r}")
    if isinstance(window, (str, tuple)):
        try:
            w = scipy.signal.get_window(window, win_length, fftbins=True)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"window {window!r} is not a window scipy.signal.get_window "
                             f"knows ({exc})") from None
    else:
        w = np.asarray(window, dtype=np.float64)
        if w.shape != (win_length,):
            raise ValueError(f"window must be a name or an array of shape ({win_length},), "
                             f"got shape {w.shape}")
    left = (n_fft - win_length) // 2
    out = np.zeros(n_fft, dtype=_checks.float_dtype(dtype))
    out[left:left + win_length] = w
    return out


def _center(x, n_fft, pad_mode):
    pad = n_fft // 2
    if pad_mode == "reflect" and x.shape[-1] <= pad:
        raise ValueError(f"pad_mode='reflect' needs more than n_fft // 2 = {pad} samples, got "
                         f"{x.shape[-1]} (use pad_mode='constant')")
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    return np.pad(x, widths, mode=pad_mode)


def stft(x, n_fft=512, hop_length=None, win_length=None, window="hann", center=True,
         pad_mode="constant"):
    """Short-time Fourier transform of the last axis: ``X[..., f, t]``.

    ``X[f, t] = sum_n w[n] * x[t*hop_length + n - c] * exp(-2j*pi*f*n / n_fft)`` for
    ``f = 0 .. n_fft//2``, where ``c = n_fft // 2`` when ``center`` and 0 otherwise: with
    ``center`` the window of frame ``t`` is centred on sample ``t*hop_length`` (the signal is
    padded by ``n_fft // 2`` on both sides, with zeros or by reflection); without it frame
    ``t`` starts there. No scaling is applied (``scipy.signal.stft`` divides by ``w.sum()``).

    Parameters
    ----------
    x : array_like, shape (..., L), float32 or float64
    n_fft : int
        FFT length.
    hop_length : int, optional
        Samples between frames; default ``win_length // 4``.
    win_length : int, optional
        Window length, ``<= n_fft``; default ``n_fft``. A shorter window is zero-padded in the
        centre (see :func:`get_window`).
    window : str, tuple or array_like
        See :func:`get_window`; ``'hann'`` is the periodic Hann window.
    center : bool
        Centre frames on ``t*hop_length`` (``n_fft // 2`` samples padded on each side):
        ``1 + (L + 2 * (n_fft // 2) - n_fft) // hop_length`` frames, which is
        ``1 + L // hop_length`` for an even ``n_fft``. Without it,
        ``1 + (L - n_fft) // hop_length`` frames and ``L >= n_fft`` is required.
    pad_mode : 'constant' or 'reflect'
        How ``center`` pads: zeros (librosa >= 0.10, ``scipy.signal.stft(boundary='zeros')``)
        or mirror images without repeating the edge sample (``torch.stft``'s default,
        ``boundary='even'`` in scipy), which needs more than ``n_fft // 2`` samples.

    Returns
    -------
    ndarray, shape (..., n_fft // 2 + 1, n_frames)
        complex64 for float32 input, complex128 for float64.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import stft
    >>> x = np.cos(2 * np.pi * 4 * np.arange(64) / 32)   # bin 4 of a 32-point FFT
    >>> X = stft(x, n_fft=32, hop_length=8, window='boxcar', center=False)
    >>> X.shape
    (17, 5)
    >>> np.round(np.abs(X[:, 0]), 6)[2:7]
    array([ 0.,  0., 16.,  0.,  0.])
    """
    x = _as_audio(x)
    n_fft, hop_length, win_length = _stft_lengths(n_fft, hop_length, win_length)
    pad_mode = _pad_mode(pad_mode)
    center = _checks.check_bool(center, "center")
    padded = x.shape[-1] + (n_fft // 2 * 2 if center else 0)
    n_frames = 1 + max(padded - n_fft, 0) // hop_length
    _fits(math.prod(x.shape[:-1]) * (padded + 2 * n_frames * n_fft) + 4 * n_fft,
          f"the frames of n_fft={n_fft} every hop_length={hop_length} samples")
    w = get_window(window, win_length, n_fft, dtype=x.dtype)
    if center and padded < n_fft:     # an odd n_fft and no samples: no frame fits
        return np.zeros(x.shape[:-1] + (n_fft // 2 + 1, 0), np.result_type(x.dtype, np.complex64))
    if center:
        x = _center(x, n_fft, pad_mode)
    elif x.shape[-1] < n_fft:
        raise ValueError(f"x has {x.shape[-1]} samples, fewer than n_fft={n_fft} (use "
                         f"center=True or a shorter n_fft)")
    frames = frame(x, n_fft, hop_length) * w          # (..., T, n_fft)
    spec = scipy.fft.rfft(frames, n=n_fft, axis=-1)   # (..., T, F)
    return np.ascontiguousarray(np.swapaxes(spec, -1, -2))


def spectrogram(x, n_fft=512, hop_length=None, win_length=None, window="hann", center=True,
                pad_mode="constant", power=2.0):
    """Magnitude (``power=1``) or power (``power=2``) spectrogram ``|stft(x)| ** power``.

    Parameters are those of :func:`stft`; ``power`` is a positive float.

    Returns
    -------
    ndarray, shape (..., n_fft // 2 + 1, n_frames), the dtype of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import spectrogram
    >>> x = np.ones(8000, dtype=np.float32)
    >>> S = spectrogram(x, n_fft=256, hop_length=80)
    >>> S.shape, S.dtype
    ((129, 101), dtype('float32'))
    >>> int(S[:, 50].argmax())   # a constant signal is all DC
    0
    """
    power = _real(power, "power", 0.0, lo_open=True)
    X = stft(x, n_fft, hop_length, win_length, window, center, pad_mode)
    S = X.real ** 2 + X.imag ** 2
    if power != 2.0:
        S = S ** (power / 2.0) if power != 1.0 else np.sqrt(S)
    return S


# --------------------------------------------------------------------------- mel scale


_MIN_LOG_HZ = 1000.0                     # Slaney: linear (3 mels per 200 Hz) below 1 kHz
_MIN_LOG_MEL = 15.0
_LOGSTEP = math.log(6.4) / 27.0          # 27 mels per factor 6.4 (1 kHz -> 6.4 kHz)


def hz_to_mel(frequencies, htk=False):
    """Hertz to mels, on the HTK or the Slaney (Auditory Toolbox) scale.

    HTK: ``2595 * log10(1 + f / 700)``. Slaney: linear, ``3 f / 200``, below 1 kHz (15 mels),
    then logarithmic with 27 mels per factor 6.4 (so 6.4 kHz is 42 mels).

    Examples
    --------
    >>> from pyconv1d.audio import hz_to_mel
    >>> float(hz_to_mel(1000.0)), float(hz_to_mel(6400.0))
    (15.0, 42.0)
    >>> round(float(hz_to_mel(700.0, htk=True)), 4)
    781.1728
    """
    f = np.asanyarray(frequencies, dtype=np.float64)
    if _checks.check_bool(htk, "htk"):
        return 2595.0 * np.log10(1.0 + f / 700.0)
    mels = 3.0 * f / 200.0
    log_t = f >= _MIN_LOG_HZ
    return np.where(log_t, _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ)
                    / _LOGSTEP, mels)


def mel_to_hz(mels, htk=False):
    """Mels to hertz: the inverse of :func:`hz_to_mel`.

    Examples
    --------
    >>> from pyconv1d.audio import mel_to_hz
    >>> float(mel_to_hz(15.0)), round(float(mel_to_hz(42.0)), 6)
    (1000.0, 6400.0)
    """
    m = np.asanyarray(mels, dtype=np.float64)
    if _checks.check_bool(htk, "htk"):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    log_t = m >= _MIN_LOG_MEL
    return np.where(log_t, _MIN_LOG_HZ * np.exp(_LOGSTEP * (np.maximum(m, _MIN_LOG_MEL)
                                                            - _MIN_LOG_MEL)), 200.0 * m / 3.0)


def mel_frequencies(n_mels, fmin=0.0, fmax=11025.0, htk=False):
    """``n_mels`` frequencies (Hz) equally spaced on the mel scale from ``fmin`` to ``fmax``.

    Examples
    --------
    >>> from pyconv1d.audio import mel_frequencies
    >>> mel_frequencies(3, 0.0, 1000.0)          # linear below 1 kHz
    array([   0.,  500., 1000.])
    >>> mel_frequencies(3, 1000.0, 6400.0)       # logarithmic above: the geometric mean
    array([1000.        , 2529.82212813, 6400.        ])
    """
    n_mels = _positive_int(n_mels, "n_mels")
    fmin = _real(fmin, "fmin", 0.0)
    fmax = _real(fmax, "fmax", fmin, lo_open=True)
    _fits(n_mels, f"n_mels={n_mels} frequencies")
    m = np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels)
    return mel_to_hz(m, htk)


def mel_filterbank(sr, n_fft, n_mels=40, fmin=0.0, fmax=None, htk=False, norm="slaney",
                   dtype=np.float64):
    """Triangular mel filters as a matrix: ``mel = fb @ power_spectrum``.

    ``n_mels + 2`` edge frequencies are equally spaced on the mel scale from ``fmin`` to
    ``fmax``; filter ``m`` rises linearly (in Hz) from edge ``m`` to a peak of 1 at edge
    ``m + 1`` and falls back to 0 at edge ``m + 2``. The unnormalised filters therefore sum to
    1 at every frequency between the first and last peaks. This is librosa's
    ``filters.mel`` (and torchaudio's ``melscale_fbanks`` with ``htk=True``).

    Parameters
    ----------
    sr : int
        Sample rate of the signal.
    n_fft : int
        FFT length: the filters act on its ``n_fft // 2 + 1`` bins at ``k * sr / n_fft`` Hz.
    n_mels : int
    fmin, fmax : float
        Band edges in Hz; ``fmax`` defaults to ``sr / 2`` and may not exceed it.
    htk : bool
        The HTK mel scale instead of Slaney's (see :func:`hz_to_mel`).
    norm : 'slaney' or None
        ``'slaney'`` divides each triangle by half its width in Hz, giving every filter unit
        area (equal energy per band on white noise); None keeps peaks of 1.

    Returns
    -------
    ndarray, shape (n_mels, n_fft // 2 + 1)

    Warns
    -----
    UserWarning
        When some filter falls between FFT bins and is all zero (too many mels for n_fft).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import mel_filterbank
    >>> fb = mel_filterbank(8000, 256, n_mels=20, norm=None)
    >>> fb.shape
    (20, 129)
    >>> np.round(fb.sum(axis=0)[8:12], 6)       # the triangles sum to 1 between peaks
    array([1., 1., 1., 1.])
    """
    sr = _sample_rate(sr)
    n_fft = _positive_int(n_fft, "n_fft")
    n_mels = _positive_int(n_mels, "n_mels")
    nyquist = sr / 2.0
    fmax = nyquist if fmax is None else _real(fmax, "fmax", hi=nyquist)
    fmin = _real(fmin, "fmin", 0.0)
    if fmin >= fmax:
        raise ValueError(f"fmin must be < fmax={fmax!r}, got {fmin!r}")
    if norm not in ("slaney", None):
        raise ValueError(f"norm must be 'slaney' or None, got {norm!r}")
    _fits(4 * (n_mels + 2) * (n_fft // 2 + 1),
          f"a filterbank of n_mels={n_mels} and n_fft={n_fft}")
    fft_freqs = np.arange(n_fft // 2 + 1) * (sr / n_fft)
    edges = mel_frequencies(n_mels + 2, fmin, fmax, htk)
    widths = np.diff(edges)
    if not np.all(widths > 0):      # the triangles would divide by zero
        raise ValueError(f"fmin={fmin!r} and fmax={fmax!r} are too close for n_mels={n_mels} "
                         f"distinct band edges")
    ramps = edges[:, None] - fft_freqs[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    fb = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    empty = np.flatnonzero(fb.max(axis=1) == 0)
    if empty.size:
        warnings.warn(f"mel_filterbank: filters {empty.tolist()} are all zero (n_mels={n_mels} "
                      f"is too many for n_fft={n_fft} at sr={sr}); use fewer mels or a longer "
                      f"FFT", UserWarning, stacklevel=2)
    return fb.astype(_checks.float_dtype(dtype))


# --------------------------------------------------------------------------- features


def mel_spectrogram(x, sr, n_fft=512, hop_length=None, win_length=None, window="hann",
                    center=True, pad_mode="constant", n_mels=40, fmin=0.0, fmax=None,
                    htk=False, norm="slaney", power=2.0):
    """Mel-band energies: ``mel_filterbank(...) @ spectrogram(x, ..., power)``.

    Parameters are those of :func:`spectrogram` and :func:`mel_filterbank`.

    Returns
    -------
    ndarray, shape (..., n_mels, n_frames), the dtype of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import mel_spectrogram
    >>> x = np.random.default_rng(0).standard_normal(8000)
    >>> mel_spectrogram(x, 8000, n_fft=256, hop_length=80, n_mels=32).shape
    (32, 101)
    """
    x = _as_audio(x)
    S = spectrogram(x, n_fft, hop_length, win_length, window, center, pad_mode, power)
    fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm, dtype=x.dtype)
    return np.matmul(fb, S)


def log_mel(x, sr, n_fft=512, hop_length=None, win_length=None, window="hann", center=True,
            pad_mode="constant", n_mels=40, fmin=0.0, fmax=None, htk=False, norm="slaney",
            floor=1e-10):
    """Log mel power spectrogram ``log(max(mel_spectrogram(x, ...), floor))`` (natural log).

    Parameters
    ----------
    x, sr, n_fft, hop_length, win_length, window, center, pad_mode, n_mels, fmin, fmax, htk, norm
        As for :func:`mel_spectrogram` (power 2).
    floor : float
        Positive; energies below it are raised to it, so silence gives ``log(floor)``
        rather than ``-inf``. At least the data type's smallest normal number (about 1.2e-38
        for float32).

    Returns
    -------
    ndarray, shape (..., n_mels, n_frames), the dtype of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import log_mel
    >>> x = np.zeros(4000, dtype=np.float32)
    >>> L = log_mel(x, 8000, n_fft=200, hop_length=80, n_mels=20, floor=1e-6)
    >>> L.shape, L.dtype, float(L.max()) == float(np.log(np.float32(1e-6)))
    ((20, 51), dtype('float32'), True)
    """
    floor = _real(floor, "floor", 0.0, lo_open=True)
    M = mel_spectrogram(x, sr, n_fft, hop_length, win_length, window, center, pad_mode,
                        n_mels, fmin, fmax, htk, norm, 2.0)
    return np.log(np.maximum(M, _log_floor(floor, M.dtype)))


def mfcc(x=None, sr=None, n_mfcc=13, *, S=None, lifter=0, **kwargs):
    """Mel-frequency cepstral coefficients: the orthonormal DCT-II of the log mel spectrogram.

    ``c[k, t] = s_k * sum_m L[m, t] * cos(pi * k * (2m + 1) / (2M))`` with
    ``s_0 = sqrt(1/M)``, ``s_k = sqrt(2/M)``, over the ``M`` mel bands (``scipy.fft.dct``
    type 2, ``norm='ortho'``), keeping ``k < n_mfcc``.

    Parameters
    ----------
    x : array_like, shape (..., L), optional
        Waveform; ignored when ``S`` is given.
    sr : int, optional
        Its sample rate (required with ``x``).
    n_mfcc : int
        Coefficients to keep, ``<= n_mels``.
    S : array_like, shape (..., n_mels, T), optional
        A log mel spectrogram (e.g. from :func:`log_mel`) to use instead of ``x``.
    lifter : float
        If positive, multiply coefficient ``k`` by ``1 + (lifter/2) sin(pi (k+1) / lifter)``
        (HTK's cepstral liftering, numbering as librosa).
    **kwargs
        Passed to :func:`log_mel` (``n_fft``, ``hop_length``, ``n_mels``, ``floor``, ...).

    Returns
    -------
    ndarray, shape (..., n_mfcc, T)

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import mfcc
    >>> x = np.random.default_rng(0).standard_normal(8000)
    >>> mfcc(x, 8000, n_fft=256, hop_length=80, n_mels=32).shape
    (13, 101)
    >>> L = np.full((32, 5), 2.0)                 # constant over mel bins: only c0 survives
    >>> c = mfcc(S=L, n_mfcc=4)
    >>> np.round(c[:, 0], 6)
    array([11.313708,  0.      ,  0.      ,  0.      ])
    """
    if S is None:
        if x is None or sr is None:
            raise TypeError("mfcc needs either a waveform x and its sample rate sr, or S=")
        S = log_mel(x, sr, **kwargs)
    else:
        if kwargs:
            raise TypeError(f"mfcc: {sorted(kwargs)} have no effect when S is given")
        S = _as_audio(S, "S", min_ndim=2)
    n_mfcc = _positive_int(n_mfcc, "n_mfcc")
    if n_mfcc > S.shape[-2]:
        raise ValueError(f"n_mfcc must be <= n_mels={S.shape[-2]}, got {n_mfcc!r}")
    lifter = _real(lifter, "lifter", 0.0)
    C = scipy.fft.dct(S, type=2, norm="ortho", axis=-2)[..., :n_mfcc, :]
    if lifter > 0:
        k = np.arange(1, n_mfcc + 1, dtype=S.dtype)
        C = C * (1 + (lifter / 2) * np.sin(np.pi * k / lifter))[:, None].astype(S.dtype)
    return np.ascontiguousarray(C)


def cmvn(features, axis=-1, variance=True, eps=1e-8):
    """Per-utterance mean (and variance) normalisation over time.

    ``(f - mean) / sqrt(var + eps)`` with the statistics of each utterance and feature taken
    along ``axis`` (time), so every feature row of every utterance ends up with mean 0 and,
    with ``variance``, standard deviation ~1.

    Parameters
    ----------
    features : array_like, shape (..., n_features, T), float32 or float64
    axis : int
        The time axis.
    variance : bool
        Also divide by the standard deviation (False: mean subtraction only, CMN).
    eps : float
        Added to the variance, so constant rows stay finite.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import cmvn
    >>> f = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    >>> np.round(cmvn(f), 4)
    array([[-1.2247,  0.    ,  1.2247],
           [ 0.    ,  0.    ,  0.    ]])
    """
    f = _as_audio(features, "features")
    eps = _real(eps, "eps", 0.0, lo_open=True)
    variance = _checks.check_bool(variance, "variance")
    axis = _checks.check_axis(axis, "axis", f.ndim)
    out = f - f.mean(axis=axis, keepdims=True)
    if variance:
        out /= np.sqrt(f.var(axis=axis, keepdims=True) + f.dtype.type(eps))
    return out


def spec_augment(spec, rng=None, freq_masks=2, freq_width=8, time_masks=2, time_width=20,
                 value=None):
    """SpecAugment-style masking for training: blank random frequency bands and time spans.

    For each utterance, ``freq_masks`` times: draw a width ``w`` uniformly from
    ``0 .. freq_width`` and a start ``f0`` uniformly from ``0 .. F - w``, and set rows
    ``f0 .. f0+w-1`` to ``value``; likewise ``time_masks`` spans of up to ``time_width``
    frames (capped at the length). Masks may overlap. (Park et al., 2019, without time
    warping.)

    Parameters
    ----------
    spec : array_like, shape (F, T) or (..., F, T)
        Leading axes are utterances, each masked independently.
    rng : numpy.random.Generator, int or None
        Source of randomness (an int seeds a new Generator); pass one Generator through
        training for reproducible masks.
    freq_masks, time_masks : int in [0, MAX_MASKS]
    freq_width, time_width : int >= 0
        Largest width of one mask.
    value : float, optional
        Fill value; default the utterance's mean (0 after :func:`cmvn`).

    Returns
    -------
    ndarray
        A masked copy of ``spec``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import spec_augment
    >>> S = np.ones((40, 100))
    >>> A = spec_augment(S, rng=0, freq_masks=1, freq_width=10, time_masks=1, time_width=10,
    ...                  value=0.0)
    >>> A.shape, bool((A == 0).any()), bool((S == 1).all())
    ((40, 100), True, True)
    """
    out = _as_audio(spec, "spec", min_ndim=2).copy()
    rng = np.random.default_rng(_checks.check_seed(rng, "rng", none=True))
    freq_masks = _checks.check_int(freq_masks, "freq_masks", 0)
    time_masks = _checks.check_int(time_masks, "time_masks", 0)
    freq_width = _checks.check_int(freq_width, "freq_width", 0)
    time_width = _checks.check_int(time_width, "time_width", 0)
    if value is not None:
        value = _real(value, "value")
    if max(freq_masks, time_masks) > MAX_MASKS:
        raise ValueError(f"freq_masks and time_masks must be at most {MAX_MASKS}, got "
                         f"{freq_masks} and {time_masks}")
    if out.size == 0:
        return out
    n_freq, n_time = out.shape[-2:]
    flat = out.reshape(-1, n_freq, n_time)
    for utt in flat:
        fill = utt.mean() if value is None else value
        for size, count, width, axis in ((n_freq, freq_masks, freq_width, 0),
                                         (n_time, time_masks, time_width, 1)):
            for _ in range(count):
                w = int(rng.integers(0, min(width, size) + 1))
                start = int(rng.integers(0, size - w + 1))
                if axis == 0:
                    utt[start:start + w, :] = fill
                else:
                    utt[:, start:start + w] = fill
    return out


# --------------------------------------------------------------------------- conv front-end


class MelSpectrogram(Module):
    """Log-mel spectrogram computed with pyconv1d's strided conv1d, with a backward pass.

    The STFT is a convolution: a bank of ``2 (n_fft//2 + 1)`` kernels of length ``n_fft``,
    ``w[n] cos(2 pi f n / n_fft)`` and ``-w[n] sin(2 pi f n / n_fft)``, run over the
    (centre-padded) waveform with stride ``hop_length`` gives the real and imaginary parts of
    :func:`stft`. Then ``power = re**2 + im**2``, ``mel = fb @ power`` and, with ``log``,
    ``log(max(mel, floor))``: the same numbers as :func:`log_mel` (to the precision of the
    dtype). It is a :class:`pyconv1d.nn.Module` without parameters (its state dict is empty):
    :meth:`backward` returns the gradient with respect to the waveform, so the front-end can
    sit first in a model (or a waveform can be optimised).

    Parameters
    ----------
    sr, n_fft, hop_length, win_length, window, center, pad_mode, n_mels, fmin, fmax, htk, norm
        As for :func:`log_mel`.
    log : bool
        Return ``log(max(mel, floor))``; False returns the mel energies.
    floor : float
    dtype : float32 or float64
        Of the kernel bank; float64 input is computed in float64 either way.
    num_threads : int, optional
        Passed to :func:`pyconv1d.conv1d`; None uses :func:`pyconv1d.nn.set_num_threads`'s.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.audio import MelSpectrogram, log_mel
    >>> x = np.random.default_rng(0).standard_normal((2, 4000)).astype(np.float32)
    >>> layer = MelSpectrogram(8000, n_fft=256, hop_length=80, n_mels=32)
    >>> y = layer(x)
    >>> y.shape, y.dtype
    ((2, 32, 51), dtype('float32'))
    >>> ref = log_mel(x.astype(np.float64), 8000, n_fft=256, hop_length=80, n_mels=32)
    >>> bool(np.abs(y - ref).max() < 1e-3)
    True
    >>> layer.backward(np.ones_like(y)).shape
    (2, 4000)
    """

    def __init__(self, sr, n_fft=512, hop_length=None, win_length=None, window="hann",
                 center=True, pad_mode="constant", n_mels=40, fmin=0.0, fmax=None, htk=False,
                 norm="slaney", log=True, floor=1e-10, dtype=np.float32, num_threads=None):
        super().__init__()
        self.sr = _sample_rate(sr)
        self.n_fft, self.hop_length, self.win_length = _stft_lengths(n_fft, hop_length,
                                                                     win_length)
        self.center = _checks.check_bool(center, "center")
        self.pad_mode = _pad_mode(pad_mode)
        self.n_mels = _positive_int(n_mels, "n_mels")
        self.log = _checks.check_bool(log, "log")
        self.floor = _real(floor, "floor", 0.0, lo_open=True)
        self.num_threads = num_threads
        dtype = _checks.float_dtype(dtype)
        self.dtype = dtype
        self._window_spec = window
        self._mel_args = (fmin, fmax, htk, norm)
        _fits(4 * (self.n_fft // 2 + 1) * self.n_fft, f"the Fourier kernels of n_fft={n_fft}")
        w = get_window(window, self.win_length, self.n_fft)
        n = np.arange(self.n_fft)
        f = np.arange(self.n_fft // 2 + 1)
        phase = 2 * np.pi * np.outer(f, n) / self.n_fft
        bank = np.concatenate([w * np.cos(phase), -w * np.sin(phase)])[:, None, :]
        fb = mel_filterbank(self.sr, self.n_fft, self.n_mels, fmin, fmax, htk, norm)
        self._banks = {np.dtype(np.float64): (bank, fb)}
        if dtype == np.float32:
            self._banks[dtype] = (bank.astype(np.float32), fb.astype(np.float32))

    def _bank(self, dtype):
        return self._banks[dtype if dtype in self._banks else np.dtype(np.float64)]

    def _to_dtype(self, dt):
        super()._to_dtype(dt)
        self.dtype = dt
        if dt not in self._banks:
            self._banks[dt] = tuple(a.astype(dt) for a in self._banks[np.dtype(np.float64)])

    @property
    def weight(self):
        """The Fourier kernel bank, shape ``(2 (n_fft//2 + 1), 1, n_fft)`` (cos rows first)."""
        return self._bank(self.dtype)[0]

    @property
    def filterbank(self):
        """The mel filterbank, shape ``(n_mels, n_fft//2 + 1)``."""
        return self._bank(self.dtype)[1]

    def n_frames(self, length):
        """Number of output frames for a waveform of ``length`` samples."""
        if self.center:     # n_fft // 2 samples padded on each side (odd n_fft: one fewer)
            return 1 + (length + self.n_fft // 2 * 2 - self.n_fft) // self.hop_length
        return 1 + (length - self.n_fft) // self.hop_length

    def forward(self, x):
        """Waveforms ``(N, L)`` or ``(L,)`` to features ``(N, n_mels, T)`` or ``(n_mels, T)``.

        The dtype of the output is float64 for float64 input, else the layer's dtype.
        """
        x = _as_audio(x)
        if x.ndim > 2:
            raise ValueError(f"x must have shape (N, L) or (L,), got shape {x.shape}")
        unbatched = x.ndim == 1
        dtype = np.dtype(np.float64) if x.dtype == np.float64 else self.dtype
        x2 = np.ascontiguousarray(x[None] if unbatched else x, dtype=dtype)
        length = x2.shape[-1]
        padding = 0
        if self.center:
            if self.pad_mode == "constant":
                padding = self.n_fft // 2
            else:
                x2 = _center(x2, self.n_fft, "reflect")
        elif length < self.n_fft:
            raise ValueError(f"x has {length} samples, fewer than n_fft={self.n_fft} (use "
                             f"center=True or a shorter n_fft)")
        if self.n_frames(length) <= 0:  # an odd n_fft and no samples: no frame fits
            mel = np.zeros((x2.shape[0], self.n_mels, 0), dtype)
            self._cache = (x2, padding, None, mel, length, unbatched, dtype)
            return mel[0] if unbatched else mel
        bank, fb = self._bank(dtype)
        spec = conv1d(x2[:, None, :], bank, stride=self.hop_length, padding=padding,
                      num_threads=self._threads())            # (N, 2F, T)
        n_bins = fb.shape[1]
        re, im = spec[:, :n_bins], spec[:, n_bins:]
        power = re * re + im * im
        with _blas.single_threaded():      # see _blas.single_threaded: idle BLAS threads spin
            mel = np.matmul(fb, power)
        out = np.log(np.maximum(mel, _log_floor(self.floor, dtype))) if self.log else mel
        self._cache = (x2, padding, spec, mel, length, unbatched, dtype)
        return out[0] if unbatched else out

    def _threads(self):
        return get_num_threads() if self.num_threads is None else self.num_threads

    def backward(self, grad_output, input_grad=True):
        """Gradient of the loss with respect to the waveform given to the last :meth:`forward`.

        Chains the log (``g / mel`` where ``mel > floor``, 0 where the floor clipped), the
        filterbank (``fb.T @ g``), the power (``2 re g``, ``2 im g``) and the convolution
        (:func:`pyconv1d.conv1d_backward`), then folds the reflect padding back. The layer has
        no parameters: with ``input_grad=False`` (the first layer of a model) there is nothing
        to compute.
        """
        x2, padding, spec, mel, length, unbatched, dtype = self._saved("_cache")
        g = _checks.as_float_array(grad_output, "grad_output")
        expected = mel.shape[1:] if unbatched else mel.shape
        if g.shape != expected:
            raise ValueError(f"grad_output must have the output's shape {expected}, got shape "
                             f"{g.shape}")
        if not input_grad:
            return None
        if spec is None:                # no frames: nothing flows back
            gx = np.zeros((mel.shape[0], length), dtype)
            return gx[0] if unbatched else gx
        g = g.reshape(mel.shape).astype(dtype, copy=False)
        if self.log:
            g = np.where(mel > dtype.type(self.floor), g / np.maximum(mel, np.finfo(dtype).tiny),
                         dtype.type(0))
        bank, fb = self._bank(dtype)
        with _blas.single_threaded():
            g_power = np.matmul(fb.T, g)                       # (N, F, T)
        g_spec = 2 * spec * np.concatenate([g_power, g_power], axis=1)
        gx = conv1d_backward(g_spec, x2[:, None, :], bank, stride=self.hop_length,
                             padding=padding, output_mask=(True, False, False),
                             num_threads=self._threads()).grad_input[:, 0]
        if self.center and self.pad_mode == "reflect":
            # x_pad[i] = x[p - i] left of x and x[2L - 2 + p - i] right of it: fold back.
            p = self.n_fft // 2
            inner = gx[:, p:p + length].copy()
            if p:
                inner[:, 1:p + 1] += gx[:, p - 1::-1]
                inner[:, length - p - 1:length - 1] += gx[:, p + length:][:, ::-1]
            gx = inner
        return gx[0] if unbatched else gx

    def extra_repr(self):
        parts = [f"sr={self.sr}", f"n_fft={self.n_fft}", f"hop_length={self.hop_length}",
                 f"n_mels={self.n_mels}"]
        if self.win_length != self.n_fft:
            parts.append(f"win_length={self.win_length}")
        if self._window_spec != "hann":
            parts.append(f"window={self._window_spec!r}")
        if not self.center:
            parts.append("center=False")
        if self.pad_mode != "constant":
            parts.append(f"pad_mode={self.pad_mode!r}")
        fmin, fmax, htk, norm = self._mel_args
        if fmin:
            parts.append(f"fmin={fmin!r}")
        if fmax is not None:
            parts.append(f"fmax={fmax!r}")
        if htk:
            parts.append("htk=True")
        if norm != "slaney":
            parts.append(f"norm={norm!r}")
        if not self.log:
            parts.append("log=False")
        if self.dtype != np.float32:
            parts.append(f"dtype={self.dtype.name}")
        return ", ".join(parts)


# --------------------------------------------------------------------------- spoken digits


class SpokenDigits(NamedTuple):
    """The synthesized spoken-digit corpus, one entry per clip (see :func:`load_spoken_digits`)."""
    waveforms: list          # float32 arrays, shape (L_i,), at ``sr``
    labels: np.ndarray       # int64 digit 0..9
    split: np.ndarray        # 'train', 'dev' or 'test' (disjoint voices)
    synthesizer: np.ndarray  # 'espeak-ng' or 'flite'
    voice: np.ndarray        # voice id, e.g. 'espeak-ng:en-us+f3', 'flite:slt'
    files: list              # paths
    sr: int


def _default_digits_root():
    """The corpus in the source checkout: beside the package in an in-place or editable build,
    else under the current directory (an installed package run from the checkout)."""
    relative = Path("examples") / "data" / "spoken_digits"
    beside = Path(__file__).resolve().parent.parent / relative
    if (beside / "manifest.csv").is_file():
        return beside
    return Path.cwd() / relative


def load_spoken_digits(root=None, split=None, synthesizer=None, sr=None):
    """Read the synthesized spoken-digit corpus: its ``manifest.csv`` and FLAC clips.

    The corpus (``examples/make_spoken_digits.py``) says "zero" to "nine" in espeak-ng and
    flite voices at 8 kHz; ``split`` is by voice family, so test and dev voices never occur in
    training, nor espeak-ng variants made from them or with their formants (the manifest's
    ``family`` column).

    Parameters
    ----------
    root : str or path-like, optional
        The folder with ``manifest.csv``; default ``examples/data/spoken_digits`` of the source
        checkout this module lives in.
    split : str or sequence of str, optional
        Keep only these splits (``'train'``, ``'dev'``, ``'test'``).
    synthesizer : str or sequence of str, optional
        Keep only these synthesizers (``'espeak-ng'``, ``'flite'``).
    sr : int, optional
        Resample to this rate (default: the files' rate, 8000).

    Returns
    -------
    SpokenDigits

    Examples
    --------
    >>> from pyconv1d.audio import load_spoken_digits
    >>> d = load_spoken_digits(split='test', synthesizer='flite')  # doctest: +SKIP
    >>> d.sr, sorted(set(d.labels.tolist()))                       # doctest: +SKIP
    (8000, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """
    root = _default_digits_root() if root is None else Path(root)
    if sr is not None:
        sr = _sample_rate(sr)
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"no manifest.csv in {str(root)!r}: pass root= the folder "
                                f"written by examples/make_spoken_digits.py")

    def _wanted(value, name, known):
        if value is None:
            return None
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, (list, tuple, set)) or not all(v in known for v in values):
            raise ValueError(f"{name} must be None or one or more of {known}, got {value!r}")
        return set(values)

    splits = _wanted(split, "split", ("train", "dev", "test"))
    synths = _wanted(synthesizer, "synthesizer", ("espeak-ng", "flite"))
    with open(manifest, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    missing = {"file", "digit", "split", "synthesizer", "voice"} - set(rows[0] if rows else ())
    if rows and missing:
        raise ValueError(f"{str(manifest)!r} lacks the column(s) {sorted(missing)}")
    for r in rows:
        if r["digit"] not in tuple("0123456789"):
            raise ValueError(f"{str(manifest)!r}: digit must be 0-9, got {r['digit']!r} for "
                             f"{r['file']!r}")
    rows = [r for r in rows if (splits is None or r["split"] in splits)
            and (synths is None or r["synthesizer"] in synths)]
    waves, files = [], []
    out_sr = None
    for r in rows:
        path = root / r["file"]
        x, file_sr = load(path, sr=sr)
        if out_sr is None:
            out_sr = file_sr
        elif file_sr != out_sr:
            raise ValueError(f"{str(path)!r} has sample rate {file_sr}, the others {out_sr} "
                             f"(pass sr= to resample)")
        waves.append(x)
        files.append(str(path))
    return SpokenDigits(waves, np.array([int(r["digit"]) for r in rows], dtype=np.int64),
                        np.array([r["split"] for r in rows], dtype=str),
                        np.array([r["synthesizer"] for r in rows], dtype=str),
                        np.array([r["voice"] for r in rows], dtype=str), files,
                        int(out_sr if out_sr is not None else (sr or 8000)))
