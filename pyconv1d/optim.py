"""Optimisers, gradient clipping, a max-norm constraint and learning-rate schedulers.

The update rules are PyTorch's (``torch.optim``, single-tensor code path), so a training loop
ports line by line::

    opt = optim.Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        model.backward(loss_fn.backward())
        optim.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()

Parameters are :class:`pyconv1d.nn.Parameter` objects; ``step`` updates their ``.data`` in
place from their ``.grad`` and skips parameters whose ``.grad`` is None or that are frozen.

Adam, AdamW, Adadelta and SGD with momentum step each C-contiguous float32/float64 parameter
in one pass over memory (a kernel, threads as set by ``nn.set_num_threads``), with the bits of
the NumPy array expressions that spell out the rule (used for any other parameter); the
hyperparameters count as Python floats, so a float32 parameter steps in float32.
"""
import collections
import collections.abc
import copy
import math
import numbers

import numpy as np

from . import _blas, _checks, _optim
from . import functional as F
from .nn.module import Parameter, get_num_threads

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Adadelta", "clip_grad_norm_",
           "clip_grad_value_", "max_norm_", "LRScheduler", "StepLR", "MultiStepLR",
           "ExponentialLR", "CosineAnnealingLR", "LinearLR", "LambdaLR", "ReduceLROnPlateau"]


def _number(value, name, owner, minimum=0.0, strict=False, maximum=None):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    v = float(value)
    if v != v or v < minimum or (strict and v == minimum) or \
            (maximum is not None and v > maximum):
        rng = f"{'>' if strict else '>='} {minimum}" + \
            (f" and <= {maximum}" if maximum is not None else "")
        raise ValueError(f"{owner}: {name} must be {rng}, got {value!r}")
    return v


def _threads(p):
    """The layers' thread count (nn.set_num_threads) for a step of p, 1 for a small one."""
    return F._sized_threads(p.data.size, get_num_threads())


def _one_pass(param, grad, state):
    """Whether a step can run as one kernel pass: the parameter and its state are writable
    C-contiguous float32 or float64 arrays of one dtype (the gradient only needs the dtype and
    shape); anything else takes the array code."""
    arrays = [param, *(a for a in state.values() if isinstance(a, np.ndarray))]
    return (param.dtype in (np.float32, np.float64) and grad.dtype == param.dtype
            and grad.shape == param.shape
            and all(a.dtype == param.dtype and a.shape == param.shape and a.flags.c_contiguous
                    and a.flags.writeable for a in arrays))


def _python_floats(group):
    """The group with its numbers as Python floats (the pair of betas too), so that a float32
    parameter's step runs in float32 whatever type the hyperparameters were given as (NumPy
    would compute with an np.float64 in float64), in the array code and the kernels alike."""
    def plain(v):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
            return v
        return float(v)
    return {k: tuple(map(plain, v)) if isinstance(v, tuple) else plain(v)
            for k, v in group.items()}


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad`` and ``step``.

    Parameters
    ----------
    params : iterable of Parameter, of (name, Parameter) pairs, or of dicts
        Each dict is a parameter group: ``{'params': [...], 'lr': ...}``; keys it lacks take
        the optimiser's defaults. Pairs (``model.named_parameters()``) keep their names in
        the group's ``'param_names'``, as torch.
    defaults : dict
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}
        self.param_groups = []
        if isinstance(params, Parameter):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            f"or of dicts, got a single Parameter (wrap it in a list)")
        try:
            groups = list(params)
        except TypeError:
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Parameters "
                            f"or of dicts, got {params!r}") from None
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, param_group):
        """Add a group ``{'params': [...], **hyperparameters}``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{type(self).__name__}: a parameter group must be a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ValueError(f"{type(self).__name__}: a parameter group needs 'params', got the "
                             f"keys {sorted(group)}")
        params = group["params"]
        params = [params] if isinstance(params, Parameter) else list(params or [])
        if params and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                          for p in params):        # model.named_parameters(), as torch >= 2.6
            group = {"params": None, "param_names": [name for name, _ in params], **group}
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(f"{type(self).__name__} can only optimise Parameters, got "
                                f"{type(p).__name__}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one "
                             f"place in the parameter groups")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    def _check_group(self, group):
        """Validate one group's hyperparameters (every group: the defaults, groups given
        with their own values, added later or loaded from a state dict)."""
        owner = type(self).__name__
        _number(group["lr"], "lr", owner)
        for flag in ("maximize", "amsgrad", "nesterov"):
            if flag in group:
                _checks.check_bool(group[flag], f"{owner}: {flag}")

    def zero_grad(self, set_to_none=True):
        """Forget every gradient (None, or zeros with ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad[...] = 0

    def step(self):
        """Update every parameter that has a gradient."""
        for group in map(_python_floats, self.param_groups):
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                if np.shape(p.grad) != p.data.shape:
                    raise ValueError(f"{type(self).__name__}.step: a parameter of shape "
                                     f"{p.data.shape} has a gradient of shape "
                                     f"{np.shape(p.grad)}")
                if np.iscomplexobj(p.grad):
                    raise TypeError(f"{type(self).__name__}.step: gradients must be real, got "
                                    f"dtype {np.asarray(p.grad).dtype}")
                if not p.data.flags.writeable:   # numpy's "output array is read-only" before
                    raise ValueError(f"{type(self).__name__}.step: a parameter of shape "
                                     f"{p.data.shape} holds a read-only array (a view of "
                                     f"read-only memory?); give it a writable copy: "
                                     f"p.data = p.data.copy()")
                grad = np.asarray(p.grad, dtype=p.data.dtype)
                if group.get("maximize", False):
                    grad = -grad
                self._update(p, grad, group, self.state.setdefault(p, {}))

    def _update(self, param, grad, group, state):
        raise NotImplementedError

    def state_dict(self):
        """Hyperparameters and per-parameter state, parameters numbered in group order."""
        index, groups = {}, []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: copy.deepcopy(s) for p, s in self.state.items()
                 if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` returned (same parameter layout)."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise TypeError(f"{owner}: expected a dict with 'state' and 'param_groups' (what "
                            f"state_dict() returns), got {type(state_dict).__name__}")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state dict's parameter "
                             f"groups do not match this optimiser's")
        params = [p for g in self.param_groups for p in g["params"]]
        bad = [i for i in state_dict["state"] if not (isinstance(i, numbers.Integral)
                                                      and 0 <= i < len(params))]
        if bad:
            raise ValueError(f"{owner}: state for parameter {bad[0]!r}, but this optimiser has "
                             f"{len(params)} parameters")
        updated = [{**group, **{k: v for k, v in saved.items() if k != "params"}}
                   for saved, group in zip(groups, self.param_groups)]
        for group in updated:
            self._check_group(group)
        state = {params[i]: self._cast_state(s, params[i], i, owner)
                 for i, s in state_dict["state"].items()}
        for group, new in zip(self.param_groups, updated):      # all checked: now change
            group.update(new)
        self.state = state

    @staticmethod
    def _cast_state(state, p, i, owner):
        """A copy of one parameter's state, its arrays cast to the parameter's dtype (as torch:
        float32 moments loaded into a float64 model become float64) and checked against its
        shape (a wrong one failed later in step with numpy's broadcast error)."""
        if not isinstance(state, dict):
            raise TypeError(f"{owner}: the state of parameter {i} must be a dict, got "
                            f"{type(state).__name__}")
        out = {}
        for key, value in state.items():
            if isinstance(value, np.ndarray) and value.ndim:
                if value.shape != p.shape:
                    raise ValueError(f"{owner}: state {key!r} of parameter {i} has shape "
                                     f"{value.shape}, the parameter {p.shape}")
                if value.dtype.kind not in "biuf":
                    raise TypeError(f"{owner}: state {key!r} of parameter {i} has dtype "
                                    f"{value.dtype}, expected numbers")
                out[key] = value.astype(p.dtype)
            else:
                out[key] = copy.deepcopy(value)
        return out

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

    As ``torch.optim.SGD``: ``g += weight_decay * p``; ``buf = momentum * buf + (1 -
    dampening) * g`` (``buf = g`` at the first step); ``g = g + momentum * buf`` (Nesterov) or
    ``g = buf``; ``p -= lr * g``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> p = nn.Parameter(np.array([1.0]))
    >>> opt = optim.SGD([p], lr=0.1, momentum=0.9)
    >>> p.grad = np.array([1.0]); opt.step(); p.data
    array([0.9])
    >>> opt.step(); p.data       # buf = 0.9 * 1 + 1
    array([0.71])
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check_group(self, group):
        super()._check_group(group)
        owner = type(self).__name__
        momentum = _number(group["momentum"], "momentum", owner)
        dampening = _number(group["dampening"], "dampening", owner, maximum=1.0)
        _number(group["weight_decay"], "weight_decay", owner)
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError(f"{owner}: Nesterov momentum requires a momentum and zero "
                             f"dampening, got momentum={group['momentum']!r}, "
                             f"dampening={group['dampening']!r}")

    def _update(self, p, grad, group, state):
        momentum = group["momentum"]
        if momentum and _one_pass(p.data, grad, state):
            # the same bits as the array code below, in one pass over memory (_optim.sgd)
            first = state.get("momentum_buffer") is None     # torch's state dicts hold None
            if first:
                state["momentum_buffer"] = np.empty_like(p.data)
            _optim.sgd(p.data.reshape(-1), np.ascontiguousarray(grad).reshape(-1),
                       state["momentum_buffer"].reshape(-1), bool(group["weight_decay"]),
                       group["weight_decay"], momentum, 1 - group["dampening"], group["lr"],
                       first, group["nesterov"], _threads(p))
            return
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, copy=True)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam`` (L2 ``weight_decay`` added to the gradient;
    ``amsgrad`` optional).

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> p = nn.Parameter(np.array([1.0, -1.0]))
    >>> opt = optim.Adam([p], lr=0.1)
    >>> p.grad = np.array([3.0, -0.5]); opt.step(); p.data.round(6)   # first step: lr * sign
    array([ 0.9, -0.9])
    """

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    def _check_group(self, group):
        super()._check_group(group)
        owner = type(self).__name__
        _number(group["eps"], "eps", owner)
        _number(group["weight_decay"], "weight_decay", owner)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{owner}: betas must be a pair, got {betas!r}")
        for i, b in enumerate(betas):
            _number(b, f"betas[{i}]", owner, 0.0, maximum=1.0)
            if b >= 1.0:
                raise ValueError(f"{owner}: betas[{i}] must be in [0, 1), got {b!r}")
        group["betas"] = tuple(betas)

    def _update(self, p, grad, group, state):
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        wd = group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        step_size = lr / (1 - beta1 ** t)
        bc2_sqrt = math.sqrt(1 - beta2 ** t)
        if _one_pass(p.data, grad, state):
            # the same bits as the array code below, in one pass over memory (_optim.adam)
            l2 = bool(wd) and not self._decoupled
            _optim.adam(p.data.reshape(-1), np.ascontiguousarray(grad).reshape(-1),
                        state["exp_avg"].reshape(-1), state["exp_avg_sq"].reshape(-1),
                        state["max_exp_avg_sq"].reshape(-1) if group["amsgrad"] else None,
                        l2, wd, bool(wd) and self._decoupled, 1 - lr * wd,
                        1 - beta1, beta2, 1 - beta2, step_size, bc2_sqrt, eps,
                        _threads(p))
            return
        if wd:
            if self._decoupled:
                p.data *= 1 - lr * wd
            else:
                grad = grad + wd * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m += (1 - beta1) * (grad - m)              # torch's lerp_
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = np.sqrt(v) / bc2_sqrt + eps
        p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    ``p *= 1 - lr * weight_decay`` before the Adam step.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> p = nn.Parameter(np.array([1.0]))
    >>> opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    >>> p.grad = np.array([2.0]); opt.step(); p.data.round(6)   # 1 * (1 - 0.05) - 0.1
    array([0.85])
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)


class Adadelta(Optimizer):
    """Adadelta (Zeiler 2012; Kim 2014 trained his CNN with it), as ``torch.optim.Adadelta``.

    ``v = rho*v + (1-rho)*g^2``; ``delta = sqrt(u + eps) / sqrt(v + eps) * g``;
    ``u = rho*u + (1-rho)*delta^2``; ``p -= lr * delta``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> p = nn.Parameter(np.array([1.0]))
    >>> opt = optim.Adadelta([p], rho=0.95, eps=1e-6)
    >>> p.grad = np.array([1.0]); opt.step(); bool(p.data[0] < 1.0)
    True
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *,
                 maximize=False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    def _check_group(self, group):
        super()._check_group(group)
        owner = type(self).__name__
        _number(group["rho"], "rho", owner, 0.0, maximum=1.0)
        _number(group["eps"], "eps", owner)
        _number(group["weight_decay"], "weight_decay", owner)

    def _update(self, p, grad, group, state):
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            state["acc_delta"] = np.zeros_like(p.data)
        state["step"] += 1
        if _one_pass(p.data, grad, state):
            # the same bits as the array code below, in one pass over memory (_optim.adadelta)
            _optim.adadelta(p.data.reshape(-1), np.ascontiguousarray(grad).reshape(-1),
                            state["square_avg"].reshape(-1), state["acc_delta"].reshape(-1),
                            bool(group["weight_decay"]), group["weight_decay"], rho, 1 - rho,
                            eps, group["lr"], _threads(p))
            return
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * grad * grad
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * grad
        u *= rho
        u += (1 - rho) * delta * delta
        p.data -= group["lr"] * delta


def _params(parameters):
    if isinstance(parameters, Parameter):
        return [parameters]
    try:
        params = list(parameters)
    except TypeError:
        params = None
    if params is None or not all(isinstance(p, Parameter) for p in params):
        raise TypeError(f"parameters must be a Parameter or an iterable of Parameters (such "
                        f"as model.parameters()), got {parameters!r:.80}")
    return params


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients in place so that their global norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the norm is taken over all gradients together, and
    each gradient is multiplied by ``min(1, max_norm / (total_norm + 1e-6))``. The p-norms are
    summed in float64 whatever the gradients' dtype (torch sums float32 gradients in float32,
    where four gradients of 1e30 give an infinite norm and are zeroed; here they are clipped).

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
        Those whose ``.grad`` is None are ignored.
    max_norm : float
    norm_type : float
        2.0 (Euclidean), any p > 0, or ``inf`` (largest absolute value).
    error_if_nonfinite : bool
        Raise ``RuntimeError`` when the total norm is NaN or infinite.

    Returns
    -------
    float
        The total norm before clipping.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> p = nn.Parameter(np.zeros(2)); p.grad = np.array([3.0, 4.0])
    >>> optim.clip_grad_norm_([p], 1.0)
    5.0
    >>> p.grad.round(4)
    array([0.6, 0.8])
    """
    grads = [p.grad for p in _params(parameters) if p.grad is not None]
    max_norm = _number(max_norm, "max_norm", "clip_grad_norm_")
    norm_type = _number(norm_type, "norm_type", "clip_grad_norm_", strict=True)
    if not grads:
        return 0.0
    if norm_type == math.inf:
        # np.max, not max(): a NaN in any gradient makes the norm NaN (Python's max keeps
        # the value before it)
        total = float(np.max([np.max(np.abs(g)) if g.size else 0.0 for g in grads]))
    else:
        with _blas.single_threaded():      # see _blas.single_threaded: idle BLAS threads spin
            norms = np.array([np.linalg.norm(g.reshape(-1).astype(np.float64), norm_type)
                              for g in grads])
        total = float(np.linalg.norm(norms, norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                           f"gradients is non-finite ({total})")
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= coef
    return total


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient in place to ``[-clip_value, clip_value]``, as
    ``torch.nn.utils.clip_grad_value_`` (a NaN stays NaN).

    Parameters
    ----------
    parameters : Parameter or iterable of Parameter
        Those whose ``.grad`` is None are ignored.
    clip_value : float
        ``>= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> p = nn.Parameter(np.zeros(3)); p.grad = np.array([-5.0, 0.5, 2.0])
    >>> optim.clip_grad_value_([p], 1.0); p.grad
    array([-1. ,  0.5,  1. ])
    """
    grads = [p.grad for p in _params(parameters) if p.grad is not None]
    clip_value = _number(clip_value, "clip_value", "clip_grad_value_")
    for g in grads:
        np.clip(g, -clip_value, clip_value, out=g)


def max_norm_(weight, max_norm, dim=0, norm_type=2.0):
    """Rescale, in place, each slice of ``weight`` along ``dim`` whose norm exceeds ``max_norm``.

    The max-norm constraint of Hinton et al. (2012) and Kim (2014) (``s = 3`` on the rows of the
    final layer), as ``torch.renorm_``: a slice with norm ``n > max_norm`` is multiplied by
    ``max_norm / (n + 1e-7)``. For a Linear layer's ``(out, in)`` weight, ``dim=0`` constrains
    each output unit's weight vector (each row). Call it after ``optimizer.step()``.

    Parameters
    ----------
    weight : Parameter or ndarray
    max_norm : float
    dim : int
    norm_type : float

    Returns
    -------
    ndarray
        The (modified) array.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import optim
    >>> w = np.array([[3.0, 4.0], [0.3, 0.4]])
    >>> optim.max_norm_(w, 1.0).round(6)
    array([[0.6, 0.8],
           [0.3, 0.4]])
    """
    arr = weight.data if isinstance(weight, Parameter) else weight
    if not isinstance(arr, np.ndarray) or arr.dtype.kind != "f":
        raise TypeError(f"max_norm_: weight must be a Parameter or a float ndarray, got "
                        f"{type(weight).__name__}")
    max_norm = _number(max_norm, "max_norm", "max_norm_")
    if arr.ndim == 0:
        raise ValueError("max_norm_: weight must have at least one dimension")
    dim = _checks.check_axis(dim, "max_norm_: dim", arr.ndim)
    norm_type = _number(norm_type, "norm_type", "max_norm_", strict=True)
    if arr.size == 0:
        return arr
    axis = dim % arr.ndim
    moved = np.moveaxis(arr, axis, 0).reshape(arr.shape[axis], -1)
    # row norms along an axis are numpy reductions, not BLAS calls
    norms = np.linalg.norm(moved.astype(np.float64), ord=float(norm_type), axis=1)
    factor = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    shape = [1] * arr.ndim
    shape[axis] = -1
    arr *= factor.reshape(shape).astype(arr.dtype)
    return arr


class LRScheduler:
    """Base class of the epoch-based schedulers: ``step()`` once per epoch."""

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an "
                            f"Optimizer")
        self.optimizer = optimizer
        last_epoch = _checks.check_int(last_epoch, f"{type(self).__name__}: last_epoch", -1)
        for g in optimizer.param_groups:
            if last_epoch == -1:
                g.setdefault("initial_lr", g["lr"])
            elif "initial_lr" not in g:
                raise KeyError(f"param 'initial_lr' is not specified in param_groups when "
                               f"resuming scheduler with last_epoch={last_epoch}")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial = True        # the step made here sets no new rate (torch's initial mode)
        self.step()
        self._initial = False

    def get_lr(self):
        raise NotImplementedError

    def _scaled(self, factor):
        """Each group's current rate times ``factor`` (1: the rate itself, the same bits)."""
        return [g["lr"] * factor for g in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates of the last :meth:`step`, one per parameter group."""
        return list(self._last_lr)

    def step(self):
        """Advance one epoch and set the new learning rates."""
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.get_lr()):
            g["lr"] = lr
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        """The scheduler's state (not the optimiser)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore :meth:`state_dict`."""
        self.__dict__.update(state_dict)


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs, as
    ``torch.optim.lr_scheduler.StepLR``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(sched.get_last_lr()[0]); sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) \
                or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = _number(gamma, "gamma", "StepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t = self.last_epoch
        return self._scaled(self.gamma if t and t % self.step_size == 0 else 1.0)


class MultiStepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` at each epoch in ``milestones`` (a milestone
    given twice, twice), as ``torch.optim.lr_scheduler.MultiStepLR``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    >>> [(sched.get_last_lr()[0], sched.step())[0] for _ in range(6)]
    [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        if isinstance(milestones, (str, bytes)) or \
                not isinstance(milestones, collections.abc.Iterable):
            raise TypeError(f"MultiStepLR: milestones must be a list of ints, got "
                            f"{milestones!r}")
        self.milestones = collections.Counter(
            _checks.check_int(m, "MultiStepLR: milestones", 0) for m in milestones)
        self.gamma = _number(gamma, "gamma", "MultiStepLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):      # gamma ** 0 = 1 off the milestones; torch decays at milestone 0 too
        return self._scaled(self.gamma ** self.milestones[self.last_epoch])


class ExponentialLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every epoch, as
    ``torch.optim.lr_scheduler.ExponentialLR``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.ExponentialLR(opt, gamma=0.5)
    >>> [(sched.get_last_lr()[0], sched.step())[0] for _ in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = _number(gamma, "gamma", "ExponentialLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self._scaled(1.0 if self._initial else self.gamma)


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from each group's initial rate down to ``eta_min`` over ``T_max``
    epochs (and back up over the next ``T_max``), as ``torch.optim.lr_scheduler.
    CosineAnnealingLR``: the same recursive form, so the same rates to the last bit.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.CosineAnnealingLR(opt, T_max=4)
    >>> [round((sched.get_last_lr()[0], sched.step())[0], 4) for _ in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.1464]
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = _checks.check_int(T_max, "CosineAnnealingLR: T_max", 1)
        self.eta_min = _number(eta_min, "eta_min", "CosineAnnealingLR")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        groups, t, T, lo = self.optimizer.param_groups, self.last_epoch, self.T_max, self.eta_min
        if self._initial:
            return self._scaled(1.0)
        if (t - 1 - T) % (2 * T) == 0:          # the bottom: the cosine turns back up
            return [g["lr"] + (base - lo) * (1 - math.cos(math.pi / T)) / 2
                    for base, g in zip(self.base_lrs, groups)]
        return [(1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
                * (g["lr"] - lo) + lo for g in groups]


class LinearLR(LRScheduler):
    """Scale the learning rate linearly from ``start_factor`` to ``end_factor`` times the
    initial one over ``total_iters`` epochs (a warm-up), as ``torch.optim.lr_scheduler.
    LinearLR``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.LinearLR(opt, start_factor=0.25, total_iters=3)
    >>> [(sched.get_last_lr()[0], sched.step())[0] for _ in range(5)]
    [0.25, 0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        owner = "LinearLR"
        self.start_factor = _number(start_factor, "start_factor", owner, strict=True,
                                    maximum=1.0)
        self.end_factor = _number(end_factor, "end_factor", owner, maximum=1.0)
        self.total_iters = _checks.check_int(total_iters, f"{owner}: total_iters", 1)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t = self.last_epoch
        if t == 0:
            return self._scaled(self.start_factor)
        if self._initial or t > self.total_iters:
            return self._scaled(1.0)
        step = self.end_factor - self.start_factor
        return self._scaled(1.0 + step / (self.total_iters * self.start_factor + (t - 1) * step))


class LambdaLR(LRScheduler):
    """Each group's rate is its initial rate times ``lr_lambda(epoch)`` (one function, or one
    per group), as ``torch.optim.lr_scheduler.LambdaLR``. The functions are not part of
    :meth:`state_dict`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
    >>> [(sched.get_last_lr()[0], sched.step())[0] for _ in range(3)]
    [1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n or not all(callable(f) for f in lambdas):
            raise TypeError(f"LambdaLR: lr_lambda must be a function or a list of {n} "
                            f"functions (one per parameter group), got {lr_lambda!r}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for f, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class ReduceLROnPlateau:
    """Reduce the learning rate when a metric stops improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``: ``step(metric)`` once per epoch.

    After more than ``patience`` epochs without an improvement by ``threshold`` (relative or
    absolute), each group's learning rate becomes ``max(lr * factor, min_lr)``, then
    ``cooldown`` epochs pass before counting again.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconv1d import nn, optim
    >>> opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> sched = optim.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    >>> for val_loss in [1.0, 0.9, 0.9, 0.9, 0.9]:
    ...     sched.step(val_loss)
    >>> sched.get_last_lr()    # two epochs without improvement (> patience) halve it
    [0.5]
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        owner = "ReduceLROnPlateau"
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{owner}: {type(optimizer).__name__} is not an Optimizer")
        factor = _number(factor, "factor", owner)
        if factor >= 1.0:
            raise ValueError(f"{owner}: factor must be < 1.0, got {factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be 'rel' or 'abs', got "
                             f"{threshold_mode!r}")
        self.optimizer = optimizer
        self.factor = factor
        n = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != n:
                raise ValueError(f"{owner}: expected {n} min_lrs, got {len(min_lr)}")
            self.min_lrs = [_number(m, "min_lr", owner) for m in min_lr]
            self.default_min_lr = None
        else:
            self.default_min_lr = _number(min_lr, "min_lr", owner)
            self.min_lrs = [self.default_min_lr] * n
        self.patience = _checks.check_int(patience, f"{owner}: patience", 0)
        self.cooldown = _checks.check_int(cooldown, f"{owner}: cooldown", 0)
        self.threshold = _number(threshold, "threshold", owner)
        self.threshold_mode = threshold_mode
        self.mode = mode
        self.eps = _number(eps, "eps", owner)
        self.last_epoch = 0
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def _is_better(self, a, best):
        if self.mode == "min":
            return a < best * (1 - self.threshold) if self.threshold_mode == "rel" \
                else a < best - self.threshold
        return a > best * (1 + self.threshold) if self.threshold_mode == "rel" \
            else a > best + self.threshold

    def step(self, metrics):
        """Record this epoch's ``metrics`` (e.g. the validation loss)."""
        if np.ndim(metrics) != 0 or isinstance(metrics, (bool, np.bool_, str, bytes)):
            raise TypeError(f"{type(self).__name__}.step: metrics must be a number, got "
                            f"{metrics!r}")
        try:
            current = float(metrics)
        except (TypeError, ValueError):
            raise TypeError(f"{type(self).__name__}.step: metrics must be a number, got "
                            f"{metrics!r}") from None
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            groups = self.optimizer.param_groups
            if len(groups) != len(self.min_lrs):       # a group added since (as torch)
                default = getattr(self, "default_min_lr", None)
                if default is None:
                    raise ValueError(f"{type(self).__name__}.step: the optimizer has "
                                     f"{len(groups)} param groups but min_lr gave "
                                     f"{len(self.min_lrs)} (one per group when the scheduler "
                                     f"was made); set min_lrs to a list of {len(groups)}")
                self.min_lrs = [default] * len(groups)
            for i, g in enumerate(groups):
                old = float(g["lr"])
                new = max(old * self.factor, self.min_lrs[i])
                if old - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        """The learning rates after the last :meth:`step`."""
        return list(self._last_lr)

    def state_dict(self):
        """The scheduler's state (not the optimiser)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore :meth:`state_dict`."""
        self.__dict__.update(state_dict)
