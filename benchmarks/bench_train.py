"""Training speed of Kim (2014)'s sentence CNN: pyconv1d layers against the same model in torch.

Sentences per second of one training epoch (forward, backward, optimiser step and max-norm, batches
of 50; Adam and wide convolution, the example's defaults) of
``examples/sentence_classification.py``'s model, and of the same model written in torch
(when ``import torch`` works), on the same padded batches in the same order, with the same initial
weights and the same thread count. Epochs of the two alternate (``--repeats`` rounds, the first one
starting with a different peer each round) and the median is reported, so that load from other
jobs on a shared machine hits both alike.

Run from the repository root, with pyconv1d built in place or installed::

    python benchmarks/bench_train.py                          # MR, CNN-rand, 1 thread
    python benchmarks/bench_train.py --variant nonstatic --threads 1 2 --json train.json
    python benchmarks/bench_train.py --synthetic              # no data set needed

Before timing, both models run one batch with dropout off; their logits must agree (a check that
the two models are the same model), and the check column says so.

The embedding table is random here (GloVe-shaped for the GloVe variants: the values do not change
the speed), over the training split's vocabulary. Both optimisers are dense (torch's
``nn.Embedding`` without ``sparse=True`` gives a dense gradient), as in the example. Speed is only
reported, never asserted.
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


def make_batches(args, rng):
    """Padded batches (tokens, lengths, labels) of one epoch, the vocabulary size, the classes,
    and GloVe-shaped vectors for the GloVe variants."""
    from pyconv1d.text import Vocab, iterate_batches, tokenize, train_dev_test_split
    if args.synthetic:
        n, vocab_size = 8454, 16000
        lengths = np.clip(rng.normal(21, 9, n).astype(int), 1, 56)
        seqs = [rng.integers(2, vocab_size, m) for m in lengths]
        labels = rng.integers(0, 2, n)
        classes, source = 2, "synthetic (MR-sized: 8,454 sentences of MR's lengths)"
    else:
        import sentence_classification as sc
        data = sc.load_dataset(args.dataset)
        toks = [tokenize(t, lower=args.dataset == "mr") for t in data.texts]   # as the example
        train, _, _ = train_dev_test_split(len(toks), seed=0, stratify=data.labels)
        # the example's vocabulary: training tokens seen twice, plus, for the GloVe variants,
        # GloVe's 50,000 most frequent words (rows that only the dense optimiser step touches)
        vocab = Vocab.build([toks[i] for i in train], min_count=2)
        seqs = vocab.encode_many([toks[i] for i in train])
        if args.variant != "rand":
            vocab = Vocab(vocab.itos[2:] + list(sc.datasets.load_glove()[0][:50000]))
        labels, vocab_size = data.labels[train], len(vocab)
        classes = len(data.label_names)
        source = f"{args.dataset} training split ({len(seqs)} sentences, vocabulary {vocab_size})"
    batches = [(b.x, b.lengths, b.y) for b in
               iterate_batches(seqs, labels, batch_size=50, shuffle=True, seed=rng, min_length=5)]
    return batches, vocab_size, classes, source


def build_pyconv1d(args, vocab_size, classes, rng):
    import sentence_classification as sc
    dim = 128 if args.variant == "rand" else 50
    table = rng.uniform(-0.25, 0.25, (vocab_size, dim)).astype(np.float32)   # GloVe-shaped
    table[0] = 0
    tables = {"rand": [(table, True)], "static": [(table, False)],
              "nonstatic": [(table, True)],
              "multichannel": [(table, False), (table.copy(), True)]}[args.variant]
    return sc.KimCNN(tables, classes, wide=args.padding == "wide", rng=rng)


class TorchKim(torch.nn.Module if torch is not None else object):
    """The same model in torch: Embedding(s) -> Conv1d k=3,4,5 -> ReLU -> masked max -> concat
    -> Dropout -> Linear."""

    def __init__(self, model):
        super().__init__()
        tables = model.tables
        self.embeddings = torch.nn.ModuleList()
        for t in tables:
            e = torch.nn.Embedding.from_pretrained(torch.from_numpy(t.weight.data.copy()),
                                                   freeze=not t.weight.requires_grad,
                                                   padding_idx=0)
            self.embeddings.append(e)
        self.widths, self.wide = model.widths, model.wide
        self.convs = torch.nn.ModuleList()
        for k in self.widths:
            src = getattr(model, f"conv{k}")
            conv = torch.nn.Conv1d(src.in_channels, src.out_channels, k,
                                   padding=k - 1 if self.wide else 0)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(src.weight.data))
                conv.bias.copy_(torch.from_numpy(src.bias.data))
            self.convs.append(conv)
        self.dropout = torch.nn.Dropout(model.dropout.p)
        self.fc = torch.nn.Linear(model.fc.in_features, model.fc.out_features)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(model.fc.weight.data))
            self.fc.bias.copy_(torch.from_numpy(model.fc.bias.data))

    def forward(self, tokens, lengths):
        h = torch.cat([e(tokens) for e in self.embeddings], dim=2).transpose(1, 2)
        feats = []
        for k, conv in zip(self.widths, self.convs):
            c = torch.relu(conv(h))
            valid = (lengths + k - 1 if self.wide else lengths - k + 1).clamp(1, c.shape[2])
            pad = torch.arange(c.shape[2])[None, :] >= valid[:, None]
            feats.append(c.masked_fill(pad[:, None, :], float("-inf")).amax(dim=2))
        return self.fc(self.dropout(torch.cat(feats, dim=1)))


def pyconv1d_epoch(model, batches, optimizer, max_norm=3.0):
    from pyconv1d import nn, optim
    loss_fn = nn.CrossEntropyLoss()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (optim.Adam(params, lr=5e-4) if optimizer == "adam"
           else optim.Adadelta(params, rho=0.95, eps=1e-6))
    model.train()

    def epoch(subset=None):
        for x, lengths, y in batches if subset is None else batches[:subset]:
            loss_fn(model(x, lengths), y)
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
            optim.max_norm_(model.fc.weight, max_norm)
    return epoch


def torch_epoch(model, batches, optimizer, max_norm=3.0):
    tb = [(torch.from_numpy(x), torch.from_numpy(lengths), torch.from_numpy(y))
          for x, lengths, y in batches]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=5e-4) if optimizer == "adam"
           else torch.optim.Adadelta(params, rho=0.95, eps=1e-6))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def epoch(subset=None):
        for x, lengths, y in tb if subset is None else tb[:subset]:
            loss = loss_fn(model(x, lengths), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                model.fc.weight.renorm_(2, 0, max_norm)
    return epoch


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=("mr", "trec"), default="mr")
    p.add_argument("--variant", choices=("rand", "static", "nonstatic", "multichannel"),
                   default="rand")
    p.add_argument("--padding", choices=("wide", "valid"), default="wide",
                   help="the example's default (wide: k - 1 zeros on both sides) or none")
    p.add_argument("--optimizer", choices=("adam", "adadelta"), default="adam",
                   help="Adam lr 5e-4 (the example's default) or Adadelta (Kim's)")
    p.add_argument("--max-batches", type=int, default=0,
                   help="time only the first N batches of the epoch (0: all)")
    p.add_argument("--synthetic", action="store_true",
                   help="random sentences of MR's size and lengths instead of the data set")
    add_epoch_options(p)
    args = p.parse_args(argv)
    check_epoch_options(p, args)

    rng = np.random.default_rng(args.seed)
    batches, vocab_size, classes, source = make_batches(args, rng)
    if args.max_batches:
        batches = batches[:args.max_batches]
    n_sent = sum(len(b[2]) for b in batches)
    use_torch = torch is not None and not args.no_torch
    env = start_epoch_report(
        args, f"Kim CNN-{args.variant} training speed", use_torch and torch.__version__,
        f"{source}; {len(batches)} batches of 50, {n_sent} sentences per epoch",
        f"{args.optimizer}, {args.padding} convolution, max-norm 3, dropout 0.5", ["threads"],
        "sentences")
    from pyconv1d import nn
    rows = []
    for threads in args.threads:
        nn.set_num_threads(threads)
        model_rng = np.random.default_rng(args.seed + 1)
        pc = build_pyconv1d(args, vocab_size, classes, model_rng)
        peers = {"pyconv1d": pyconv1d_epoch(pc, batches, args.optimizer)}
        checked = "-"
        if use_torch:
            torch.set_num_threads(threads)
            torch.manual_seed(args.seed)
            tm = TorchKim(pc)
            checked = logits_check(pc, tm, batches[0])
            peers["torch"] = torch_epoch(tm, batches, args.optimizer)
        row = dict(threads=threads, variant=args.variant, sentences=n_sent, check=checked,
                   **time_epochs(peers, args.repeats, args.settle, n_sent, "sps"))
        rows.append(row)
        print(f"| {threads} | {epoch_cells(row, 'sps')} | {checked} |", flush=True)
    finish_epoch_report(args, env, source, rows)
    return rows


if __name__ == "__main__":
    main()
