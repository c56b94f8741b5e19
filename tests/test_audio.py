"""pyconv1d.audio against independent references: scipy's STFTs, a brute-force DFT, an
interpolated filterbank, an explicit DCT matrix, soundfile round trips and finite differences."""
import csv
import math
import re

from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from scipy.fft import rfft

from pyconv1d import audio

sf = pytest.importorskip("soundfile")


def _noise(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _speechlike(sr=8000, seconds=0.5, seed=0):
    """A gliding harmonic tone in faint noise: wide dynamic range, like voiced speech."""
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120 + 80 * t
    x = sum(0.3 / h * np.sin(2 * np.pi * h * np.cumsum(f0) / sr) for h in range(1, 8))
    return x + 0.003 * _noise(t.size, seed)


# --------------------------------------------------------------------------- STFT


def _brute_force_stft(x, n_fft, hop, win, center, pad_mode):
    """The defining sum, one frame and one bin at a time, in float64."""
    x = np.asarray(x, dtype=np.float64)
    c = n_fft // 2 if center else 0
    if center:
        x = np.pad(x, (c, c), mode=pad_mode)
    n_frames = 1 + (len(x) - n_fft) // hop
    n = np.arange(n_fft)
    out = np.empty((n_fft // 2 + 1, n_frames), dtype=complex)
    for t in range(n_frames):
        seg = x[t * hop:t * hop + n_fft] * win
        for f in range(n_fft // 2 + 1):
            out[f, t] = np.sum(seg * np.exp(-2j * np.pi * f * n / n_fft))
    return out


@pytest.mark.parametrize("n_fft,hop,win_length", [(32, 8, None), (33, 7, None), (32, 5, 20),
                                                  (16, 16, 9)])
@pytest.mark.parametrize("center,pad_mode", [(True, "constant"), (True, "reflect"),
                                             (False, "constant")])
def test_stft_matches_brute_force_dft(n_fft, hop, win_length, center, pad_mode):
    x = _noise(150, seed=n_fft + hop)
    wl = n_fft if win_length is None else win_length
    win = np.zeros(n_fft)
    left = (n_fft - wl) // 2
    n = np.arange(wl)
    win[left:left + wl] = 0.5 - 0.5 * np.cos(2 * np.pi * n / wl)    # periodic Hann
    ref = _brute_force_stft(x, n_fft, hop, win, center, pad_mode)
    got = audio.stft(x, n_fft, hop, win_length, "hann", center, pad_mode)
    assert got.shape == ref.shape
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("boundary,pad_mode", [("zeros", "constant"), ("even", "reflect")])
@pytest.mark.parametrize("window", ["hann", "hamming", ("kaiser", 6.0)])
def test_stft_matches_scipy_signal_stft(boundary, pad_mode, window):
    x = _noise(2000, seed=3)
    n_fft, hop = 128, 40
    _, _, Z = scipy.signal.stft(x, window=window, nperseg=n_fft, noverlap=n_fft - hop,
                                boundary=boundary, padded=False, detrend=False)
    win = scipy.signal.get_window(window, n_fft)
    got = audio.stft(x, n_fft, hop, window=window, pad_mode=pad_mode)
    assert got.shape == Z.shape == (65, 1 + 2000 // hop)
    np.testing.assert_allclose(got, Z * win.sum(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("padding,pad_mode", [("zeros", "constant"), ("even", "reflect")])
def test_power_spectrogram_matches_short_time_fft(padding, pad_mode):
    x = _speechlike(seed=5)
    n_fft, hop = 256, 80
    win = scipy.signal.get_window("hann", n_fft)
    sft = scipy.signal.ShortTimeFFT(win, hop, fs=8000, mfft=n_fft, fft_mode="onesided",
                                    scale_to=None, phase_shift=None)
    n_frames = 1 + len(x) // hop
    Z = sft.stft(x, p0=0, p1=n_frames, padding=padding)
    S = audio.spectrogram(x, n_fft, hop, pad_mode=pad_mode)
    np.testing.assert_allclose(S, np.abs(Z) ** 2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(audio.stft(x, n_fft, hop, pad_mode=pad_mode), Z, atol=1e-10)
    mag = audio.spectrogram(x, n_fft, hop, pad_mode=pad_mode, power=1.0)
    np.testing.assert_allclose(mag, np.abs(Z), rtol=1e-10, atol=1e-12)


def test_stft_batched_float32_and_layouts():
    x = _noise((3, 2, 500), seed=1, dtype=np.float32)
    S = audio.spectrogram(x, 64, 16)
    assert S.shape == (3, 2, 33, 1 + 500 // 16) and S.dtype == np.float32
    one = audio.spectrogram(x[1, 0], 64, 16)
    np.testing.assert_allclose(S[1, 0], one, rtol=1e-6)
    fortran = np.asfortranarray(x[:, 0])
    sliced = x[:, 0]
    ro = x[:, 0].copy()
    ro.flags.writeable = False
    for arr in (fortran, sliced, ro):
        np.testing.assert_array_equal(audio.spectrogram(arr, 64, 16), S[:, 0])
    X = audio.stft(x[0, 0], 64, 16)
    assert X.dtype == np.complex64


def test_stft_frame_counts():
    x = np.zeros(1000)
    assert audio.stft(x, 256, 100).shape[-1] == 1 + 1000 // 100
    assert audio.stft(x, 256, 100, center=False).shape[-1] == 1 + (1000 - 256) // 100
    assert audio.stft(x, 256).shape[-1] == 1 + 1000 // 64     # default hop: win_length // 4


def test_frame_is_a_view_of_the_right_samples():
    x = np.arange(20.0)
    F = audio.frame(x, 6, 4)
    assert F.shape == (4, 6)
    for t in range(4):
        np.testing.assert_array_equal(F[t], x[4 * t:4 * t + 6])
    assert np.shares_memory(F, x)


def test_preemphasis_matches_lfilter():
    x = _noise((2, 300), seed=2)
    y = audio.preemphasis(x, 0.97)
    np.testing.assert_allclose(y, scipy.signal.lfilter([1.0, -0.97], [1.0], x, axis=-1),
                               atol=1e-12)
    yt = audio.preemphasis(x.T, 0.97, axis=0)
    np.testing.assert_allclose(yt, y.T, atol=1e-12)
    assert audio.preemphasis(x.astype(np.float32)).dtype == np.float32


def test_get_window_padding_and_arrays():
    w = audio.get_window("hann", 6, n_fft=11)
    assert w.shape == (11,)
    np.testing.assert_array_equal(w[:2], 0)
    np.testing.assert_array_equal(w[8:], 0)
    np.testing.assert_allclose(w[2:8], scipy.signal.get_window("hann", 6))
    custom = np.linspace(0, 1, 5)
    np.testing.assert_array_equal(audio.get_window(custom, 5), custom)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("ext,fmt", [("wav", "WAV"), ("flac", "FLAC")])
def test_soundfile_round_trip_of_a_tone(tmp_path, ext, fmt):
    sr = 16000
    t = np.arange(sr // 2) / sr
    tone = 0.6 * np.sin(2 * np.pi * 440.0 * t)
    path = tmp_path / f"tone.{ext}"
    audio.save(path, tone, sr)
    info = audio.info(path)
    assert (info.samplerate, info.channels, info.frames, info.format, info.subtype) == \
        (sr, 1, tone.size, fmt, "PCM_16")
    y, got_sr = audio.load(path, dtype=np.float64)
    assert got_sr == sr and y.shape == tone.shape
    assert np.abs(y - tone).max() <= 2 ** -15            # 16-bit quantisation
    y32, _ = audio.load(str(path))
    assert y32.dtype == np.float32
    # the tone is still at 440 Hz
    spec = np.abs(rfft(y * np.hanning(y.size)))
    assert abs(np.argmax(spec) * sr / y.size - 440.0) < 2.0


def test_save_load_stereo_mixdown_and_clipping(tmp_path):
    sr = 8000
    left = np.full(800, 0.5)
    right = np.linspace(-1, 1, 800)
    path = tmp_path / "stereo.flac"
    audio.save(path, np.stack([left, right]), sr)
    both, _ = audio.load(path, mono=False, dtype=np.float64)
    assert both.shape == (2, 800)
    mono, _ = audio.load(path, dtype=np.float64)
    np.testing.assert_allclose(mono, both.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(mono, (left + right) / 2, atol=2 ** -15)
    loud = tmp_path / "loud.wav"
    audio.save(loud, np.array([2.0, -3.0, 0.25]), sr)
    y, _ = audio.load(loud, dtype=np.float64)
    np.testing.assert_allclose(y, [1.0, -1.0, 0.25], atol=2 ** -15)   # clipped, not wrapped
    flt = tmp_path / "float.wav"
    audio.save(flt, np.array([2.0, -3.0, 0.25]), sr, subtype="FLOAT")
    np.testing.assert_allclose(audio.load(flt, dtype=np.float64)[0], [2.0, -3.0, 0.25])


def test_save_writes_short_clips_of_many_channels(tmp_path):
    """(C, L) with more channels than samples is written as it is up to 64 channels."""
    x = np.linspace(-0.5, 0.5, 160).reshape(16, 10)
    audio.save(tmp_path / "c16.wav", x, 8000, subtype="FLOAT")
    y, _ = audio.load(tmp_path / "c16.wav", mono=False, dtype=np.float64)
    np.testing.assert_allclose(y, x, atol=1e-7)


def test_save_takes_the_format_of_oga_and_aif_extensions(tmp_path):
    x = 0.25 * np.sin(np.arange(800) / 3.0)
    for name, fmt in (("a.aif", "AIFF"), ("b.oga", "OGG")):
        if fmt == "OGG" and "VORBIS" not in sf.available_subtypes("OGG"):
            continue
        audio.save(tmp_path / name, x, 8000)
        assert audio.info(tmp_path / name).format == fmt
        y, sr = audio.load(tmp_path / name, dtype=np.float64)
        assert sr == 8000 and y.shape == x.shape
        if fmt == "AIFF":                       # PCM_16: exact to its step
            np.testing.assert_allclose(y, x, atol=2 ** -15)


def test_ogg_vorbis_reads_back(tmp_path):
    if "VORBIS" not in sf.available_subtypes("OGG"):
        pytest.skip("this libsndfile has no Vorbis")
    sr = 16000
    t = np.arange(sr) / sr
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    path = tmp_path / "tone.ogg"
    audio.save(path, tone, sr)
    y, got_sr = audio.load(path, dtype=np.float64)
    assert got_sr == sr and abs(y.size - tone.size) < 2048
    spec = np.abs(rfft(y * np.hanning(y.size)))
    assert abs(np.argmax(spec) * sr / y.size - 1000.0) < 3.0


def test_load_resamples_with_the_reduced_ratio(tmp_path):
    sr = 22050
    x = 0.5 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)
    path = tmp_path / "x.wav"
    audio.save(path, x, sr, subtype="FLOAT")
    y, got_sr = audio.load(path, sr=8000, dtype=np.float64)
    assert got_sr == 8000
    ref = scipy.signal.resample_poly(x.astype(np.float32).astype(np.float64), 160, 441)
    np.testing.assert_allclose(y, ref, atol=1e-6)


# --------------------------------------------------------------------------- resampling


@pytest.mark.parametrize("orig,target,up,down", [(44100, 16000, 160, 441),
                                                 (16000, 8000, 1, 2), (8000, 22050, 441, 160),
                                                 (48000, 16000, 1, 3)])
def test_resample_ratio_and_tone(orig, target, up, down):
    assert math.gcd(orig, target) * up == target and math.gcd(orig, target) * down == orig
    x = np.sin(2 * np.pi * 440 * np.arange(orig // 4) / orig)
    y = audio.resample(x, orig, target)
    np.testing.assert_allclose(y, scipy.signal.resample_poly(x, up, down), atol=1e-12)
    assert y.size == math.ceil(x.size * target / orig)
    expect = np.sin(2 * np.pi * 440 * np.arange(y.size) / target)
    inner = slice(y.size // 10, -y.size // 10)
    assert np.abs(y[inner] - expect[inner]).max() < 2e-3


def test_resample_dtype_axis_and_identity():
    x = _noise((3, 1600), seed=4, dtype=np.float32)
    y = audio.resample(x, 16000, 8000)
    assert y.dtype == np.float32 and y.shape == (3, 800)
    np.testing.assert_allclose(audio.resample(x.T, 16000, 8000, axis=0), y.T, atol=1e-6)
    same = audio.resample(x, 8000, 8000)
    np.testing.assert_array_equal(same, x)
    assert not np.shares_memory(same, x)


# --------------------------------------------------------------------------- mel filterbank


def test_mel_scale_values():
    # Slaney: linear 3 mels per 200 Hz up to 1 kHz, then 27 mels per factor 6.4
    assert audio.hz_to_mel(1000.0) == 15.0
    np.testing.assert_allclose(audio.hz_to_mel([0.0, 200.0, 500.0, 6400.0]),
                               [0.0, 3.0, 7.5, 42.0], atol=1e-12)
    np.testing.assert_allclose(audio.hz_to_mel(2000.0), 15 + 27 * math.log(2) / math.log(6.4))
    # HTK: 2595 log10(1 + f / 700)
    np.testing.assert_allclose(audio.hz_to_mel(700.0, htk=True), 2595 * math.log10(2))
    np.testing.assert_allclose(audio.hz_to_mel(1000.0, htk=True), 999.98553, atol=1e-4)
    np.testing.assert_allclose(audio.hz_to_mel(4000.0, htk=True), 2146.0645, atol=1e-3)
    f = np.linspace(0, 11025, 300)
    for htk in (False, True):
        np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(f, htk), htk), f,
                                   atol=1e-9)
    # the two scales agree in shape but not in value
    assert audio.hz_to_mel(4000.0) != audio.hz_to_mel(4000.0, htk=True)


def _interp_filterbank(sr, n_fft, n_mels, fmin, fmax, htk):
    """Each triangle by np.interp through (left edge, 0), (centre, 1), (right edge, 0)."""
    m = np.linspace(audio.hz_to_mel(fmin, htk), audio.hz_to_mel(fmax, htk), n_mels + 2)
    edges = audio.mel_to_hz(m, htk)
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    return np.stack([np.interp(freqs, edges[i:i + 3], [0.0, 1.0, 0.0], left=0, right=0)
                     for i in range(n_mels)]), edges, freqs


@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", [(8000, 256, 40, 0.0, None),
                                                       (16000, 512, 64, 20.0, 7600.0),
                                                       (22050, 2048, 128, 0.0, None)])
@pytest.mark.parametrize("htk", [False, True])
def test_mel_filterbank_triangles_and_partition(sr, n_fft, n_mels, fmin, fmax, htk):
    fb = audio.mel_filterbank(sr, n_fft, n_mels, fmin, fmax, htk, norm=None)
    ref, edges, freqs = _interp_filterbank(sr, n_fft, n_mels, fmin,
                                           sr / 2 if fmax is None else fmax, htk)
    assert fb.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(fb, ref, atol=1e-12)
    # each filter peaks within a bin of its centre and is zero outside its edges
    df = sr / n_fft
    for i in range(n_mels):
        assert abs(freqs[np.argmax(fb[i])] - edges[i + 1]) < df
        outside = (freqs <= edges[i]) | (freqs >= edges[i + 2])
        assert not fb[i, outside].any()
    # partition of unity between the first and the last centre
    inside = (freqs >= edges[1]) & (freqs <= edges[-2])
    np.testing.assert_allclose(fb[:, inside].sum(axis=0), 1.0, atol=1e-12)
    assert not fb[:, (freqs < edges[0]) | (freqs > edges[-1])].any()


def test_slaney_area_normalisation():
    sr, n_fft = 16000, 4096
    plain = audio.mel_filterbank(sr, n_fft, 40, norm=None)
    area = audio.mel_filterbank(sr, n_fft, 40, norm="slaney")
    edges = audio.mel_frequencies(42, 0.0, sr / 2)
    np.testing.assert_allclose(area, plain * (2.0 / (edges[2:] - edges[:-2]))[:, None],
                               rtol=1e-12)
    # unit area in Hz: the Riemann sum over bins is ~1 for every filter
    np.testing.assert_allclose(area.sum(axis=1) * sr / n_fft, 1.0, rtol=0.02)
    # HTK and Slaney place the filters differently
    htk = audio.mel_filterbank(sr, n_fft, 40, htk=True, norm=None)
    assert np.argmax(htk[5]) != np.argmax(plain[5])


def test_mel_filterbank_warns_on_empty_filters():
    with pytest.warns(UserWarning, match="all zero"):
        audio.mel_filterbank(8000, 64, n_mels=64)


# --------------------------------------------------------------------------- features


def test_log_mel_and_mfcc_against_independent_computation():
    sr, n_fft, hop, n_mels = 8000, 256, 80, 32
    x = _speechlike(sr)
    win = scipy.signal.get_window("hann", n_fft)
    _, _, Z = scipy.signal.stft(x, window=win, nperseg=n_fft, noverlap=n_fft - hop,
                                boundary="zeros", padded=False, detrend=False)
    power = np.abs(Z * win.sum()) ** 2
    tri, edges, _ = _interp_filterbank(sr, n_fft, n_mels, 0.0, sr / 2, False)
    fb = tri * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    ref_log = np.log(np.maximum(fb @ power, 1e-10))
    L = audio.log_mel(x, sr, n_fft, hop, n_mels=n_mels)
    np.testing.assert_allclose(L, ref_log, atol=1e-9)
    # DCT-II, orthonormal, written out as a matrix
    m = np.arange(n_mels)
    k = np.arange(13)[:, None]
    D = np.sqrt(2.0 / n_mels) * np.cos(np.pi * k * (2 * m + 1) / (2 * n_mels))
    D[0] /= np.sqrt(2.0)
    np.testing.assert_allclose(D @ D.T, np.eye(13), atol=1e-12)
    C = audio.mfcc(x, sr, 13, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    np.testing.assert_allclose(C, D @ ref_log, atol=1e-8)
    np.testing.assert_allclose(audio.mfcc(S=L, n_mfcc=13), C, atol=1e-12)
    lift = 1 + 11 * np.sin(np.pi * np.arange(1, 14) / 22)
    np.testing.assert_allclose(audio.mfcc(S=L, n_mfcc=13, lifter=22), C * lift[:, None],
                               atol=1e-10)


def test_log_mel_floor_and_dtype():
    x = np.zeros((2, 800), dtype=np.float32)
    x[1, 400] = 1.0
    L = audio.log_mel(x, 8000, 200, 80, n_mels=20, floor=1e-5)
    assert L.dtype == np.float32 and L.shape == (2, 20, 11)
    assert np.isfinite(L).all()
    np.testing.assert_allclose(L[0], np.log(np.float32(1e-5)))
    assert L[1].max() > np.log(1e-5)


def test_cmvn():
    f = _noise((2, 13, 50), seed=6) * 3 + 7
    n = audio.cmvn(f)
    np.testing.assert_allclose(n.mean(axis=-1), 0, atol=1e-12)
    np.testing.assert_allclose(n.std(axis=-1), 1, atol=1e-6)
    cmn = audio.cmvn(f, variance=False)
    np.testing.assert_allclose(cmn, f - f.mean(axis=-1, keepdims=True))
    np.testing.assert_allclose(audio.cmvn(f.swapaxes(-1, -2), axis=-2).swapaxes(-1, -2), n)
    const = audio.cmvn(np.ones((3, 10)))
    assert np.isfinite(const).all() and not const.any()


def test_spec_augment_masks_are_seeded_bands():
    S = np.arange(40 * 100, dtype=np.float64).reshape(40, 100) + 1.0
    A = audio.spec_augment(S, np.random.default_rng(7), 2, 8, 2, 20, value=0.0)
    B = audio.spec_augment(S, 7, 2, 8, 2, 20, value=0.0)
    np.testing.assert_array_equal(A, B)
    assert (S > 0).all()                                  # the input is untouched
    masked = A == 0
    rows = masked.all(axis=1)
    cols = masked.all(axis=0)
    np.testing.assert_array_equal(masked, rows[:, None] | cols[None, :])
    assert rows.sum() <= 16 and cols.sum() <= 40
    np.testing.assert_array_equal(A[~masked], S[~masked])
    others = [audio.spec_augment(S, seed, 2, 8, 2, 20, value=0.0) for seed in range(5)]
    assert any(not np.array_equal(o, A) for o in others)
    # batches are masked utterance by utterance, default fill is each one's mean
    batch = np.stack([S, 2 * S])
    out = audio.spec_augment(batch, 1, 1, 40, 0, 0)
    for u in range(2):
        changed = out[u] != batch[u]
        assert np.allclose(out[u][changed], batch[u].mean())
    none = audio.spec_augment(S, 0, 0, 8, 0, 20)
    np.testing.assert_array_equal(none, S)


# --------------------------------------------------------------------------- conv front-end


@pytest.mark.parametrize("center,pad_mode", [(True, "constant"), (True, "reflect"),
                                             (False, "constant")])
@pytest.mark.parametrize("n_fft,hop,win_length", [(256, 80, None), (200, 80, 160),
                                                  (512, 160, 400)])
def test_conv_mel_spectrogram_matches_numpy_in_float32(center, pad_mode, n_fft, hop,
                                                       win_length):
    sr = 8000
    x = np.stack([_speechlike(sr, seed=1), 0.1 * _speechlike(sr, seed=2)])
    layer = audio.MelSpectrogram(sr, n_fft, hop, win_length, center=center, pad_mode=pad_mode,
                                 n_mels=40, num_threads=2)
    y = layer.forward(x.astype(np.float32))
    ref = audio.log_mel(x, sr, n_fft, hop, win_length, center=center, pad_mode=pad_mode,
                        n_mels=40)
    assert y.dtype == np.float32 and y.shape == ref.shape
    # log energies: the error is relative, float32 FFT-sized sums give ~1e-5
    np.testing.assert_allclose(y, ref, rtol=0, atol=3e-4)
    layer64 = audio.MelSpectrogram(sr, n_fft, hop, win_length, center=center,
                                   pad_mode=pad_mode, n_mels=40, dtype=np.float64)
    np.testing.assert_allclose(layer64(x), ref, rtol=0, atol=1e-9)
    # unbatched input, and the energies themselves
    np.testing.assert_allclose(layer64(x[1]), ref[1], atol=1e-9)
    energies = audio.MelSpectrogram(sr, n_fft, hop, win_length, center=center,
                                    pad_mode=pad_mode, n_mels=40, log=False)
    mel = audio.mel_spectrogram(x, sr, n_fft, hop, win_length, center=center,
                                pad_mode=pad_mode, n_mels=40)
    e = energies(x.astype(np.float32))
    np.testing.assert_allclose(e, mel, rtol=1e-3, atol=1e-5 * mel.max())
    assert layer.n_frames(x.shape[-1]) == y.shape[-1]


@pytest.mark.parametrize("n_fft", [30, 31])
@pytest.mark.parametrize("center", [True, False])
def test_frame_counts_for_odd_and_even_n_fft(n_fft, center):
    """n_frames said 1 + L // hop for an odd n_fft too, where centring pads n_fft // 2 samples
    on each side, n_fft - 1 in all, and gives 1 + (L - 1) // hop; and an odd n_fft with no
    samples failed deep inside instead of giving no frames."""
    layer = audio.MelSpectrogram(8000, n_fft=n_fft, hop_length=5, n_mels=4, center=center,
                                 dtype=np.float64)
    for L in range(0 if center else n_fft, 62):
        x = np.random.default_rng(L).standard_normal(L)
        y = layer(x)
        frames = audio.stft(x, n_fft, 5, center=center).shape[-1]
        pad = n_fft // 2 * 2 if center else 0
        assert layer.n_frames(L) == y.shape[-1] == frames == 1 + (L + pad - n_fft) // 5, L
        assert layer.backward(np.ones_like(y)).shape == (L,)


@pytest.mark.parametrize("center,pad_mode,log", [(True, "constant", True),
                                                 (True, "reflect", True),
                                                 (False, "constant", True),
                                                 (True, "reflect", False)])
def test_conv_mel_spectrogram_backward_by_central_differences(center, pad_mode, log):
    sr, n_fft, hop = 8000, 32, 8
    layer = audio.MelSpectrogram(sr, n_fft, hop, center=center, pad_mode=pad_mode, n_mels=8,
                                 log=log, dtype=np.float64, floor=1e-12, num_threads=1)
    x = _noise((2, 90), seed=8)
    y = layer(x)
    g = _noise(y.shape, seed=9)
    gx = layer.backward(g)
    assert gx.shape == x.shape

    def numeric(d, eps=1e-6):
        return np.sum((layer(x + eps * d) - layer(x - eps * d)) * g) / (2 * eps)

    # every sample near the edges (where reflect padding folds back), one at a time
    edge = [(n, t) for n in range(2) for t in list(range(n_fft)) + list(range(90 - n_fft, 90))]
    num = np.empty(len(edge))
    for i, idx in enumerate(edge):
        d = np.zeros_like(x)
        d[idx] = 1.0
        num[i] = numeric(d)
    got = np.array([gx[idx] for idx in edge])
    np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-7 * np.abs(num).max())
    # and the whole gradient along random directions
    for seed in range(4):
        d = _noise(x.shape, seed=20 + seed)
        np.testing.assert_allclose(np.sum(gx * d), numeric(d), rtol=1e-6)


def test_conv_mel_spectrogram_kernel_bank_is_the_dft():
    layer = audio.MelSpectrogram(8000, 16, 4, n_mels=4, dtype=np.float64)
    W = layer.weight[:, 0]
    assert W.shape == (18, 16)
    x = _noise(16, seed=10)
    X = rfft(x * scipy.signal.get_window("hann", 16))
    np.testing.assert_allclose(W[:9] @ x + 1j * (W[9:] @ x), X, atol=1e-12)
    assert "n_mels=4" in repr(layer) and "dtype=float64" in repr(layer)


def test_conv_mel_spectrogram_is_a_parameter_free_layer(tmp_path):
    from pyconv1d import nn
    layer = audio.MelSpectrogram(8000, 32, 8, n_mels=8)
    assert isinstance(layer, nn.Module)
    assert list(layer.parameters()) == [] and not layer.state_dict()
    x = _noise((2, 64), seed=11, dtype=np.float32)
    np.testing.assert_array_equal(layer(x), layer.forward(x))
    # first in a model: its backward receives the model's input gradient
    _ = nn.manual_seed(0)
    model = nn.Sequential(audio.MelSpectrogram(8000, 32, 8, n_mels=8), nn.Conv1d(8, 4, 3),
                          nn.ReLU(), nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    out = model(x)
    assert out.shape == (2, 2)
    gx = model.backward(np.ones_like(out))
    assert gx.shape == x.shape and np.isfinite(gx).all()
    assert model[1].weight.grad is not None
    assert repr(model).startswith("Sequential(") and "MelSpectrogram(sr=8000" in repr(model)
    model.save(tmp_path / "m.npz")
    model.load(tmp_path / "m.npz")


def test_mel_spectrogram_layer_to_dtype():
    x = np.random.default_rng(3).standard_normal((2, 400))
    layer = audio.MelSpectrogram(8000, 64, 16, n_mels=8)
    want = audio.MelSpectrogram(8000, 64, 16, n_mels=8, dtype=np.float64)
    assert layer.double() is layer and layer.dtype == np.float64
    np.testing.assert_array_equal(layer(x.astype(np.float32)), want(x.astype(np.float32)))
    assert layer.float()(x.astype(np.float32)).dtype == np.float32


def test_conv_mel_spectrogram_backward_before_forward():
    layer = audio.MelSpectrogram(8000, 32, 8, n_mels=8)
    with pytest.raises(RuntimeError, match="without a forward before it"):
        layer.backward(np.zeros((8, 3), dtype=np.float32))
    y = layer(np.zeros(64, dtype=np.float32))
    with pytest.raises(ValueError, match="grad_output must have the output's shape"):
        layer.backward(np.zeros((8, 3), dtype=np.float32))
    layer.backward(np.ones_like(y))
    with pytest.raises(RuntimeError, match="each forward allows one backward"):
        layer.backward(np.ones_like(y))
    # the first layer of a model: no parameters, so no work (the shape is still checked)
    y = layer(np.zeros(64, dtype=np.float32))
    with pytest.raises(ValueError, match="grad_output must have the output's shape"):
        layer.backward(np.zeros((8, 3), dtype=np.float32), input_grad=False)
    assert layer.backward(np.ones_like(y), input_grad=False) is None
    with pytest.raises(RuntimeError, match="each forward allows one backward"):
        layer.backward(np.ones_like(y), input_grad=False)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call,exc,match", [
    (lambda: audio.stft(np.zeros(100), n_fft=0), ValueError, r"n_fft must be an int >= 1, got 0"),
    (lambda: audio.stft(np.zeros(100), n_fft=2.5), TypeError, r"n_fft must be an int"),
    (lambda: audio.stft(np.zeros(100), 64, win_length=65),
     ValueError, r"win_length must be <= n_fft=64, got 65"),
    (lambda: audio.stft(np.zeros(100), 64, hop_length=-1),
     ValueError, r"hop_length must be an int >= 1, got -1"),
    (lambda: audio.stft(np.zeros(100), 64, pad_mode="edge"),
     ValueError, r"pad_mode must be one of .*'edge'"),
    (lambda: audio.stft(np.zeros(20), 64, pad_mode="reflect"),
     ValueError, r"pad_mode='reflect' needs more than"),
    (lambda: audio.stft(np.zeros(20), 64, center=False), ValueError, r"fewer than n_fft=64"),
    (lambda: audio.stft(np.zeros(100, dtype=np.int16), 64),
     TypeError, r"x must be a float32 or float64 array, got dtype int16"),
    (lambda: audio.stft(np.zeros(100), 64, window="nope"), ValueError, r"window 'nope'"),
    (lambda: audio.stft(np.zeros(100), 64, window=np.ones(3)),
     ValueError, r"window must be a name or an array of shape \(64,\)"),
    (lambda: audio.spectrogram(np.zeros(100), 64, power=0),
     ValueError, r"power must be a finite number in \(0.0, inf\), got 0"),
    (lambda: audio.preemphasis(np.zeros(10), coef=1.5),
     ValueError, r"coef must be a finite number in \[0.0, 1.0\], got 1.5"),
    (lambda: audio.frame(np.zeros(3), 4, 1), ValueError, r"at least frame_length=4"),
    (lambda: audio.resample(np.zeros(10), 0, 8000),
     ValueError, r"orig_sr must be a positive int .*got 0"),
    (lambda: audio.resample(np.zeros(10), 8000, "16k"),
     TypeError, r"target_sr must be a positive int .*'16k'"),
    (lambda: audio.mel_filterbank(8000, 256, fmax=5000),
     ValueError, r"fmax must be a finite number in \(-inf, 4000.0\], got 5000"),
    (lambda: audio.mel_filterbank(8000, 256, fmin=3000, fmax=2000),
     ValueError, r"fmin must be < fmax=2000.0, got 3000.0"),
    (lambda: audio.mel_filterbank(8000, 256, norm="l2"),
     ValueError, r"norm must be 'slaney' or None, got 'l2'"),
    (lambda: audio.resample(np.ones((2, 10)), 8000, 16000, axis=3), ValueError,
     r"axis must be in \[-2, 2\) for an array of 2 dimensions, got 3"),
    (lambda: audio.cmvn(np.ones((2, 5)), axis=1.0), TypeError, "axis must be an int, got 1.0"),
    (lambda: audio.preemphasis(np.ones(5), axis=1.5), TypeError, "axis must be an int"),
    (lambda: audio.spec_augment(np.ones((4, 10)), rng=-1), ValueError,
     "rng must be an int >= 0, a numpy.random.Generator or None, got -1"),
    (lambda: audio.load_spoken_digits(split="validation"), ValueError,
     "split must be None or one or more of"),
    (lambda: audio.load_spoken_digits(synthesizer="espeak"), ValueError,
     "synthesizer must be None or one or more of"),
    (lambda: audio.load("/nonexistent/clip.wav"), FileNotFoundError,
     "no audio file '/nonexistent/clip.wav'"),
    (lambda: audio.mel_filterbank(8000, 256, htk="no"), TypeError,
     "htk must be a bool, got 'no'"),
    (lambda: audio.mel_filterbank(8000, 256, dtype=int), TypeError,
     "dtype must be float32 or float64, got int64"),
    (lambda: audio.get_window("hann", 8, dtype=complex), TypeError,
     "dtype must be float32 or float64, got complex128"),
    (lambda: audio.stft(np.zeros(1000), 256, center="no"), TypeError,
     "center must be a bool, got 'no'"),
    (lambda: audio.mel_to_hz(15.0, htk=1), TypeError, "htk must be a bool, got 1"),
    (lambda: audio.MelSpectrogram(8000, n_fft=64, n_mels=8, center=0), TypeError,
     "center must be a bool, got 0"),
    (lambda: audio.mel_filterbank(8000, 256, n_mels=0),
     ValueError, r"n_mels must be an int >= 1, got 0"),
    (lambda: audio.log_mel(np.zeros(400), 8000, 256, floor=0.0),
     ValueError, r"floor must be a finite number in \(0.0, inf\), got 0.0"),
    (lambda: audio.mfcc(S=np.zeros((10, 5)), n_mfcc=11),
     ValueError, r"n_mfcc must be <= n_mels=10, got 11"),
    (lambda: audio.mfcc(np.zeros(400)),
     TypeError, r"mfcc needs either a waveform x and its sample rate sr"),
    (lambda: audio.mfcc(S=np.zeros((10, 5)), n_fft=4), TypeError, r"\['n_fft'\] have no effect"),
    (lambda: audio.spec_augment(np.zeros((4, 4)), rng="seed"),
     TypeError, r"rng must be an int >= 0, a numpy.random.Generator or None, got 'seed'"),
    (lambda: audio.spec_augment(np.zeros((4, 4)), freq_masks=-1),
     ValueError, r"freq_masks must be an int >= 0, got -1"),
    (lambda: audio.spec_augment(np.zeros(4)), ValueError, r"spec must have at least 2 dimension"),
    (lambda: audio.MelSpectrogram(8000, 64, dtype=np.int32),
     TypeError, r"dtype must be float32 or float64, got int32"),
    (lambda: audio.MelSpectrogram(8000, 64, n_mels=8)(np.zeros((2, 2, 100))),
     ValueError, r"x must have shape \(N, L\) or \(L,\), got shape \(2, 2, 100\)"),
    (lambda: audio.load("x.wav", dtype=np.int16),
     TypeError, r"dtype must be float32 or float64, got int16"),
    (lambda: audio.save("x.wav", np.zeros((1, 2, 3)), 8000),
     ValueError, r"audio must have shape \(L,\) or \(C, L\), got shape \(1, 2, 3\)"),
    (lambda: audio.save("x.wav", np.array([np.nan]), 8000), ValueError, r"audio must be finite"),
    (lambda: audio.save("x.wav", np.zeros(3), -8000),
     ValueError, r"sr must be a positive int .*got -8000"),
    (lambda: audio.save("x.wav", np.zeros((100, 2)), 8000),
     ValueError, r"shape \(C, L\), channels first, got shape \(100, 2\) \(more than 64 "
                 r"channels.*audio\.T"),
    (lambda: audio.save("x.wav", np.zeros(8), 8000, subtype=16),
     TypeError, r"subtype must be a str or None, got 16"),
    (lambda: audio.save("x.wav", np.zeros(8), 8000, compression_level=0.5),
     ValueError, r"compression_level applies to FLAC, OGG and MP3 files only, got format "
                 r"'WAV'"),
    (lambda: audio.mel_filterbank(True, 64), TypeError,
     r"sr must be a positive int .*got True"),
    (lambda: audio.resample(np.zeros(8), 16000, np.True_), TypeError,
     r"target_sr must be a positive int .*got (np\.)?True"),
    (lambda: audio.resample(np.zeros(1000), 1000003, 999983), ValueError,
     r"from orig_sr=1000003 to target_sr=999983 is by 999983/1000003 in lowest terms, more "
     r"than 131072"),
    (lambda: audio.info("/nonexistent/clip.wav"), FileNotFoundError,
     "no audio file '/nonexistent/clip.wav'"),
    (lambda: audio.load("x.wav", mono=None), TypeError, "mono must be a bool, got None"),
    (lambda: audio.cmvn(np.ones((2, 5)), variance="no"), TypeError,
     "variance must be a bool, got 'no'"),
    (lambda: audio.cmvn(np.ones((2, 5)), eps=0), ValueError,
     r"eps must be a finite number in \(0.0, inf\), got 0"),
    (lambda: audio.mel_frequencies(2 ** 62), ValueError,
     r"n_mels=4611686018427387904 frequencies would need .* GiB"),
    (lambda: audio.mel_filterbank(8000, 512, 10, 1000.0, np.nextafter(1000.0, 2000.0)),
     ValueError, r"fmin=1000.0 and fmax=1000.0000000000001 are too close for n_mels=10"),
    (lambda: audio.log_mel(np.zeros(400, np.float32), 8000, 64, n_mels=8, floor=1e-50),
     ValueError, r"floor must be at least 1.17\d*e-38 for float32 data, got 1e-50"),
    (lambda: audio.MelSpectrogram(8000, 64, n_mels=8, floor=1e-50)(np.zeros(400, np.float32)),
     ValueError, r"floor must be at least 1.17\d*e-38 for float32 data, got 1e-50"),
])
def test_errors_name_the_argument_and_value(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# --------------------------------------------------------------------------- spoken digits


def _write_tiny_corpus(root):
    rows = []
    for i, (digit, split, synth, voice) in enumerate([(3, "train", "espeak-ng", "espeak-ng:a"),
                                                      (7, "test", "flite", "flite:b")]):
        name = f"clips/{i}.flac"
        (root / "clips").mkdir(exist_ok=True)
        audio.save(root / name, 0.1 * np.sin(np.arange(800 + 100 * i) / 5.0), 8000)
        rows.append({"file": name, "digit": digit, "synthesizer": synth, "voice": voice,
                     "split": split})
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_load_spoken_digits_on_a_tiny_fixture(tmp_path):
    _write_tiny_corpus(tmp_path)
    d = audio.load_spoken_digits(tmp_path)
    assert d.sr == 8000 and d.labels.tolist() == [3, 7]
    assert [w.shape for w in d.waveforms] == [(800,), (900,)]
    assert d.waveforms[0].dtype == np.float32
    assert d.split.tolist() == ["train", "test"]
    assert d.synthesizer.tolist() == ["espeak-ng", "flite"]
    only = audio.load_spoken_digits(tmp_path, split="test", sr=16000)
    assert only.labels.tolist() == [7] and only.sr == 16000 and only.waveforms[0].size == 1800
    assert audio.load_spoken_digits(tmp_path, synthesizer=["flite"]).voice.tolist() == \
        ["flite:b"]
    with pytest.raises(FileNotFoundError, match="no manifest.csv"):
        audio.load_spoken_digits(tmp_path / "clips")
    manifest = tmp_path / "manifest.csv"
    text = manifest.read_text()
    manifest.write_text(text.replace("clips/1.flac,7", "clips/1.flac,42"))
    with pytest.raises(ValueError, match="digit must be 0-9, got '42'"):
        audio.load_spoken_digits(tmp_path)
    manifest.write_text(text.replace("split", "part"))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['split'\]"):
        audio.load_spoken_digits(tmp_path)
    manifest.write_text(text.replace("voice", "speaker"))
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['voice'\]"):
        audio.load_spoken_digits(tmp_path)
    manifest.write_text(text.splitlines()[0] + "\n")        # no clips: sr is still checked
    with pytest.raises(ValueError, match="sr must be a positive int .*got -5"):
        audio.load_spoken_digits(tmp_path, sr=-5)


def test_committed_spoken_digit_corpus_splits_by_voice_family():
    root = Path(__file__).resolve().parent.parent / "examples" / "data" / "spoken_digits"
    assert (root / "manifest.csv").is_file(), "the committed corpus is missing"
    with open(root / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["digit"] for r in rows} == {str(d) for d in range(10)}
    # a voice family stays in one split: the manifest's families, numbered espeak-ng variants
    # with their base (iven2 has iven's pitch and formants; the name without its trailing
    # digits, one- or two-letter names such as m3 aside), and where espeak-ng's voice files
    # are here, variants with the same formant settings (max's are robosoft7's)
    espeak = [r for r in rows if r["synthesizer"] == "espeak-ng"]
    for r in espeak:
        base = re.sub(r"\d+$", "", r["variant"])
        r["name_family"] = base if len(base) >= 3 else r["variant"]
    keys = ["voice", "speaker", "family"]
    folder = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v")
    if folder.is_dir():
        for r in espeak:
            path = folder / r["variant"]
            lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
            r["formants"] = repr(sorted(" ".join(x.split("//")[0].split()) for x in lines
                                        if x.startswith("formant"))) + \
                ("" if any(x.startswith("formant") for x in lines) else r["variant"])
        keys.append("formants")
    for key in ("name_family",) + tuple(keys[3:]):
        sets = {s: {r[key] for r in espeak if r["split"] == s} for s in ("train", "dev", "test")}
        assert not sets["train"] & sets["test"] and not sets["train"] & sets["dev"] \
            and not sets["dev"] & sets["test"], (key, sets["test"] & sets["train"])
    for key in keys[:3]:
        sets = {s: {r[key] for r in rows if r["split"] == s} for s in ("train", "dev", "test")}
        assert all(sets.values())
        assert not sets["train"] & sets["test"], key
        assert not sets["train"] & sets["dev"], key
        assert not sets["dev"] & sets["test"], key
    for split in ("train", "dev", "test"):
        assert {r["synthesizer"] for r in rows if r["split"] == split} == {"espeak-ng", "flite"}
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert len(list(root.rglob("*.flac"))) == len(rows) and size <= 8e6
    assert {r["synthesizer"] for r in rows} == {"espeak-ng", "flite"}
    for r in rows[::max(1, len(rows) // 20)]:
        info = audio.info(root / r["file"])
        assert (info.samplerate, info.channels, info.format) == (8000, 1, "FLAC")


def test_sizes_that_would_not_fit_memory_are_value_errors():
    """n_fft or mask counts far beyond any signal are refused up front, naming the argument
    (an n_fft of 2**31 ran out of memory, 10**9 masks looped for ever, n_fft = 2**20 asked
    for a 4 TiB Fourier bank)."""
    for call, match in [
            (lambda: audio.stft(np.zeros(4000), n_fft=2 ** 31, hop_length=2 ** 31),
             "n_fft=2147483648 every hop_length=2147483648"),
            (lambda: audio.get_window("hann", 8, n_fft=2 ** 40), "n_fft=1099511627776"),
            (lambda: audio.mel_filterbank(8000, 2 ** 40), "n_fft=1099511627776"),
            (lambda: audio.MelSpectrogram(8000, n_fft=2 ** 20), "n_fft=1048576"),
            (lambda: audio.spec_augment(np.ones((4, 10)), rng=0, freq_masks=10 ** 9),
             "at most 10000, got 1000000000")]:
        with pytest.raises(ValueError, match=match):
            call()


def test_empty_signals_and_spectrograms():
    """No samples: the MelSpectrogram layer gives the one frame of padding that stft and
    log_mel give (it raised on a reshape), and spec_augment returns an empty input as it is."""
    layer = audio.MelSpectrogram(8000, n_fft=64, n_mels=8)
    y = layer(np.zeros(0, np.float32))
    assert y.shape == (8, 1)
    np.testing.assert_allclose(y, audio.log_mel(np.zeros(0, np.float32), 8000, n_fft=64,
                                                n_mels=8), rtol=1e-5)
    assert layer.backward(np.ones(y.shape)).shape == (0,)
    for shape in ((0, 10), (4, 0), (2, 0, 5)):
        assert audio.spec_augment(np.ones(shape), rng=0).shape == shape
