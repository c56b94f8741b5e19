"""Synthesize a spoken-digit corpus ("zero" ... "nine") with espeak-ng and flite.

Needs the Debian packages ``espeak-ng`` and ``flite`` (``apt-get install espeak-ng flite``) and
the Python packages numpy, scipy and soundfile; tqdm is used for a progress bar if present.

    python examples/make_spoken_digits.py                  # writes examples/data/spoken_digits/
    python examples/make_spoken_digits.py --out /tmp/sd --espeak-takes 1 --flite-takes 4

What it makes
-------------
* espeak-ng: every voice variant this espeak-ng has (``espeak-ng --voices=variant``; variants
  that sound the same as another are dropped), each in ``--espeak-takes`` of the eight English
  accents (en-gb, en-us, Scottish, Lancastrian, RP, West Midlands, Caribbean, New York City),
  at a random pitch (``-p`` 20..80) and speed (``-s`` 130..230 words a minute) per clip.
* flite: the voices kal, kal16, awb, rms and slt (``flite -lv``; awb_time is left out: it is a
  limited-domain voice for clock times and mispronounces words outside that domain), each in
  ``--flite-takes`` takes with a random mean pitch (0.8..1.3 times the voice's own, ignored by
  rms) and duration stretch (0.8..1.3).
* Every clip is resampled to 8 kHz with a random speed perturbation (0.92..1.08: pitch, tempo and
  formants together), trimmed to the word (40 dB below its loudest 20 ms, 20 ms margins), given
  0..60 ms of lead-in and tail, normalised to a peak of 0.9, then augmented: a random gain of
  -20..0 dB and, with probability 0.7, white, pink or brown noise at 10..35 dB SNR. Samples are
  rounded to an 11-bit grid (``--bits``; quantisation noise near -68 dBFS, 30 dB or more below
  the speech even at -20 dB gain), which FLAC stores in fewer bits, and written as 16-bit mono
  FLAC: about 2.6 kB a clip, so the default 2,580 clips stay under 8 MB.
* All randomness comes from ``--seed``: the same espeak-ng/flite versions give the same corpus.

Split (by voice family: no test or dev voice occurs in training)
----------------------------------------------------------------
A voice (column ``voice``) is an espeak-ng accent+variant or a flite voice; the split is drawn
by *speaker* (column ``speaker``: the espeak-ng variant, whatever the accent, or the flite
speaker, kal and kal16 being one), and by *family* (column ``family``): numbered espeak-ng
variants go with the variant they are made from (``iven2``, ``iven3`` with ``iven``;
``steph2``, ``Gene2``...: the same pitch and formants, or nearly, with other voicing or
consonant settings), and variants with the same formant settings in espeak-ng's voice files
are one family whatever their names (``max`` with ``robosoft7``, ``RicishayMax`` and the
other robosofts; ``Hugo`` with ``Diogo``, ``michel``...), so no test voice's timbre is heard
in training. (``Mr serious`` differs from the plain voice only in its third formant, 87 %, and
a tone setting, and stays a voice of its own.) These families go to test and dev at random
(seeded), each split taking up to 15 % of the variants and no family of more than a fifth of
that (the 13 robosoft-like voices stay in training), the rest to train; flite's awb, kal and
kal16 are train, rms dev and slt test. For a train-on-espeak, test-on-flite experiment, select
on the ``synthesizer`` column instead (all flite clips are then the test set).

Output
------
``OUT/espeak-ng/*.flac``, ``OUT/flite/*.flac`` named ``{digit}_{voice}_{take}.flac`` (the Free
Spoken Digit Dataset's pattern), and ``OUT/manifest.csv`` with columns file, digit, word,
synthesizer, voice, speaker, family, split, accent, variant, pitch, rate, speed, gain_db, noise,
snr_db, seconds. Read it with ``pyconv1d.audio.load_spoken_digits(OUT)``.
"""
import argparse
import collections
import csv
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from pyconv1d import audio

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SR = 8000
ESPEAK_ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
# flite voice -> (speaker, split, typical f0 in Hz)
FLITE_VOICES = {"kal": ("kal", "train", 101), "kal16": ("kal", "train", 103),
                "awb": ("awb", "train", 128), "rms": ("rms", "dev", 100),
                "slt": ("slt", "test", 172)}
SPLIT_FRACTIONS = {"train": 0.70, "dev": 0.15, "test": 0.15}
DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "spoken_digits"


def _progress(iterable, total, desc):
    try:
        from tqdm import tqdm
    except ImportError:
        def plain():
            start = time.time()
            for i, item in enumerate(iterable, 1):
                if i % 200 == 0 or i == total:
                    print(f"{desc}: {i}/{total} ({time.time() - start:.0f} s)", flush=True)
                yield item
        return plain()
    return tqdm(iterable, total=total, desc=desc)


def run_synth(cmd, wav_path):
    """Run a synthesizer that writes ``wav_path``; return its samples (float64) and rate."""
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    x, sr = sf.read(wav_path, dtype="float64", always_2d=True)
    return x.mean(axis=1), sr


def espeak_variants(tmp):
    """This espeak-ng's voice variants, minus those that sound like an earlier one."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True,
                             check=True).stdout
    names = sorted({m.group(1) for m in re.finditer(r"!v/(.+?)(?:\s{2,}|\s*$)", listing, re.M)})
    seen = {}
    kept = []
    probe = os.path.join(tmp, "probe.wav")
    for name in [""] + names:                       # "" is the plain voice
        voice = "en-us" + (f"+{name}" if name else "")
        x, _ = run_synth(["espeak-ng", "-v", voice, "-w", probe, "seven zero"], probe)
        digest = hashlib.sha1(np.round(x * 32768).astype(np.int16).tobytes()).hexdigest()
        if digest in seen:
            print(f"espeak-ng variant {name or 'default'!r} sounds like {seen[digest]!r}: "
                  f"left out", file=sys.stderr)
            continue
        seen[digest] = name or "default"
        kept.append(name)
    return kept


def variant_family(name):
    """The variant a numbered espeak-ng variant is made from (``iven3`` -> ``iven``); names of
    one or two letters (``m3``, ``f2``: voices of their own) are families of their own."""
    base = re.sub(r"\d+$", "", name)
    return base if len(base) >= 3 else name


@functools.lru_cache(maxsize=None)
def espeak_variant_folder():
    """The folder of espeak-ng's voice variant files (``espeak-ng --version`` names its data),
    or None."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"Data at:\s*(.+?)\s*$", out, re.M)
    return Path(m.group(1)) / "voices" / "!v" if m else None


def formant_settings(name):
    """The ``formant`` lines of an espeak-ng variant's file (sorted, spaces normalised): the
    timbre a variant gives; () for the plain voice, a variant without them, or no file."""
    folder = espeak_variant_folder()
    path = folder / name if name and folder is not None else None
    if path is None or not path.is_file():
        return ()
    lines = (re.sub(r"\s+", " ", line.split("//")[0]).strip()
             for line in path.read_text(errors="replace").splitlines())
    return tuple(sorted(line for line in lines if line.startswith("formant ")))


def variant_families(variants):
    """variant -> family (the alphabetically first member's name, "default" for the plain
    voice): numbered variants join their base (variant_family), and variants with the same
    formant settings are one family, whatever their names (max, robosoft7 and RicishayMax
    share theirs; Hugo, Diogo and michel theirs)."""
    parent = {v: v for v in variants}

    def find(v):
        while parent[v] != v:
            v = parent[v]
        return v
    for key in (variant_family, formant_settings):
        groups = {}
        for v in variants:
            k = key(v)
            if k != ():
                groups.setdefault(k, []).append(v)
        for members in groups.values():
            for v in members[1:]:
                parent[find(v)] = find(members[0])
    comps = {}
    for v in variants:
        comps.setdefault(find(v), []).append(v or "default")
    return {v: min(comps[find(v)]) for v in variants}


def safe(name):
    return re.sub(r"[^A-Za-z0-9+.-]", "-", name)


def plan(args, tmp):
    """Every clip to make, as a dict of synthesis settings (no audio yet)."""
    rng = np.random.default_rng([args.seed, 0])
    jobs = []
    variants = espeak_variants(tmp)
    order = rng.permutation(len(variants))
    room = {"test": round(SPLIT_FRACTIONS["test"] * len(variants)),
            "dev": round(SPLIT_FRACTIONS["dev"] * len(variants))}
    cap = max(1, room["test"] // 5)       # no family is more than a fifth of a held-out split
    family_of = variant_families(variants)
    size = collections.Counter(family_of.values())
    family_split = {}
    for i in order:
        # a family, when its first member comes up, goes whole to test, else dev, if it fits
        family = family_of[variants[i]]
        if family not in family_split:
            split = next((k for k in ("test", "dev") if size[family] <= min(room[k], cap)),
                         "train")
            family_split[family] = split
            if split != "train":
                room[split] -= size[family]
    split_of = {v: family_split[family_of[v]] for v in variants}
    for variant in variants:
        vname = variant or "default"
        accents = rng.choice(ESPEAK_ACCENTS, size=args.espeak_takes, replace=False)
        for take, accent in enumerate(accents):
            for digit, word in enumerate(WORDS):
                jobs.append(dict(
                    synthesizer="espeak-ng", voice=f"espeak-ng:{accent}+{vname}",
                    speaker=f"espeak-ng:{vname}", family=f"espeak-ng:{family_of[variant]}",
                    split=split_of[variant], accent=str(accent),
                    variant=vname, digit=digit, word=word, take=take,
                    pitch=int(rng.integers(20, 81)), rate=int(rng.integers(130, 231)),
                    cmd_voice=str(accent) + (f"+{variant}" if variant else "")))
    for voice, (speaker, split, f0) in FLITE_VOICES.items():
        for take in range(args.flite_takes):
            for digit, word in enumerate(WORDS):
                jobs.append(dict(
                    synthesizer="flite", voice=f"flite:{voice}", speaker=f"flite:{speaker}",
                    family=f"flite:{speaker}", split=split, accent="", variant=voice,
                    digit=digit, word=word, take=take,
                    pitch=int(round(f0 * rng.uniform(0.8, 1.3))),
                    rate=round(float(rng.uniform(0.8, 1.3)), 3), cmd_voice=voice))
    return jobs


def trim(x, sr, top_db=40.0, margin=0.02):
    """Cut leading and trailing frames more than ``top_db`` below the loudest 20 ms."""
    n = int(0.02 * sr)
    hop = n // 2
    if len(x) <= n:
        return x
    energy = audio.frame(x, n, hop).astype(np.float64) ** 2
    energy = energy.sum(axis=-1)
    keep = np.flatnonzero(energy > energy.max() * 10 ** (-top_db / 10))
    start = max(0, keep[0] * hop - int(margin * sr))
    stop = min(len(x), keep[-1] * hop + n + int(margin * sr))
    return x[start:stop]


def coloured_noise(rng, n, colour):
    """White, pink (1/f power) or brown (1/f^2) Gaussian noise with unit variance."""
    white = rng.standard_normal(n)
    if colour == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec /= f ** (0.5 if colour == "pink" else 1.0)
    out = np.fft.irfft(spec, n)
    return out / (out.std() + 1e-12)


def make_clip(job, args, tmp, index):
    rng = np.random.default_rng([args.seed, 1, index])
    wav = os.path.join(tmp, f"clip{index}.wav")
    if job["synthesizer"] == "espeak-ng":
        cmd = ["espeak-ng", "-v", job["cmd_voice"], "-p", str(job["pitch"]),
               "-s", str(job["rate"]), "-w", wav, job["word"]]
    else:
        cmd = ["flite", "-voice", job["cmd_voice"], "--setf",
               f"int_f0_target_mean={job['pitch']}", "--setf",
               f"duration_stretch={job['rate']}", "-t", job["word"], "-o", wav]
    x, sr = run_synth(cmd, wav)
    os.remove(wav)
    speed = float(rng.uniform(0.92, 1.08))
    # playing sr samples a second as if they were sr*speed: faster and higher by `speed`
    x = audio.resample(x, int(round(sr * speed)), SR)
    x = trim(x, SR)
    lead, tail = rng.integers(0, int(0.06 * SR) + 1, size=2)
    x = np.concatenate([np.zeros(lead), x, np.zeros(tail)])
    x *= 0.9 / max(np.abs(x).max(), 1e-9)
    gain_db = float(rng.uniform(-20.0, 0.0))
    x *= 10 ** (gain_db / 20)
    noise, snr_db = "none", ""
    if rng.random() < 0.7:
        noise = str(rng.choice(["white", "pink", "brown"]))
        snr = float(rng.uniform(10.0, 35.0))
        speech_power = np.mean(x[lead:len(x) - tail] ** 2)
        x = x + coloured_noise(rng, len(x), noise) * np.sqrt(speech_power / 10 ** (snr / 10))
        snr_db = f"{snr:.1f}"
    q = 2.0 ** (args.bits - 1)
    x = np.round(np.clip(x, -1.0, 1.0 - 1.0 / q) * q) / q
    folder = Path(args.out) / job["synthesizer"]
    name = f"{job['digit']}_{safe(job['voice'].split(':', 1)[1])}_{job['take']}.flac"
    audio.save(folder / name, x, SR, subtype="PCM_16", compression_level=1.0)
    row = {k: job[k] for k in ("digit", "word", "synthesizer", "voice", "speaker", "family",
                               "split", "accent", "variant", "pitch", "rate")}
    row.update(file=f"{job['synthesizer']}/{name}", speed=f"{speed:.3f}",
               gain_db=f"{gain_db:.1f}", noise=noise, snr_db=snr_db,
               seconds=f"{len(x) / SR:.3f}")
    return row


def tool_version(cmd):
    text = subprocess.run(cmd, capture_output=True, text=True).stdout
    match = re.search(r"(?:version:\s*flite-|text-to-speech:\s*)([\w.+-]+)", text)
    return match.group(1) if match else "unknown"


def write_readme(out, args, argv, n_clips, table):
    """Provenance next to the data: the command, the seed, the synthesizer versions."""
    command = " ".join(["python examples/make_spoken_digits.py",
                        *(argv if argv is not None else sys.argv[1:])])
    espeak = tool_version(["espeak-ng", "--version"])
    flite = tool_version(["flite", "--version"])
    (out / "README.md").write_text(
        "# Synthesized spoken digits\n\n"
        f"{n_clips} clips of \"zero\" ... \"nine\", 8 kHz mono 16-bit FLAC, made by "
        f"`{command}` (seed {args.seed}) with espeak-ng {espeak} and flite {flite}. "
        "See that script's docstring for the "
        "voices, the augmentation and the columns of `manifest.csv`; read the corpus with "
        "`pyconv1d.audio.load_spoken_digits()`.\n\n"
        "The split is by voice family (column `family`): no dev or test voice, nor an "
        "espeak-ng variant made from one or with its formant settings, occurs in training.\n\n"
        "| split | synthesizer | clips | voices | speakers |\n|---|---|---|---|---|\n"
        + "\n".join(table) + "\n")


COLUMNS = ["file", "digit", "word", "synthesizer", "voice", "speaker", "family", "split",
           "accent", "variant", "pitch", "rate", "speed", "gain_db", "noise", "snr_db",
           "seconds"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (replaced)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--espeak-takes", type=int, default=2,
                   help="accents per espeak-ng variant (each says all ten digits)")
    p.add_argument("--flite-takes", type=int, default=12,
                   help="pitch/duration takes per flite voice")
    p.add_argument("--bits", type=int, default=11, choices=range(8, 17), metavar="{8..16}",
                   help="sample precision kept in the 16-bit files")
    p.add_argument("--jobs", type=int, default=2, help="synthesizer processes at once")
    p.add_argument("--max-mb", type=float, default=8.0,
                   help="fail if the corpus is larger than this many MB")
    args = p.parse_args(argv)
    for tool in ("espeak-ng", "flite"):
        if shutil.which(tool) is None:
            p.error(f"{tool} is not installed (Debian: apt-get install espeak-ng flite)")
    if not 1 <= args.espeak_takes <= len(ESPEAK_ACCENTS):
        p.error(f"--espeak-takes must be 1..{len(ESPEAK_ACCENTS)}, got {args.espeak_takes}")
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for sub in ("espeak-ng", "flite"):
        (out / sub).mkdir(parents=True)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = plan(args, tmp)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(make_clip, job, args, tmp, i) for i, job in enumerate(jobs)]
            rows = [f.result() for f in _progress(futures, len(futures), "clips")]
    rows.sort(key=lambda r: r["file"])
    with open(out / "manifest.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    table = []
    for split in ("train", "dev", "test"):
        sel = [r for r in rows if r["split"] == split]
        for synth in ("espeak-ng", "flite"):
            part = [r for r in sel if r["synthesizer"] == synth]
            table.append(f"| {split} | {synth} | {len(part)} | {len({r['voice'] for r in part})} "
                         f"| {len({r['speaker'] for r in part})} |")
    write_readme(out, args, argv, len(rows), table)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{len(rows)} clips, {size / 1e6:.2f} MB in {out} ({time.time() - start:.0f} s)")
    print("\n".join(table))
    if size > args.max_mb * 1e6:
        sys.exit(f"the corpus is {size / 1e6:.2f} MB, more than --max-mb {args.max_mb}")


if __name__ == "__main__":
    main()
