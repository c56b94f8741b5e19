"""Module, Parameter and the containers; the seeded random generator and thread count.

A layer is a :class:`Module` whose ``forward(x)`` keeps what its ``backward`` needs and whose
``backward(grad_output)`` returns the gradient of the input and *adds* into the ``.grad`` of
each of its :class:`Parameter`\\ s. Containers chain these calls.
"""
import collections.abc
import functools
import inspect
import numbers
from typing import NamedTuple

import numpy as np

from .. import _checks
from . import _validate

__all__ = ["Parameter", "Module", "Sequential", "Concat", "manual_seed", "default_rng",
           "set_num_threads", "get_num_threads"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# "structure": a fresh token whenever a sub-module is registered anywhere, so that the
# containers re-check that they call each module once only after a change (a copy or a pickle
# of a container holds a copy of its token, so it checks again too)
_state = {"rng": np.random.default_rng(), "num_threads": None, "structure": object()}


def manual_seed(seed):
    """Seed the generator that layers use when they are not given an ``rng``.

    Parameters
    ----------
    seed : int or None

    Returns
    -------
    numpy.random.Generator
        The new default generator.

    Examples
    --------
    >>> from pyconv1d import nn
    >>> _ = nn.manual_seed(0); a = nn.Linear(3, 2).weight.data
    >>> _ = nn.manual_seed(0); b = nn.Linear(3, 2).weight.data
    >>> bool((a == b).all())
    True
    """
    seed = _checks.check_seed(seed, "seed", generator=False, none=True)
    _state["rng"] = np.random.default_rng(seed)
    return _state["rng"]


def default_rng():
    """The generator layers draw from when they are given no ``rng`` (see :func:`manual_seed`).

    Examples
    --------
    >>> from pyconv1d import nn
    >>> import numpy as np
    >>> isinstance(nn.default_rng(), np.random.Generator)
    True
    """
    return _state["rng"]


def resolve_rng(rng):
    """``rng`` as a Generator: None means the default one, an int seeds a new one."""
    rng = _checks.check_seed(rng, "rng", none=True)
    if rng is None:
        return _state["rng"]
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _unheld_value(value, dtype):
    """A value of ``value`` that ``dtype`` cannot hold (a finite float that would round to
    infinity, a fraction or an out-of-range number for an integer dtype), else None."""
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            bad = np.isfinite(value) & ~np.isfinite(value.astype(dtype))
    elif value.dtype.kind in "iu":           # numpy compares mixed integer kinds exactly
        info = np.iinfo(dtype)
        bad = (value < info.min) | (value > info.max)
    elif value.dtype.kind == "f":            # float(info.max) + 1 is the exclusive bound
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):
            bad = ~((value >= info.min) & (value < float(info.max) + 1)
                    & (value == np.floor(value)))
    else:
        return None
    if not bad.any():
        return None
    return value[bad][0].item()


def set_num_threads(num_threads):
    """Set the OpenMP thread count every layer passes to the kernels (None: OpenMP's default).

    Results do not depend on it: the kernels are bitwise deterministic.

    Examples
    --------
    >>> from pyconv1d import nn
    >>> nn.set_num_threads(1); nn.get_num_threads()
    1
    >>> nn.set_num_threads(None)
    """
    if num_threads is not None and (isinstance(num_threads, bool) or
                                    not isinstance(num_threads, numbers.Integral) or
                                    num_threads < 1):
        raise ValueError(f"num_threads must be None or a positive int, got {num_threads!r}")
    _state["num_threads"] = None if num_threads is None else int(num_threads)


def get_num_threads():
    """The thread count set by :func:`set_num_threads` (None: OpenMP's default)."""
    return _state["num_threads"]


float_dtype = _checks.float_dtype     # the layers' dtype= check


class Parameter:
    """A trainable array: ``data`` and the accumulated gradient ``grad`` (None until a backward).

    Parameters
    ----------
    data : array_like
        float32 or float64; copied.
    requires_grad : bool
        False freezes it: backward passes add nothing and optimisers skip it.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d.nn import Parameter
    >>> p = Parameter(np.zeros((2, 3), np.float32))
    >>> p.shape, p.grad is None
    ((2, 3), True)
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad=True):
        arr = np.asarray(data)
        if arr.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"Parameter data must be float32 or float64, got dtype {arr.dtype}")
        self.data = np.array(arr, copy=True, order="C")
        self.grad = None
        self.requires_grad = _checks.check_bool(requires_grad, "requires_grad")

    shape = property(lambda self: self.data.shape, doc="Shape of ``data``.")
    dtype = property(lambda self: self.data.dtype, doc="dtype of ``data``.")
    ndim = property(lambda self: self.data.ndim, doc="Number of dimensions of ``data``.")
    size = property(lambda self: self.data.size, doc="Number of elements of ``data``.")

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def accumulate_grad(self, grad):
        """Add ``grad`` into ``self.grad`` (created on first use); nothing when frozen."""
        if not self.requires_grad or grad is None:
            return
        grad = np.asarray(grad)
        if grad.shape != self.data.shape:
            raise ValueError(f"gradient of shape {grad.shape} does not match the parameter's "
                             f"shape {self.data.shape}")
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad += grad

    def __repr__(self):
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


class IncompatibleKeys(NamedTuple):
    """What :meth:`Module.load_state_dict` did not match (empty lists when strict)."""
    missing_keys: list
    unexpected_keys: list


def _addindent(text, spaces=2):
    lines = text.split("\n")
    return "\n".join([lines[0]] + [" " * spaces + line for line in lines[1:]])


class Module:
    """Base class of every layer, loss and container.

    Assigning a :class:`Parameter` or a Module to an attribute registers it; an unknown
    attribute raises ``AttributeError``. Subclasses implement ``forward`` (which keeps what the
    backward pass needs) and ``backward`` (which returns the input gradient and adds into each
    parameter's ``.grad``, taking what the forward kept with ``self._saved(name, ...)``).
    With no autograd tape, a module holds what its last forward kept (the input by reference:
    change it in place only after the backward) until a backward takes it: each forward
    allows one backward. Call each instance once per forward pass (:class:`Sequential` and
    :class:`Concat` refuse a module listed twice); to tie weights, give two layers the same
    Parameter.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> class Affine(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = nn.Parameter(np.ones(1))
    ...     def forward(self, x):
    ...         self._x = x                          # kept for the backward
    ...         return self.scale.data * x
    ...     def backward(self, grad_output):
    ...         x = self._saved("_x")                # released when this backward returns
    ...         self.scale.accumulate_grad([(grad_output * x).sum()])
    ...         return grad_output * self.scale.data
    >>> m = Affine()
    >>> m(np.array([1.0, 2.0]))
    array([1., 2.])
    >>> m.backward(np.ones(2)); m.scale.grad
    array([1., 1.])
    array([3.])
    >>> [name for name, _ in m.named_parameters()]
    ['scale']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", collections.OrderedDict())
        object.__setattr__(self, "_buffers", collections.OrderedDict())
        object.__setattr__(self, "_modules", collections.OrderedDict())
        object.__setattr__(self, "training", True)

    # -- attribute registration ----------------------------------------------------------
    def _registries(self):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign attributes to {type(self).__name__} before "
                                 f"Module.__init__() is called (call super().__init__() first)")
        return d["_parameters"], d["_buffers"], d["_modules"]

    def __setattr__(self, name, value):
        params, buffers, modules = self._registries()
        if isinstance(value, Parameter):
            self._register(0, name, value)
        elif isinstance(value, Module):
            self._register(2, name, value)
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r} of "
                                f"{type(self).__name__}: use a Parameter (or assign to "
                                f"{name}.data)")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to sub-module {name!r} "
                                f"of {type(self).__name__}: use a Module")
            modules[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r} of "
                                f"{type(self).__name__}: use an ndarray")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _register(self, kind, name, value):
        """``value`` under ``name`` in registry ``kind`` (0 parameters, 1 buffers, 2 modules):
        a name already there keeps its place (so the state dict's order, as in torch), and
        leaves the other registries and the instance's plain attributes."""
        registries = self._registries()
        for i, registry in enumerate(registries):
            if i != kind:
                registry.pop(name, None)
        self.__dict__.pop(name, None)
        registries[kind][name] = value
        if kind == 2:
            _state["structure"] = object()

    def __getattr__(self, name):
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, ()):
                del self.__dict__[registry][name]
                return
        object.__delattr__(self, name)

    def __dir__(self):
        d = self.__dict__
        return sorted(set(super().__dir__()) | set(d.get("_parameters", ())) |
                      set(d.get("_buffers", ())) | set(d.get("_modules", ())))

    def _free_name(self, name, kind, registry):
        """Refuse, as torch, a name that is not a non-empty str without '.', or that is
        already an attribute of this module other than an entry of ``registry``."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a str, got {name!r}")
        if not name or "." in name:
            raise KeyError(f"{kind} name must be non-empty and without '.', got {name!r}")
        if name not in registry and (hasattr(type(self), name) or name in self.__dict__
                                     or any(name in r for r in self._registries())):
            raise KeyError(f"{type(self).__name__}: attribute {name!r} already exists")

    def register_parameter(self, name, param):
        """Register ``param`` (a :class:`Parameter`, or None for an absent one such as
        ``bias=False``) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got "
                            f"{type(param).__name__}")
        self._free_name(name, "parameter", self._parameters)
        self._register(0, name, param)

    def register_buffer(self, name, array, persistent=True):
        """Register a non-trainable array (running statistics), saved in the state dict
        unless ``persistent`` is False (as torch's: then it moves with the module but is
        neither saved nor loaded)."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer: {name!r} must be an ndarray or None, got "
                            f"{type(array).__name__}")
        persistent = _checks.check_bool(persistent, "register_buffer: persistent")
        self._free_name(name, "buffer", self._buffers)
        self._register(1, name, array)
        transient = self.__dict__.setdefault("_non_persistent", set())
        if persistent:
            transient.discard(name)
        else:
            transient.add(name)

    def add_module(self, name, module):
        """Register ``module`` (or None) as the sub-module ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got "
                            f"{type(module).__name__}")
        self._free_name(name, "module", self._modules)
        self._register(2, name, module)

    # -- traversal --------------------------------------------------------------------------
    def named_children(self):
        """Yield ``(name, module)`` for the direct sub-modules."""
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self):
        """Yield the direct sub-modules."""
        for _, m in self.named_children():
            yield m

    def named_modules(self, prefix=""):
        """Yield ``(dotted_name, module)`` for this module and every sub-module, once each."""
        seen = set()

        def walk(module, pre):
            if id(module) in seen:
                return
            seen.add(id(module))
            yield pre, module
            for name, child in module.named_children():
                yield from walk(child, f"{pre}.{name}" if pre else name)
        yield from walk(self, prefix)

    def modules(self):
        """Yield this module and every sub-module."""
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """Yield ``(dotted_name, Parameter)``, each parameter once (shared ones too)."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for pre, module in mods:
            for name, p in module._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{pre}.{name}" if pre else name), p

    def parameters(self, recurse=True):
        """Yield every :class:`Parameter` (pass to an optimiser)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True):
        """Yield ``(dotted_name, ndarray)`` for every buffer."""
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for pre, module in mods:
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{pre}.{name}" if pre else name), b

    def buffers(self, recurse=True):
        """Yield every buffer."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # -- training state ---------------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode (``mode=True``) or evaluation mode, recursively; returns self."""
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"train(mode) expects a bool, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (dropout off, batch norm uses running statistics); returns self."""
        return self.train(False)

    def to(self, dtype):
        """Convert, in place and recursively, every float parameter (with its gradient) and
        float buffer to ``dtype`` (float32 or float64), and the layers' dtype with them; returns
        self, as torch's ``model.to(torch.float64)``. Make the optimiser afterwards (one made
        before keeps its moments in the old dtype until it loads a state dict)."""
        dt = float_dtype(dtype)
        for m in self.modules():
            m._to_dtype(dt)
        return self

    def double(self):
        """``self.to(np.float64)``."""
        return self.to(np.float64)

    def float(self):
        """``self.to(np.float32)``."""
        return self.to(np.float32)

    def _to_dtype(self, dt):
        """This module's own part of :meth:`to` (layers that record a dtype extend it)."""
        for p in self._parameters.values():
            if p is not None and p.data.dtype.kind == "f":
                p.data = p.data.astype(dt, copy=False)
                if p.grad is not None:
                    p.grad = p.grad.astype(dt, copy=False)
        buffers = self._buffers
        for name, b in buffers.items():
            if b is not None and b.dtype.kind == "f":
                buffers[name] = b.astype(dt, copy=False)
        if "_dtype" in self.__dict__:                      # layers that may have no weight
            self.__dict__["_dtype"] = dt

    def get_submodule(self, target):
        """The sub-module at the dotted path ``target`` ('' is this module), as torch."""
        if not isinstance(target, str):
            raise TypeError(f"get_submodule: target must be a str, got {target!r}")
        module = self
        for i, name in enumerate(target.split(".") if target else []):
            child = module._modules.get(name)
            if child is None:
                raise AttributeError(f"{type(module).__name__} "
                                     f"{'.'.join(target.split('.')[:i]) or '(the root)'} has "
                                     f"no sub-module {name!r}")
            module = child
        return module

    def apply(self, fn):
        """Call ``fn`` on every sub-module (children first, as torch) and then on this one;
        returns self. E.g. ``model.apply(init_fn)`` to re-initialise layers of one kind."""
        if not callable(fn):
            raise TypeError(f"apply: fn must be callable, got {fn!r}")
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` of every parameter (``False`` freezes them: their gradients
        are not computed and optimisers skip them); returns self."""
        flag = _checks.check_bool(requires_grad, "requires_grad")
        for p in self.parameters():
            p.requires_grad = flag
        return self

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (None, or zeros with ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad[...] = 0

    # -- forward / backward ---------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        """Compute the output; keep what :meth:`backward` needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output):
        """Return the gradient of the input and add into every parameter's ``.grad``.

        Every module's backward also takes ``input_grad=False`` (a keyword): the parameters'
        gradients only, and None returned. Convolutions and ``Linear`` then skip the input
        gradient's product, and a ``Sequential`` passes it to its first module, as torch does
        for an input that does not require grad (the first layer of a network: in a conv1d
        front end over raw audio its input gradient costs as much as its forward)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def _saved(self, *names):
        """The values kept by the last forward; a clear error when there are none. They are
        released when the backward that takes them returns (see ``__init_subclass__``)."""
        d = self.__dict__
        if not all(n in d for n in names):
            raise RuntimeError(f"{self._label()}: backward called without a forward before it "
                               f"(each forward allows one backward)")
        d.setdefault("_taken", []).extend(names)
        values = tuple(d[n] for n in names)
        return values if len(names) > 1 else values[0]

    def __init_subclass__(cls, **kwargs):
        """Each forward allows one backward, as torch's graph: when a layer's outermost
        ``backward`` call returns (not a ``super().backward()`` inside it), the values it took
        with ``_saved`` are released, so a second backward is an error (it added its gradients
        into ``.grad`` again) and a trained model does not keep its last activations (copies
        and pickles of it stay small). A backward that raises releases nothing: one that
        raises before adding into ``.grad`` (a ``grad_output`` of the wrong shape) can be
        called again.

        It also gives every backward the keyword ``input_grad`` (default True): a backward
        that declares it is told, one that does not computes the input gradient as before;
        with False the result is None either way."""
        super().__init_subclass__(**kwargs)
        inner = getattr(cls, "backward", None)        # also one inherited from a mixin
        if inner is None or getattr(inner, "_releases", False):
            return
        try:
            # the function itself, not what a decorator's functools.wraps points to
            takes = "input_grad" in inspect.signature(inner, follow_wrapped=False).parameters
        except (TypeError, ValueError):               # a callable without a signature
            takes = False

        @functools.wraps(inner)
        def backward(self, *args, input_grad=True, **kw):
            input_grad = _checks.check_bool(input_grad, f"{self._label()}: input_grad")
            d = self.__dict__
            depth = d.get("_backward_depth", 0)
            d["_backward_depth"] = depth + 1
            try:
                if takes:
                    out = inner(self, *args, input_grad=input_grad, **kw)
                else:
                    out = inner(self, *args, **kw)
            finally:
                d["_backward_depth"] = depth
            if depth == 0:
                for name in d.pop("_taken", ()):
                    d.pop(name, None)
            return out if input_grad else None

        backward._releases = True
        cls.backward = backward

    def _label(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    # -- state ------------------------------------------------------------------------------
    def _state_entries(self):
        """name -> (kind, owner, attr) for every parameter and buffer, in PyTorch's order."""
        entries = collections.OrderedDict()

        # every path, as torch's state_dict: a module registered under two names is listed
        # under both (named_modules gives it once); a module inside itself is not followed
        def walk(module, pre, path):
            for name, p in module._parameters.items():
                if p is not None:
                    entries[f"{pre}.{name}" if pre else name] = ("param", module, name)
            transient = module.__dict__.get("_non_persistent", ())
            for name, b in module._buffers.items():
                if b is not None and name not in transient:
                    entries[f"{pre}.{name}" if pre else name] = ("buffer", module, name)
            for name, child in module.named_children():
                if id(child) not in path:
                    walk(child, f"{pre}.{name}" if pre else name, path | {id(child)})
        walk(self, "", {id(self)})
        return entries

    def state_dict(self):
        """An ordered dict of copies of every parameter and buffer, keyed by dotted name.

        Examples
        --------
        >>> from pyconv1d import nn
        >>> list(nn.BatchNorm1d(3).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        >>> list(nn.Sequential(nn.Linear(2, 3), nn.ReLU()).state_dict())
        ['0.weight', '0.bias']
        """
        out = collections.OrderedDict()
        for key, (kind, module, name) in self._state_entries().items():
            value = module._parameters[name].data if kind == "param" else module._buffers[name]
            out[key] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy ``state_dict``'s arrays into the parameters and buffers (cast to their dtype).

        Parameters
        ----------
        state_dict : mapping of str to array_like
        strict : bool
            Missing or unexpected keys raise ``ValueError`` (otherwise they are reported in the
            returned value). A shape mismatch always raises.

        Returns
        -------
        IncompatibleKeys
            ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(f"{self._label()}.load_state_dict: state_dict must be a mapping of "
                            f"names to arrays, got {type(state_dict).__name__}")
        if not isinstance(strict, (bool, np.bool_)):
            raise TypeError(f"{self._label()}.load_state_dict: strict must be a bool, got "
                            f"{strict!r}")
        entries = self._state_entries()
        given = dict(state_dict)
        missing = [k for k in entries if k not in given]
        unexpected = [k for k in given if k not in entries]
        mismatched, unheld, arrays = [], [], {}
        for key, (kind, module, name) in entries.items():
            if key not in given:
                continue
            target = module._parameters[name].data if kind == "param" else module._buffers[name]
            try:
                value = np.asarray(given[key])
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{type(self).__name__}.load_state_dict: entry {key!r} is not "
                                f"an array ({exc})") from None
            if value.dtype.kind not in "biuf":
                raise TypeError(f"{type(self).__name__}.load_state_dict: entry {key!r} has "
                                f"dtype {value.dtype}, expected a number array")
            if value.shape != target.shape:
                mismatched.append(f"{key}: expected shape {target.shape}, got {value.shape}")
            else:
                value_ = _unheld_value(value, target.dtype)
                if value_ is not None:
                    unheld.append(f"{key}: {target.dtype} cannot hold {value_!r}")
            arrays[key] = (target, value)
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
        if mismatched:
            problems.append("shape mismatch for " + "; ".join(mismatched))
        if unheld:
            problems.append("values out of range for " + "; ".join(unheld))
        if problems:
            raise ValueError(f"Error loading state dict into {type(self).__name__}: "
                             + "; ".join(problems))
        for target, value in arrays.values():
            target[...] = value
        return IncompatibleKeys(missing, unexpected)

    def save(self, path):
        """Write :meth:`state_dict` to ``path`` with ``np.savez`` (exactly that file name)."""
        with open(path, "wb") as f:
            np.savez(f, **self.state_dict())

    def load(self, path, strict=True):
        """Load a file written by :meth:`save` (see :meth:`load_state_dict`); returns self."""
        with np.load(path, allow_pickle=False) as data:
            self.load_state_dict({k: data[k] for k in data.files}, strict=strict)
        return self

    # -- repr -------------------------------------------------------------------------------
    def extra_repr(self):
        """The arguments shown inside this module's repr (non-default ones)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            lines.append(f"({name}): {_addindent(repr(m))}")
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


def _check_called_once(container):
    """Refuse a module that ``container`` (a Sequential or Concat, nested ones included) would
    call twice in one forward pass: a module keeps what its last forward needs for its
    backward, so the first call's gradients would be computed from the second call's input.
    A container that passed is walked again only after a sub-module was registered."""
    seen = {}

    def walk(module, path):
        if id(module) in seen:
            raise ValueError(
                f"{type(container).__name__}: {module._label()} is called twice (as "
                f"{seen[id(module)]!r} and {path!r}); each module keeps the input of its last "
                f"forward for its backward, so its first call would get the wrong gradients: "
                f"use two instances (to tie their weights, share a Parameter: "
                f"b.weight = a.weight)")
        seen[id(module)] = path
        if isinstance(module, (Sequential, Concat)):
            for name, child in module.named_children():
                walk(child, f"{path}.{name}" if path else name)

    if container.__dict__.get("_checked_structure") is _state["structure"]:
        return                          # nothing was registered anywhere since it passed
    for name, child in container.named_children():
        walk(child, name)
    container.__dict__["_checked_structure"] = _state["structure"]


class _ModuleSequence(Module):
    """The list operations of :class:`Sequential` and :class:`ModuleList`, as torch's: integer
    and slice indexing, assignment, deletion and insertion (the modules after it renumbered
    0, 1, ...), append, extend and pop. A change that fails a check changes nothing."""

    _calls_children = False           # Sequential: refuse a module it would call twice

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def _index(self, index, n=None, end=False):
        """``index`` as a position in 0..n-1 (0..n with ``end``, for insert)."""
        n = len(self) if n is None else n
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, numbers.Integral):
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, got "
                            f"{index!r}")
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n + end:
            raise IndexError(f"{type(self).__name__} index {index} is out of range for "
                             f"{n} modules")
        return i

    def _commit(self, items):
        """Make ``items`` ((name, module) pairs) the modules, checked as a whole."""
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"{type(self).__name__}: {name!r} must be a Module, got "
                                f"{type(m).__name__}")
            self._free_name(name, "module", self._modules)
        registry = self._registries()[2]
        old = list(registry.items())
        registry.clear()
        registry.update(items)
        _state["structure"] = object()
        if self._calls_children:
            try:
                _check_called_once(self)
            except ValueError:
                registry.clear()
                registry.update(old)
                raise

    def _renumbered(self, modules):
        return [(str(i), m) for i, m in enumerate(modules)]

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return self._slice(items[index])
        return items[self._index(index)][1]

    def __setitem__(self, index, module):
        items = list(self._modules.items())
        i = self._index(index)
        items[i] = (items[i][0], module)
        self._commit(items)

    def __delitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[self._index(index)]
        self._commit(self._renumbered(modules))

    def append(self, module):
        """Add ``module`` at the end; returns self."""
        self._commit(list(self._modules.items()) + [(str(len(self)), module)])
        return self

    def extend(self, modules):
        """Append every module of ``modules``; returns self."""
        if isinstance(modules, Module) and not isinstance(modules, _ModuleSequence):
            raise TypeError(f"{type(self).__name__}.extend takes an iterable of modules, got "
                            f"{modules._label()} (use append)")
        items = list(self._modules.items())
        items += [(str(len(items) + i), m) for i, m in enumerate(list(modules))]
        self._commit(items)
        return self

    def insert(self, index, module):
        """Insert ``module`` before position ``index``; the modules from there renumbered."""
        modules = list(self._modules.values())
        modules.insert(self._index(index, end=True), module)
        self._commit(self._renumbered(modules))
        return self

    def pop(self, index=-1):
        """Remove the module at ``index`` and return it."""
        module = self[index]
        del self[index]
        return module


class Sequential(_ModuleSequence):
    """Modules run one after another; ``backward`` runs them in reverse.

    Indexing, slicing, assignment, deletion, ``append``, ``extend``, ``insert`` and ``pop``
    work as in torch; a module that the sequence would call twice is refused (see
    :class:`Module`).

    Parameters
    ----------
    *modules : Module
        Or one ``OrderedDict`` of name -> Module.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> _ = nn.manual_seed(0)
    >>> model = nn.Sequential(nn.Conv1d(1, 4, 3, padding='same'), nn.ReLU(),
    ...                       nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(4, 2))
    >>> model(np.zeros((8, 1, 20), np.float32)).shape
    (8, 2)
    >>> model.backward(np.ones((8, 2), np.float32)).shape
    (8, 1, 20)
    >>> model[0]
    Conv1d(1, 4, kernel_size=(3,), stride=(1,), padding=same)
    """

    _calls_children = True

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], collections.OrderedDict):
            items = list(modules[0].items())
        else:
            items = self._renumbered(modules)
        self._commit(items)

    def _slice(self, items):
        return Sequential(collections.OrderedDict(items))

    def forward(self, x):
        _check_called_once(self)     # again after a change, also inside nested containers
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_output, input_grad=True):
        """The modules' backward in reverse order; with ``input_grad=False`` the first module
        is told that its input gradient is not wanted."""
        modules = list(self._modules.values())
        for i in range(len(modules) - 1, -1, -1):
            if i or input_grad:
                grad_output = modules[i].backward(grad_output)
            else:       # the keyword only when it says something
                grad_output = modules[i].backward(grad_output, input_grad=False)
        return grad_output


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters and state belong to the module that holds it, as
    ``torch.nn.ModuleList``; it has no forward of its own (call its modules from yours).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
    >>> blocks.append(nn.ReLU())[3]
    ReLU()
    >>> len(blocks), sum(p.data.size for p in blocks.parameters())
    (4, 60)
    """

    def __init__(self, modules=None):
        super().__init__()
        if isinstance(modules, Module):
            raise TypeError(f"ModuleList takes an iterable of modules, got {modules._label()}")
        self._commit(self._renumbered(list(modules) if modules is not None else []))

    def _slice(self, items):
        return ModuleList([m for _, m in items])


class ModuleDict(Module):
    """A dict of named modules whose parameters and state belong to the module that holds it,
    as ``torch.nn.ModuleDict`` (insertion order kept; no forward of its own).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> heads = nn.ModuleDict({"digit": nn.Linear(8, 10), "speaker": nn.Linear(8, 6)})
    >>> heads["speaker"], list(heads), "digit" in heads
    (Linear(in_features=8, out_features=6, bias=True), ['digit', 'speaker'], True)
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r} (keys: {list(self._modules)})")
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        self[key]
        del self._modules[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules))

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return list(self._modules.keys())

    def values(self):
        return list(self._modules.values())

    def items(self):
        return list(self._modules.items())

    def pop(self, key):
        """Remove the module ``key`` and return it."""
        module = self[key]
        del self[key]
        return module

    def clear(self):
        self._modules.clear()

    def update(self, modules):
        """Add (or replace) modules from a mapping or an iterable of (key, module) pairs."""
        items = modules.items() if isinstance(modules, (collections.abc.Mapping, ModuleDict)) \
            else modules
        for entry in items:
            if not (isinstance(entry, (tuple, list)) and len(entry) == 2):
                raise TypeError(f"ModuleDict.update takes a mapping or (key, module) pairs, got "
                                f"{entry!r}")
            self[entry[0]] = entry[1]


class Concat(Module):
    """Run several branches on the same input and concatenate their outputs along ``dim``.

    Kim (2014)'s CNN for sentence classification runs convolutions of widths 3, 4 and 5 side
    by side, each followed by max-over-time pooling, and concatenates the features. The input
    gradient is the sum of the branches' input gradients.

    Parameters
    ----------
    *branches : Module
    dim : int
        Axis of the concatenation (default 1, the channel / feature axis).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn
    >>> branches = [nn.Sequential(nn.Conv1d(8, 5, k), nn.ReLU(), nn.AdaptiveMaxPool1d(1))
    ...             for k in (3, 4, 5)]
    >>> kim = nn.Sequential(nn.Concat(*branches, dim=1), nn.Flatten(), nn.Linear(15, 2))
    >>> kim(np.zeros((4, 8, 30), np.float32)).shape
    (4, 2)
    """

    def __init__(self, *branches, dim=1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for i, b in enumerate(branches):
            if not isinstance(b, Module):
                raise TypeError(f"Concat: branch {i} must be a Module, got {type(b).__name__}")
            self.add_module(str(i), b)
        _check_called_once(self)
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
            raise TypeError(f"Concat: dim must be an int, got {dim!r}")
        self.dim = int(dim)

    def extra_repr(self):
        return f"dim={self.dim}" if self.dim != 1 else ""

    def forward(self, x):
        _check_called_once(self)
        outs = [b(x) for b in self._modules.values()]
        shapes = [np.shape(o) for o in outs]
        ndim = len(shapes[0])
        if not -ndim <= self.dim < ndim:
            raise ValueError(f"{self._label()}: dim {self.dim} is out of range for branch "
                             f"outputs of shapes {shapes}")
        axis = self.dim % ndim
        rest = {s[:axis] + s[axis + 1:] if len(s) == ndim else None for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"{self._label()}: branch outputs of shapes {shapes} differ on an "
                             f"axis other than dim={self.dim}")
        self._sizes = [s[axis] for s in shapes]
        self._axis = axis
        y = np.concatenate(outs, axis=axis)
        self._shape = y.shape
        return y

    def backward(self, grad_output, input_grad=True):
        sizes, shape = self._saved("_sizes", "_shape")
        # checked before any branch adds into .grad
        grad_output = _validate.grad_output(self, grad_output, shape)
        pieces = np.split(grad_output, np.cumsum(sizes)[:-1], axis=self._axis)
        total = None
        for b, g in zip(self._modules.values(), pieces):
            gi = b.backward(g) if input_grad else b.backward(g, input_grad=False)
            if gi is not None:
                total = gi if total is None else total + gi
        return total
