"""Linear and Embedding layers."""
import numpy as np

from .. import _blas
from .. import functional as F
from . import _validate
from .init import normal_, reset_weight_and_bias
from .module import Module, Parameter, float_dtype, get_num_threads, resolve_rng

__all__ = ["Identity", "Linear", "Embedding"]


class Identity(Module):
    """Returns its input; the gradient passes through. Any arguments are ignored, as
    ``torch.nn.Identity``'s (so that it can stand in for a layer built with some).

    Examples
    --------
    >>> from pyconv1d import nn
    >>> nn.Identity()(3.0)
    3.0
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x

    def backward(self, grad_output):
        return grad_output


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last axis, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : np.float32 or np.float64
    rng : numpy.random.Generator or int, optional
        For the initialisation (None: the default generator, see ``nn.manual_seed``).

    Attributes
    ----------
    weight : Parameter, shape (out_features, in_features)
        U(-1/sqrt(in_features), 1/sqrt(in_features)), as PyTorch.
    bias : Parameter, shape (out_features,), or None

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> fc = nn.Linear(300, 2, rng=0)
    >>> fc
    Linear(in_features=300, out_features=2, bias=True)
    >>> fc(np.zeros((16, 300), np.float32)).shape
    (16, 2)
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, *, rng=None):
        super().__init__()
        owner = type(self).__name__
        self.in_features = _validate.int_arg(in_features, "in_features", 1, owner)
        self.out_features = _validate.int_arg(out_features, "out_features", 1, owner)
        dt = float_dtype(dtype)
        self.weight = Parameter(np.empty(_validate.weight_shape(
            (self.out_features, self.in_features), dt, owner), dt))
        if _validate.bool_arg(bias, "bias", owner):
            self.bias = Parameter(np.empty(self.out_features, dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        """PyTorch's initialisation, drawn from ``rng``."""
        reset_weight_and_bias(self.weight, self.bias, resolve_rng(rng))

    def extra_repr(self):
        s = (f"in_features={self.in_features}, out_features={self.out_features}, "
             f"bias={self.bias is not None}")
        return s + (f", dtype={self.weight.dtype}" if self.weight.dtype != np.float32 else "")

    def forward(self, x):
        layout = f"(*, {self.in_features})"
        x = _validate.float_input(self, x, None, layout, dtype=self.weight.dtype)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{self._label()}: expected input of shape {layout}, got shape "
                             f"{x.shape}")
        with _blas.single_threaded():      # see _blas.single_threaded: idle BLAS threads spin
            y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        self._x = x
        return y

    def backward(self, grad_output, input_grad=True):
        x = self._saved("_x")
        g = _validate.grad_output(self, grad_output, x.shape[:-1] + (self.out_features,),
                                  self.weight.dtype)
        g2 = g.reshape(-1, self.out_features)
        with _blas.single_threaded():
            if self.weight.requires_grad:
                self.weight.accumulate_grad(g2.T @ x.reshape(-1, self.in_features))
            gx = g @ self.weight.data if input_grad else None
        if self.bias is not None:
            self.bias.accumulate_grad(g2.sum(axis=0))
        return gx


class Embedding(Module):
    """A lookup table of ``num_embeddings`` vectors, as ``torch.nn.Embedding``.

    Parameters
    ----------
    num_embeddings, embedding_dim : int
    padding_idx : int, optional
        This row starts at zero and never receives a gradient (padding tokens).
    max_norm : float, optional
        Each forward first rescales, in place, every row it looks up whose ``norm_type``-norm
        exceeds ``max_norm`` to that norm (times ``max_norm / (norm + 1e-7)``, as torch).
    norm_type : float
        The p of the p-norm for ``max_norm`` (default 2).
    scale_grad_by_freq : bool
        Divide each row's gradient by how often its token occurs in the mini-batch.
    sparse : bool
        Accepted for torch's signature; the gradient is a dense array either way.
    dtype : np.float32 or np.float64
    rng : numpy.random.Generator or int, optional
        The weight is drawn from N(0, 1), as PyTorch.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> emb = nn.Embedding(1000, 50, padding_idx=0, rng=0)
    >>> tokens = np.array([[4, 8, 15, 0, 0]])
    >>> emb(tokens).shape
    (1, 5, 50)
    >>> emb = nn.Embedding.from_pretrained(np.eye(3, dtype=np.float32))
    >>> emb(np.array([2, 0]))
    array([[0., 0., 1.],
           [1., 0., 0.]], dtype=float32)
    >>> emb.weight.requires_grad
    False
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, dtype=np.float32, *,
                 rng=None, _weight=None):
        super().__init__()
        owner = type(self).__name__
        self.max_norm = None if max_norm is None else \
            _validate.float_arg(max_norm, "max_norm", owner, 0.0, None)
        self.norm_type = _validate.float_arg(norm_type, "norm_type", owner)
        self.scale_grad_by_freq = _validate.bool_arg(scale_grad_by_freq, "scale_grad_by_freq",
                                                     owner)
        self.sparse = _validate.bool_arg(sparse, "sparse", owner)
        self.num_embeddings = _validate.int_arg(num_embeddings, "num_embeddings", 1, owner)
        self.embedding_dim = _validate.int_arg(embedding_dim, "embedding_dim", 1, owner)
        if padding_idx is not None:
            padding_idx = _validate.int_arg(padding_idx, "padding_idx", -self.num_embeddings,
                                            owner)
            if padding_idx >= self.num_embeddings:
                raise ValueError(f"{owner}: padding_idx must lie in [-{num_embeddings}, "
                                 f"{num_embeddings}), got {padding_idx}")
            padding_idx %= self.num_embeddings
        self.padding_idx = padding_idx
        if _weight is None:
            dt = float_dtype(dtype)
            self.weight = Parameter(np.empty(_validate.weight_shape(
                (self.num_embeddings, self.embedding_dim), dt, owner), dt))
            self.reset_parameters(rng)
        else:
            self.weight = Parameter(_weight)

    def reset_parameters(self, rng=None):
        """N(0, 1) weights (drawn from ``rng``), the padding row zeroed."""
        normal_(self.weight, rng=resolve_rng(rng))
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding holding a copy of ``embeddings`` (e.g. word2vec vectors).

        Parameters
        ----------
        embeddings : array_like, shape (num_embeddings, embedding_dim)
            float32 or float64; the layer takes its dtype.
        freeze : bool
            True: the weight is not trained (``requires_grad = False``).
        padding_idx : int, optional
            Row that receives no gradient (its vector is kept as given).
        max_norm, norm_type, scale_grad_by_freq, sparse
            As for the constructor.
        """
        arr = np.asarray(embeddings)
        if arr.dtype not in (np.float32, np.float64):
            raise TypeError(f"Embedding.from_pretrained: embeddings must be float32 or float64, "
                            f"got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D "
                             f"(num_embeddings, embedding_dim), got shape {arr.shape}")
        emb = cls(arr.shape[0], arr.shape[1], padding_idx, max_norm, norm_type,
                  scale_grad_by_freq, sparse, arr.dtype, _weight=arr)
        emb.weight.requires_grad = not _validate.bool_arg(freeze, "freeze",
                                                          "Embedding.from_pretrained")
        return emb

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += ", scale_grad_by_freq=True"
        if self.sparse:
            s += ", sparse=True"
        return s + (f", dtype={self.weight.dtype}" if self.weight.dtype != np.float32 else "")

    def forward(self, input):
        idx = np.asarray(input)
        if idx.dtype == np.bool_ or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"{self._label()}: input must hold integer token indices, got "
                            f"dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_embeddings):
            raise ValueError(f"{self._label()}: indices must lie in [0, {self.num_embeddings}),"
                             f" got values from {idx.min()} to {idx.max()} (input shape "
                             f"{idx.shape})")
        self._idx = idx.copy()         # checked above; backward must see the same indices
        if self.max_norm is not None and idx.size:
            self._renorm(np.unique(idx))
        return self.weight.data[idx]

    def _renorm(self, rows):
        """torch.embedding_renorm_: the looked-up rows whose norm passes max_norm rescaled in
        place (by max_norm / (norm + 1e-7), the norm taken in float64)."""
        w = self.weight.data
        norms = np.linalg.norm(w[rows].astype(np.float64), ord=self.norm_type, axis=1)
        over = norms > self.max_norm
        if over.any():
            scale = self.max_norm / (norms[over] + 1e-7)
            w[rows[over]] = (w[rows[over]] * scale[:, None]).astype(w.dtype)

    def backward(self, grad_output):
        """Adds into ``weight.grad`` (rows of repeated tokens summed); returns None (integer
        input has no gradient)."""
        idx = self._saved("_idx")
        g = _validate.grad_output(self, grad_output, idx.shape + (self.embedding_dim,),
                                  self.weight.dtype)
        if self.weight.requires_grad:
            grad = F._embedding_backward(idx, g, self.num_embeddings, self.padding_idx,
                                         get_num_threads())
            if self.scale_grad_by_freq and idx.size:
                counts = np.bincount(idx.ravel(), minlength=self.num_embeddings)
                seen = counts > 1
                grad[seen] /= counts[seen, None].astype(grad.dtype)
            if self.weight.grad is None:
                self.weight.grad = grad        # a fresh array: taken, not copied
            else:
                self.weight.accumulate_grad(grad)
        return None
