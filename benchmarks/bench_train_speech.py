"""Training speed of the spoken-digit networks: pyconv1d layers against the same models in torch.

Clips per second of one training epoch (forward, label-smoothed cross-entropy, backward,
gradient clipping at norm 5 and an Adam step; batches of 32) of ``examples/spoken_digits.py``'s
conv2d and conv1d networks, and of the same networks written in torch (when ``import torch``
works), on the same batches in the same order, with the same initial weights and the same thread
count. The batches are the committed corpus's training clips as log-mel features (computed once,
without augmentation: the front-end is numpy work outside the networks, the same for both), or
random features of the same shape with ``--synthetic``. Epochs of the two peers alternate
(``--repeats`` rounds, each starting with a different peer) and the median is reported, so that
load from other jobs hits both alike.

Run from the repository root, with pyconv1d built in place or installed::

    python benchmarks/bench_train_speech.py                        # both models, 1 thread
    python benchmarks/bench_train_speech.py --model conv1d --threads 1 2 --json speech.json

Before timing, both models run one batch in evaluation mode; their logits must agree (a check
that the two are the same model), and the check column says so. Speed is only reported, never
asserted.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
try:
    from ._common import (add_epoch_options, check_epoch_options, epoch_cells,
                          finish_epoch_report, logits_check, start_epoch_report,
                          time_epochs, torch)
except ImportError:  # run as a script: benchmarks/ is sys.path[0]
    from _common import (add_epoch_options, check_epoch_options, epoch_cells,
                         finish_epoch_report, logits_check, start_epoch_report,
                         time_epochs, torch)

BATCH = 32
WIDTH = {"conv2d": 16, "conv1d": 128}      # the example's default widths


def make_batches(args, rng):
    """Batches (features, lengths, labels) of one epoch and a description of the source."""
    import spoken_digits as sd
    if args.synthetic:
        n, n_mels, frames = 1740, sd.FRONTEND["n_mels"], sd.FRONTEND["n_frames"]
        x = rng.standard_normal((n, n_mels, frames)).astype(np.float32)
        lengths = rng.integers(40, frames + 1, n)
        labels = rng.integers(0, 10, n)
        source = f"synthetic: {n} random log-mel images of {n_mels} x {frames}"
    else:
        parts, _, _ = sd.load_synth()
        waves, labels, _, _ = parts["train"]
        train = sd.AudioSet(waves, labels, sd.FrontEnd(sd.FRONTEND))
        x, lengths = train.batch(np.arange(len(train)))
        labels = train.labels
        source = (f"the committed corpus's {len(labels)} training clips as "
                  f"{x.shape[1]} x {x.shape[2]} log-mel features")
    order = rng.permutation(len(labels))
    batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    if len(batches) > 1 and len(batches[-1]) < 2:        # batch norm needs two clips
        batches[-2] = np.concatenate([batches[-2], batches.pop()])
    return [(np.ascontiguousarray(x[b]), np.asarray(lengths[b], np.int64),
             np.asarray(labels[b], np.int64)) for b in batches], source


if torch is not None:
    class TorchResidual(torch.nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, x):
            return x + self.body(x)

    class TorchDigitNet(torch.nn.Module):
        """examples/spoken_digits.py's DigitNet in torch, with the same parameter names."""

        def __init__(self, kind, n_features, width, dropout=0.2):
            super().__init__()
            import spoken_digits as sd
            nn = torch.nn
            self.kind = kind
            modules, self.time_stride, out = sd.body_layers(kind, n_features, width, nn,
                                                            TorchResidual)
            self.body = nn.Sequential(*modules)
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(2 * out, 10)

        def forward(self, x, lengths):
            h = self.body(x[:, None] if self.kind == "conv2d" else x)
            if h.ndim == 4:
                h = h.mean(dim=2)
            t = h.shape[-1]
            frames = torch.clamp(-(-lengths // self.time_stride), 1, t)
            valid = (torch.arange(t)[None, :] < frames[:, None])[:, None, :]
            mean = torch.where(valid, h, 0.0).sum(dim=2) / frames[:, None].to(h.dtype)
            mx = h.masked_fill(~valid, float("-inf")).amax(dim=2)
            return self.fc(self.drop(torch.cat([mean, mx], dim=1)))


def build_models(kind, n_features, use_torch):
    """The example's network and its torch twin holding the same initial weights."""
    import spoken_digits as sd
    pc = sd.DigitNet(kind, n_features, 10, WIDTH[kind], dropout=0.2)
    pc.train()
    tm = None
    if use_torch:
        tm = TorchDigitNet(kind, n_features, WIDTH[kind])
        state = {k: torch.from_numpy(np.array(v)) for k, v in pc.state_dict().items()}
        tm.load_state_dict(state)
        tm.train()
    return pc, tm


def pyconv1d_epoch(model, batches):
    from pyconv1d import nn, optim
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    opt = optim.Adam(model.parameters(), lr=2e-3)
    model.train()

    def epoch(subset=None):
        for x, lengths, y in batches if subset is None else batches[:subset]:
            loss_fn(model(x, lengths), y)
            opt.zero_grad()
            model.backward(loss_fn.backward(), input_grad=False)    # as torch: x needs none
            optim.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
    return epoch


def torch_epoch(model, batches):
    tb = [(torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(y))
          for x, lengths, y in batches]
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()

    def epoch(subset=None):
        for x, lengths, y in tb if subset is None else tb[:subset]:
            loss = loss_fn(model(x, lengths), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
    return epoch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("conv2d", "conv1d"), nargs="+",
                   default=["conv2d", "conv1d"])
    p.add_argument("--synthetic", action="store_true",
                   help="random features of the corpus's shape instead of the corpus")
    add_epoch_options(p)
    args = p.parse_args(argv)
    check_epoch_options(p, args)
    batches, source = make_batches(args, np.random.default_rng(args.seed))
    n_clips = sum(len(b[2]) for b in batches)
    use_torch = torch is not None and not args.no_torch
    env = start_epoch_report(
        args, "Spoken-digit networks, training speed", use_torch and torch.__version__,
        f"{source}; {len(batches)} batches of {BATCH}, {n_clips} clips per epoch",
        "Adam, label smoothing 0.1, clipping at 5, dropout 0.2", ["model", "threads"], "clips")
    from pyconv1d import nn
    rows = []
    for kind in args.model:
        for threads in args.threads:
            nn.set_num_threads(threads)
            pc, tm = build_models(kind, batches[0][0].shape[1], use_torch)
            peers = {"pyconv1d": pyconv1d_epoch(pc, batches)}
            checked = "-"
            if use_torch:
                torch.set_num_threads(threads)
                torch.manual_seed(args.seed)
                checked = logits_check(pc, tm, batches[0])
                peers["torch"] = torch_epoch(tm, batches)
            row = dict(model=kind, threads=threads, clips=n_clips, check=checked,
                       **time_epochs(peers, args.repeats, args.settle, n_clips, "cps"))
            rows.append(row)
            print(f"| {kind} | {threads} | {epoch_cells(row, 'cps')} | {checked} |",
                  flush=True)
    finish_epoch_report(args, env, source, rows)
    return rows


if __name__ == "__main__":
    main()
