"""Tests for pyconv1d.optim: every optimiser, clip_grad_norm_, max_norm_ and the schedulers
against their torch twins (skipped without torch) and against hand-written update rules;
a whole model trained for 5 steps next to its torch twin."""
import doctest
import importlib.util
import math
import zlib

import numpy as np
import pytest

from pyconv1d import functional as F, nn, optim


def _rng(*parts):
    return np.random.default_rng(zlib.crc32(repr(parts).encode()))


@pytest.fixture(autouse=True)
def one_thread():
    before = nn.get_num_threads()
    nn.set_num_threads(1)
    yield
    nn.set_num_threads(before)


def _torch():
    return pytest.importorskip("torch")


def _tol(dtype):
    return dict(rtol=2e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-13)


OPTIMISERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.1, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01)),
]


def _params(dtype, seed):
    rng = _rng("params", seed)
    return [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]


def _grads(dtype, step):
    rng = _rng("grads", step)
    return [rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal(5).astype(dtype)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", OPTIMISERS, ids=lambda v: str(v))
def test_optimisers_match_torch_over_five_steps(name, kw, dtype):
    torch = _torch()
    ours = [nn.Parameter(a) for a in _params(dtype, 0)]
    theirs = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in _params(dtype, 0)]
    # two groups, the second with its own learning rate
    lr2 = kw.get("lr", 1e-3 if name != "Adadelta" else 1.0) * 0.5
    opt = getattr(optim, name)([{"params": ours[:1]}, {"params": ours[1:], "lr": lr2}], **kw)
    topt = getattr(torch.optim, name)([{"params": theirs[:1]}, {"params": theirs[1:], "lr": lr2}],
                                      **kw)
    for step in range(5):
        for p, t, g in zip(ours, theirs, _grads(dtype, step)):
            p.grad = g.copy()
            t.grad = torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for p, t in zip(ours, theirs):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(p.data, t.detach().numpy(), **_tol(dtype),
                                       err_msg=f"{name}{kw} step {step}")


def _twin_models(torch, dtype):
    """A small conv net and its torch twin with the same weights (no bias before the batch
    norm: its gradient is zero up to rounding, which Adam would amplify into noise)."""
    tnn = torch.nn
    nn.manual_seed(0)
    ours = nn.Sequential(nn.Conv1d(2, 6, 5, padding="same", padding_mode="reflect", bias=False,
                                   dtype=dtype),
                         nn.BatchNorm1d(6, dtype=dtype), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(6, 4, 3, dtype=dtype), nn.GELU(), nn.AdaptiveMaxPool1d(1),
                         nn.Flatten(), nn.Linear(4, 3, dtype=dtype))
    theirs = tnn.Sequential(tnn.Conv1d(2, 6, 5, padding="same", padding_mode="reflect", bias=False),
                            tnn.BatchNorm1d(6), tnn.ReLU(), tnn.MaxPool1d(2),
                            tnn.Conv1d(6, 4, 3), tnn.GELU(), tnn.AdaptiveMaxPool1d(1),
                            tnn.Flatten(), tnn.Linear(4, 3))
    theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("Adam", dict(lr=0.01)), ("AdamW", dict(lr=0.01, weight_decay=0.05)),
    ("Adadelta", dict(rho=0.95)),
], ids=lambda v: str(v))
def test_model_trains_like_its_torch_twin(name, kw, dtype):
    """Outputs, loss, gradients and parameters after 5 steps (with clipping and max-norm)."""
    torch = _torch()
    ours, theirs = _twin_models(torch, dtype)
    loss_fn, tloss_fn = nn.CrossEntropyLoss(label_smoothing=0.1), \
        torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    opt = getattr(optim, name)(ours.parameters(), **kw)
    topt = getattr(torch.optim, name)(theirs.parameters(), **kw)
    tparams = dict(theirs.named_parameters())
    rng = _rng("train", name)
    for step in range(5):
        x = rng.standard_normal((8, 2, 20)).astype(dtype)
        y = rng.integers(0, 3, 8)
        loss = loss_fn(ours(x), y)
        opt.zero_grad()
        ours.backward(loss_fn.backward())
        total = optim.clip_grad_norm_(ours.parameters(), 1.0)
        opt.step()
        optim.max_norm_(ours[8].weight, 0.5)
        tloss = tloss_fn(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        topt.zero_grad()
        tloss.backward()
        ttotal = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 1.0)
        topt.step()
        with torch.no_grad():
            theirs[8].weight.renorm_(2, 0, 0.5)
        np.testing.assert_allclose(loss, tloss.item(), **_tol(dtype))
        np.testing.assert_allclose(total, ttotal.item(), **_tol(dtype))
        for pname, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad, tparams[pname].grad.numpy(), rtol=1e-4,
                                       atol=1e-5 if dtype == np.float32 else 1e-11,
                                       err_msg=f"step {step}: {pname}.grad")
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs.state_dict()[key].numpy(), rtol=1e-4,
                                   atol=1e-5 if dtype == np.float32 else 1e-10, err_msg=key)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = _torch()
    grads = _grads(np.float64, "clip")
    ours = [nn.Parameter(np.zeros_like(g)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for p, t, g in zip(ours, theirs, grads):
        p.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
    extra = nn.Parameter(np.zeros(2))                  # no grad: ignored
    total = optim.clip_grad_norm_(ours + [extra], max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total == pytest.approx(ttotal.item(), rel=1e-12)
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_without_torch():
    p, q = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    p.grad, q.grad = np.array([3.0, 0.0]), np.array([4.0])
    assert optim.clip_grad_norm_([p, q], 10.0) == 5.0
    np.testing.assert_allclose(p.grad, [3.0, 0.0], rtol=1e-6)     # not scaled up
    optim.clip_grad_norm_(p, 1.0)                                  # a single Parameter works
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)
    q.grad = np.array([np.nan])
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_([q], 1.0, error_if_nonfinite=True)
    assert optim.clip_grad_norm_([nn.Parameter(np.zeros(1))], 1.0) == 0.0


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, math.inf])
def test_clip_grad_norm_sees_a_nan_in_any_gradient(norm_type):
    """The inf-norm took Python's max over the gradients, which drops a NaN that is not first:
    the norm came out 2.0 and error_if_nonfinite did not raise (torch: nan, and it raises)."""
    p, q = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    p.grad, q.grad = np.array([1.0, 2.0]), np.array([np.nan, 0.5])
    assert math.isnan(optim.clip_grad_norm_([p, q], 1.0, norm_type=norm_type))
    assert np.isnan(p.grad).all() and np.isnan(q.grad).all()     # as torch: all become nan
    p.grad, q.grad = np.array([1.0, 2.0]), np.array([np.nan, 0.5])
    with pytest.raises(RuntimeError, match="non-finite"):
        optim.clip_grad_norm_([p, q], 1.0, norm_type=norm_type, error_if_nonfinite=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value(dtype):
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal(s).astype(dtype) * 3 for s in [(4, 5), (7,)]]
    grads[1][2] = np.nan
    params = [nn.Parameter(np.zeros(g.shape, dtype)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.copy()
    params.append(nn.Parameter(np.zeros(2, dtype)))              # no grad: left alone
    assert optim.clip_grad_value_(params, 1.5) is None
    for p, g in zip(params, grads):
        want = np.array([min(max(v, -1.5), 1.5) if v == v else v for v in g.ravel()], dtype)
        np.testing.assert_array_equal(p.grad.ravel(), want)   # a NaN stays NaN
        assert p.grad.dtype == dtype
    assert params[2].grad is None
    if importlib.util.find_spec("torch") is not None:
        import torch
        ts = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
        for t, g in zip(ts, grads):
            t.grad = torch.from_numpy(g.astype(np.float64))
        torch.nn.utils.clip_grad_value_(ts, 1.5)
        for t, p in zip(ts, params):
            np.testing.assert_array_equal(t.grad.numpy().astype(dtype), p.grad)
    with pytest.raises(ValueError, match="clip_value must be >= 0.0, got -1"):
        optim.clip_grad_value_(params, -1)


def test_clip_grad_norm_sums_float32_gradients_in_float64():
    p = nn.Parameter(np.zeros(4, np.float32))
    p.grad = np.full(4, 1e30, np.float32)
    assert optim.clip_grad_norm_([p], 1.0) == pytest.approx(2e30, rel=1e-6)
    np.testing.assert_allclose(p.grad, 0.5, rtol=1e-5)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_max_norm_matches_torch_renorm(dim):
    torch = _torch()
    w = _rng("renorm", dim).standard_normal((5, 4, 3)) * 2
    ours = optim.max_norm_(w.copy(), 2.5, dim=dim)
    theirs = torch.renorm(torch.from_numpy(w), 2, dim, 2.5).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_max_norm_constrains_rows_in_place():
    lin = nn.Linear(4, 3, rng=0)
    lin.weight.data[0] *= 100
    before = lin.weight.data.copy()
    out = optim.max_norm_(lin.weight, 3.0)
    assert out is lin.weight.data
    norms = np.linalg.norm(lin.weight.data, axis=1)
    assert norms[0] == pytest.approx(3.0, rel=1e-6)
    np.testing.assert_array_equal(lin.weight.data[1:], before[1:])   # short rows untouched
    with pytest.raises(TypeError, match="max_norm_"):
        optim.max_norm_([1.0, 2.0], 1.0)


@pytest.mark.parametrize("step_size,gamma", [(1, 0.5), (3, 0.1), (2, 0.9)])
def test_steplr_matches_torch(step_size, gamma):
    torch = _torch()
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=0.3)
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.3)
    sched = optim.StepLR(opt, step_size, gamma)
    tsched = torch.optim.lr_scheduler.StepLR(topt, step_size, gamma)
    for _ in range(10):
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)
        assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"])
        opt.step()
        topt.step()
        sched.step()
        tsched.step()


SCHEDULERS = [
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.5),
     lambda lr, t: lr * 0.5 ** sum(m <= t for m in [2, 5, 5, 9])),
    ("MultiStepLR", dict(milestones=[3, 0, 3], gamma=0.5),          # 0: decayed at once
     lambda lr, t: lr * 0.5 ** sum(m <= t for m in [3, 0, 3])),
    ("ExponentialLR", dict(gamma=0.9), lambda lr, t: lr * 0.9 ** t),
    ("CosineAnnealingLR", dict(T_max=4, eta_min=0.01),
     lambda lr, t: 0.01 + (lr - 0.01) * (1 + math.cos(math.pi * t / 4)) / 2),
    ("CosineAnnealingLR", dict(T_max=1), lambda lr, t: lr * (1 + math.cos(math.pi * t)) / 2),
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=4),
     lambda lr, t: lr * (0.2 + 0.7 * min(t, 4) / 4)),
    ("LinearLR", dict(), lambda lr, t: lr * (1 / 3 + 2 / 3 * min(t, 5) / 5)),
    ("LambdaLR", dict(lr_lambda=lambda t: 1 / (1 + t)), lambda lr, t: lr / (1 + t)),
]


@pytest.mark.parametrize("name,kw,closed", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_schedulers_follow_their_closed_forms_and_torch(name, kw, closed):
    """Two groups over 14 epochs: each rate against the closed form, and (with torch) against
    torch's scheduler, which computes the same recursive forms: the same bits."""
    groups = [{"params": [nn.Parameter(np.zeros(1))], "lr": 0.3},
              {"params": [nn.Parameter(np.zeros(1))], "lr": 0.05}]
    opt = optim.SGD(groups, lr=0.1)
    sched = getattr(optim, name)(opt, **kw)
    theirs = None
    if importlib.util.find_spec("torch") is not None:
        import torch
        topt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.3},
                                {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.05}],
                               lr=0.1)
        theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for t in range(14):
        lrs = sched.get_last_lr()
        np.testing.assert_allclose(lrs, [closed(0.3, t), closed(0.05, t)], rtol=1e-12,
                                   err_msg=f"epoch {t}")
        assert lrs == [g["lr"] for g in opt.param_groups]
        if theirs is not None:
            assert lrs == theirs.get_last_lr(), t
            topt.step()
            theirs.step()
        opt.step()
        sched.step()


def test_scheduler_state_dict_round_trip_and_arguments():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = optim.CosineAnnealingLR(opt, T_max=5)
    for _ in range(3):
        sched.step()
    saved = sched.state_dict()
    lam = optim.LambdaLR(opt, lambda t: 1.0)
    assert "lr_lambdas" not in lam.state_dict()
    opt2 = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    again = optim.CosineAnnealingLR(opt2, T_max=5)
    again.load_state_dict(saved)
    opt2.param_groups[0]["lr"] = opt.param_groups[0]["lr"]
    sched.step()
    again.step()
    assert sched.get_last_lr() == again.get_last_lr()
    for make, match in [
            (lambda: optim.CosineAnnealingLR(opt, T_max=0), "T_max must be an int >= 1"),
            (lambda: optim.MultiStepLR(opt, milestones=3), "milestones must be a list of ints"),
            (lambda: optim.MultiStepLR(opt, milestones=[-1]), "milestones must be an int >= 0"),
            (lambda: optim.LinearLR(opt, start_factor=0.0), "start_factor must be > 0.0"),
            (lambda: optim.LinearLR(opt, end_factor=1.5), "end_factor must be >= 0.0 and <= 1"),
            (lambda: optim.LambdaLR(opt, [len, len]), "lr_lambda must be a function or a list "
                                                      "of 1 functions"),
            (lambda: optim.ExponentialLR(opt, gamma="x"), "gamma must be a number")]:
        with pytest.raises((TypeError, ValueError), match=match):
            make()


@pytest.mark.parametrize("kw", [
    dict(), dict(patience=1, factor=0.5), dict(mode="max", patience=0, threshold=0.1),
    dict(patience=1, cooldown=2, min_lr=0.01, threshold_mode="abs", threshold=0.05),
    dict(mode="max", threshold_mode="abs", patience=2, min_lr=[0.05, 0.0]),
], ids=str)
def test_reduce_lr_on_plateau_matches_torch(kw):
    torch = _torch()
    opt = optim.SGD([{"params": [nn.Parameter(np.zeros(1))]},
                     {"params": [nn.Parameter(np.zeros(1))], "lr": 0.2}], lr=1.0)
    topt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]},
                            {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.2}], lr=1.0)
    sched = optim.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    metrics = [1.0, 0.9, 0.95, 0.9, 0.89, 0.91, 0.92, 0.5, 0.5, 0.5, 0.6, 0.7, 0.49, 0.5, 0.5,
               0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    for m in metrics:
        sched.step(m)
        tsched.step(m)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)
        assert sched.num_bad_epochs == tsched.num_bad_epochs


# --------------------------------------------------------------------------------------------
# Without torch: hand-written rules, mechanics, errors
# --------------------------------------------------------------------------------------------

def test_sgd_momentum_by_hand():
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    x, buf = p.data.copy(), None
    for step in range(5):
        g = _grads(np.float64, step)[1][:2]
        p.grad = g.copy()
        opt.step()
        d = g + 0.01 * x
        buf = d.copy() if buf is None else 0.9 * buf + d
        x = x - 0.1 * (d + 0.9 * buf)
        np.testing.assert_allclose(p.data, x, rtol=1e-14)


def test_adam_by_hand():
    p = nn.Parameter(np.array([0.5, -1.5, 2.0]))
    opt = optim.Adam([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    x, m, v = p.data.copy(), 0.0, 0.0
    for t in range(1, 6):
        g = _grads(np.float64, t)[1][:3]
        p.grad = g.copy()
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        x = x - 0.01 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.99 ** t)) + 1e-8)
        np.testing.assert_allclose(p.data, x, rtol=1e-12)


def _adam_array_code(p, grads, lr, betas, eps, wd, amsgrad, decoupled, maximize):
    """Adam / AdamW as NumPy array expressions, one operation at a time (the rounding the
    one-pass kernel must reproduce bit for bit)."""
    (b1, b2), p = betas, p.copy()
    m, v, vmax = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if wd and decoupled:
            p *= 1 - lr * wd
        elif wd:
            g = g + wd * p
        m += (1 - b1) * (g - m)
        v *= b2
        v += (1 - b2) * g * g
        u = v
        if amsgrad:
            np.maximum(vmax, v, out=vmax)
            u = vmax
        p -= lr / (1 - b1 ** t) * (m / (np.sqrt(u) / math.sqrt(1 - b2 ** t) + eps))
    return p


def _adadelta_array_code(p, grads, lr, rho, eps, wd):
    """Adadelta as NumPy array expressions, one operation at a time."""
    p = p.copy()
    v, u = np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        if wd:
            g = g + wd * p
        v *= rho
        v += (1 - rho) * g * g
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        u *= rho
        u += (1 - rho) * delta * delta
        p -= lr * delta
    return p


def _sgd_array_code(p, grads, lr, momentum, dampening, nesterov, wd, maximize):
    """SGD with momentum as NumPy array expressions, one operation at a time."""
    p, buf = p.copy(), None
    for g in grads:
        g = -g if maximize else g
        if wd:
            g = g + wd * p
        if buf is None:
            buf = g.copy()
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
        p -= lr * g
    return p


def _reference_steps(cls, kw, start, grads):
    if cls is optim.SGD:
        return _sgd_array_code(start, grads, kw["lr"], kw["momentum"], kw.get("dampening", 0.0),
                               kw.get("nesterov", False), kw.get("weight_decay", 0.0),
                               kw.get("maximize", False))
    if cls is optim.Adadelta:
        return _adadelta_array_code(start, grads, kw.get("lr", 1.0), kw.get("rho", 0.9),
                                    kw.get("eps", 1e-6), kw.get("weight_decay", 0.0))
    return _adam_array_code(start, grads, kw["lr"], kw.get("betas", (0.9, 0.999)),
                            kw.get("eps", 1e-8), kw.get("weight_decay", 0.0),
                            kw.get("amsgrad", False), cls is optim.AdamW,
                            kw.get("maximize", False))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("cls,kw", [
    (optim.Adam, dict(lr=1e-3)),
    (optim.Adam, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (optim.Adam, dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, maximize=True)),
    (optim.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    (optim.Adadelta, dict()),
    (optim.Adadelta, dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.1, momentum=0.9)),
    (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.05, momentum=0.5, dampening=0.3, weight_decay=0.1, maximize=True)),
], ids=str)
def test_one_pass_kernels_give_the_bits_of_the_array_code(cls, kw, threads, dtype, monkeypatch):
    # 70,000 elements: past F.SERIAL_BELOW, so two threads share the pass; a sliced
    # (non-contiguous) gradient, and an exact zero and a large value in the data
    n = F.SERIAL_BELOW + 4464
    rng = _rng("one-pass", cls.__name__, str(kw), dtype)
    start = rng.standard_normal(n).astype(dtype)
    start[:2] = (0, 1e15)
    grads = [rng.standard_normal(2 * n).astype(dtype)[::2] for _ in range(4)]
    p = nn.Parameter(start.copy())
    opt = cls([p], **kw)
    calls = []
    name = {optim.SGD: "sgd", optim.Adadelta: "adadelta"}.get(cls, "adam")
    kernel = getattr(optim._optim, name)
    monkeypatch.setattr(optim._optim, name, lambda *a: calls.append(a[-1]) or kernel(*a))
    nn.set_num_threads(threads)
    for g in grads:
        p.grad = g
        opt.step()
    assert calls == [threads] * len(grads)              # the kernel ran, on `threads` threads
    assert p.data.dtype == dtype
    np.testing.assert_array_equal(p.data, _reference_steps(cls, kw, start, grads))


@pytest.mark.parametrize("cls,kw", [
    (optim.Adam, dict(lr=1e-3, betas=(0.8, 0.95), weight_decay=0.01)),
    (optim.Adadelta, dict(lr=0.5, rho=0.9, weight_decay=0.01)),
    (optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)),
], ids=str)
def test_numpy_scalar_hyperparameters_step_as_python_floats(cls, kw):
    # np.float64 hyperparameters (from a np.logspace grid, say) with float32 parameters: the
    # step runs in float32 as with Python floats, not in float64 as NumPy would promote it
    rng = _rng("np-scalars", cls.__name__)
    start = rng.standard_normal(1000).astype(np.float32)
    grads = [rng.standard_normal(1000).astype(np.float32) for _ in range(3)]
    as_numpy = {k: (tuple(map(np.float64, v)) if isinstance(v, tuple) else np.float64(v))
                for k, v in kw.items()}
    out = []
    for hyper, strided in ((kw, False), (as_numpy, False), (as_numpy, True)):
        p = nn.Parameter(start.copy())
        if strided:                       # a strided view: the array code steps it
            p.data = np.repeat(start, 2)[::2]
        opt = cls([p], **hyper)
        for g in grads:
            p.grad = g
            opt.step()
        out.append(p.data)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[0], _reference_steps(cls, kw, start, grads))


def test_a_weight_decay_that_rounds_to_zero_still_applies():
    # 1e-46 is 0 in float32, but the array code adds it (0 * inf = NaN); so does the kernel
    for cls in (optim.Adam, optim.Adadelta, optim.SGD):
        kw = dict(momentum=0.9) if cls is optim.SGD else {}
        p = nn.Parameter(np.array([np.inf, 1.0], np.float32))
        opt = cls([p], lr=0.1, weight_decay=1e-46, **kw)
        p.grad = np.ones(2, np.float32)
        opt.step()
        assert np.isnan(p.data[0]) and np.isfinite(p.data[1]), cls.__name__


def test_fortran_ordered_state_is_stepped_in_place():
    # a state dict whose moments come back Fortran-ordered (np.asfortranarray) is not one the
    # kernel can write through a flat view: the array code steps it, and the state moves
    p = nn.Parameter(np.zeros((3, 4)))
    opt = optim.Adam([p], lr=0.1)
    sd = opt.state_dict()
    sd["state"] = {0: {"step": 0, "exp_avg": np.asfortranarray(np.zeros((3, 4))),
                       "exp_avg_sq": np.zeros((3, 4))}}
    opt.load_state_dict(sd)
    grads = [np.ones((3, 4))] * 3
    for g in grads:
        p.grad = g
        opt.step()
    np.testing.assert_array_equal(p.data, _adam_array_code(np.zeros((3, 4)), grads, 0.1,
                                                           (0.9, 0.999), 1e-8, 0.0, False,
                                                           False, False))
    assert (opt.state[p]["exp_avg"] != 0).all()


def test_adam_array_code_serves_what_the_kernel_does_not():
    # a parameter whose data is a strided view (as a user may set it) is stepped in place by
    # the array code, with the same numbers
    base = np.linspace(-1, 1, 12)
    p = nn.Parameter(np.zeros(6))
    p.data = base[::2]
    opt = optim.Adam([p], lr=0.1)
    p.grad = np.ones(6)
    opt.step()
    want = _adam_array_code(np.linspace(-1, 1, 12)[::2], [np.ones(6)], 0.1, (0.9, 0.999), 1e-8,
                            0.0, False, False, False)
    np.testing.assert_array_equal(p.data, want)
    np.testing.assert_array_equal(base[::2], want)


def test_adadelta_by_hand():
    p = nn.Parameter(np.array([0.5, -1.5]))
    opt = optim.Adadelta([p], lr=1.0, rho=0.9, eps=1e-6)
    x, v, u = p.data.copy(), 0.0, 0.0
    for t in range(5):
        g = _grads(np.float64, t)[1][:2]
        p.grad = g.copy()
        opt.step()
        v = 0.9 * v + 0.1 * g * g
        delta = np.sqrt(u + 1e-6) / np.sqrt(v + 1e-6) * g
        u = 0.9 * u + 0.1 * delta * delta
        x = x - delta
        np.testing.assert_allclose(p.data, x, rtol=1e-12)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), lambda ps: optim.Adam(ps, lr=0.1),
    lambda ps: optim.AdamW(ps, lr=0.1), lambda ps: optim.Adadelta(ps, lr=1.0, rho=0.9),
], ids=["SGD", "Adam", "AdamW", "Adadelta"])
def test_optimisers_minimise_a_quadratic(make):
    target = np.array([1.0, -2.0, 3.0], np.float32)
    p = nn.Parameter(np.zeros(3, np.float32))
    opt = make([p])
    steps = 3000 if isinstance(opt, optim.Adadelta) else 300
    for _ in range(steps):
        opt.zero_grad()
        p.grad = 2 * (p.data - target)
        opt.step()
    np.testing.assert_allclose(p.data, target, atol=0.05)


def test_skips_missing_and_frozen_gradients():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2), requires_grad=False)
    c = nn.Parameter(np.ones(2))
    opt = optim.Adam([a, b, c], lr=0.1)
    a.grad = np.ones(2)
    b.grad = np.ones(2)
    opt.step()
    assert (a.data < 1).all() and (b.data == 1).all() and (c.data == 1).all()
    assert set(map(id, opt.state)) == {id(a)}
    opt.zero_grad()
    assert a.grad is None
    a.grad = np.ones(2)
    opt.zero_grad(set_to_none=False)
    assert (a.grad == 0).all()


def test_optimiser_state_dict_round_trip():
    ps = [nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))]
    opt = optim.Adam(ps, lr=0.1)
    for step in range(3):
        for p in ps:
            p.grad = np.full(p.shape, step + 1.0)
        opt.step()
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 3 and sd["param_groups"][0]["params"] == [0, 1]
    qs = [nn.Parameter(p.data) for p in ps]
    opt2 = optim.Adam(qs, lr=0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.1
    for p, q in zip(ps, qs):
        p.grad, q.grad = np.ones(p.shape), np.ones(q.shape)
    opt.step()
    opt2.step()
    for p, q in zip(ps, qs):
        np.testing.assert_array_equal(p.data, q.data)
    with pytest.raises(ValueError, match="do not match"):
        optim.Adam([nn.Parameter(np.ones(1))]).load_state_dict(sd)


def test_schedulers_without_torch():
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    sched = optim.StepLR(opt, 2, 0.5)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    plateau = optim.ReduceLROnPlateau(opt, patience=2, factor=0.1, min_lr=0.005)
    for metric in [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]:
        plateau.step(metric)
    assert plateau.get_last_lr() == [pytest.approx(0.005)]


def test_step_names_a_read_only_parameter():
    p = nn.Parameter(np.zeros(3))
    p.data.flags.writeable = False
    p.grad = np.ones(3)
    for opt in (optim.SGD([p], lr=0.1), optim.Adam([p])):
        with pytest.raises(ValueError, match=r"a parameter of shape \(3,\) holds a read-only "
                                             r"array"):
            opt.step()


def test_optimizer_takes_named_parameters():
    model = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU(), nn.Linear(2, 1, rng=1))
    opt = optim.Adam(model.named_parameters(), lr=0.1)
    group = opt.param_groups[0]
    assert group["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert group["params"] == list(model.parameters())
    assert opt.state_dict()["param_groups"][0]["param_names"] == group["param_names"]
    with pytest.raises(TypeError, match="can only optimise Parameters, got tuple"):
        optim.SGD([("a", nn.Parameter(np.zeros(1))), nn.Parameter(np.zeros(1))])


def test_optimizer_load_state_dict_casts_and_checks_the_state():
    """As torch, the loaded moments take the parameter's dtype (float32 ones stayed float32 on
    a float64 model); a moment of the wrong shape is refused when loaded, naming it (it failed
    at step with numpy's broadcast error), and nothing is changed then."""
    p32 = nn.Parameter(np.ones(3, np.float32))
    p32.grad = np.full(3, 0.5, np.float32)
    opt = optim.Adam([p32], lr=0.1)
    opt.step()
    saved = opt.state_dict()
    p64 = nn.Parameter(np.ones(3))
    fresh = optim.Adam([p64], lr=0.2)
    fresh.load_state_dict(saved)
    state = fresh.state[p64]
    assert state["step"] == 1 and state["exp_avg"].dtype == state["exp_avg_sq"].dtype == np.float64
    np.testing.assert_allclose(state["exp_avg"], opt.state[p32]["exp_avg"])
    assert fresh.param_groups[0]["lr"] == 0.1
    saved["state"][0]["exp_avg"] = np.zeros(4)
    saved["param_groups"][0]["lr"] = 0.3
    other = optim.Adam([nn.Parameter(np.ones(3))], lr=0.2)
    with pytest.raises(ValueError, match=r"state 'exp_avg' of parameter 0 has shape \(4,\), "
                                         r"the parameter \(3,\)"):
        other.load_state_dict(saved)
    assert other.param_groups[0]["lr"] == 0.2 and not other.state
    with pytest.raises(ValueError, match="a parameter group needs 'params', got the keys "
                                         r"\['lr'\]"):
        other.add_param_group({"lr": 0.1})
    assert len(other.param_groups) == 1


def test_reduce_lr_on_plateau_after_a_param_group_is_added():
    """An added group raised IndexError at min_lrs[i] after group 0's lr had been cut; as torch,
    a single min_lr now extends to the new group, and a list of them is an error before any lr
    changes."""
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    plateau = optim.ReduceLROnPlateau(opt, patience=0, factor=0.5, min_lr=0.3)
    opt.add_param_group({"params": [nn.Parameter(np.zeros(1))], "lr": 0.4})
    plateau.step(1.0)
    plateau.step(1.0)
    assert plateau.get_last_lr() == [0.5, 0.3]       # torch 2.13: [0.5, 0.3]
    opt = optim.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    plateau = optim.ReduceLROnPlateau(opt, patience=0, factor=0.5, min_lr=[0.1])
    opt.add_param_group({"params": [nn.Parameter(np.zeros(1))], "lr": 0.4})
    plateau.step(1.0)
    with pytest.raises(ValueError, match="the optimizer has 2 param groups but min_lr gave 1"):
        plateau.step(1.0)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 0.4]


@pytest.mark.parametrize("call,exc,match", [
    (lambda: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda: optim.SGD([np.zeros(2)], lr=0.1), TypeError, "can only optimise Parameters"),
    (lambda: optim.SGD(nn.Parameter(np.zeros(2))), TypeError, "single Parameter"),
    (lambda: optim.SGD([nn.Parameter(np.zeros(2))], lr=-1), ValueError, "lr must be >= 0"),
    (lambda: optim.SGD([nn.Parameter(np.zeros(2))], nesterov=True), ValueError, "Nesterov"),
    (lambda: optim.Adam([nn.Parameter(np.zeros(2))], betas=(0.9, 1.0)), ValueError, "betas"),
    (lambda: optim.Adam([nn.Parameter(np.zeros(2))], betas=0.9), ValueError, "pair"),
    (lambda: optim.Adadelta([nn.Parameter(np.zeros(2))], rho=1.5), ValueError, "rho"),
    (lambda: optim.Adam([nn.Parameter(np.zeros(2))], lr="fast"), TypeError, "lr must be a number"),
    (lambda: (lambda p: optim.SGD([{"params": [p]}, {"params": [p]}]))(
        nn.Parameter(np.zeros(1))), ValueError, "more than one place"),
    (lambda: optim.StepLR(optim.SGD([nn.Parameter(np.zeros(1))]), 0), ValueError,
     "step_size must be a positive int"),
    (lambda: optim.StepLR(object(), 1), TypeError, "not an Optimizer"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD([nn.Parameter(np.zeros(1))]), factor=1.0),
     ValueError, "factor must be < 1.0"),
    (lambda: optim.ReduceLROnPlateau(optim.SGD([nn.Parameter(np.zeros(1))]), mode="up"),
     ValueError, "mode"),
    (lambda: optim.clip_grad_norm_([], -1.0), ValueError, "max_norm"),
])
def test_bad_arguments_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_docstring_examples_run():
    result = doctest.testmod(optim, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
    for name in optim.__all__:
        assert getattr(optim, name).__doc__, name


@pytest.mark.parametrize("cls,group,match", [
    (optim.SGD, {"momentum": -5.0}, "momentum"),
    (optim.SGD, {"dampening": float("nan")}, "dampening"),
    (optim.SGD, {"dampening": "a"}, "dampening"),
    (optim.SGD, {"nesterov": True}, "Nesterov"),
    (optim.SGD, {"weight_decay": "x"}, "weight_decay"),
    (optim.Adam, {"betas": (1.5, 0.999)}, r"betas\[0\]"),
    (optim.Adam, {"betas": (1.0, 0.999)}, r"betas\[0\]"),
    (optim.Adam, {"betas": 0.9}, "betas"),
    (optim.Adam, {"eps": -1.0}, "eps"),
    (optim.AdamW, {"amsgrad": "yes"}, "amsgrad"),
    (optim.Adadelta, {"rho": 2.0}, "rho"),
    (optim.Adadelta, {"maximize": 1}, "maximize"),
])
def test_every_parameter_group_is_checked(cls, group, match):
    """A group's own hyperparameters get the constructor's checks, whether given at
    construction, added later or loaded from a state dict (a negative momentum used to step
    the wrong way, betas of 1 to divide by zero at the first step)."""
    p, q = nn.Parameter(np.ones(3)), nn.Parameter(np.ones(2))
    with pytest.raises((ValueError, TypeError), match=match):
        cls([{"params": [p], **group}], lr=0.1)
    opt = cls([p], lr=0.1)
    with pytest.raises((ValueError, TypeError), match=match):
        opt.add_param_group({"params": [q], **group})
    state = opt.state_dict()
    state["param_groups"][0].update(group)
    before = dict(opt.param_groups[0])
    with pytest.raises((ValueError, TypeError), match=match):
        opt.load_state_dict(state)
    assert opt.param_groups[0] == before


def test_step_rejects_a_gradient_of_another_shape():
    """A gradient that would broadcast (shape (1,) for a (3,) parameter) is an error, not
    an update of every entry by the one value; so is a complex one."""
    p = nn.Parameter(np.ones(3))
    for cls in (optim.SGD, optim.Adam):
        p.grad = np.ones(1)
        with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(1,\)"):
            cls([p], lr=0.1).step()
        p.grad = np.ones(3, complex)
        with pytest.raises(TypeError, match="real"):
            cls([p], lr=0.1).step()
    assert np.array_equal(p.data, np.ones(3))


def test_max_norm_checks_dim_and_norm_type():
    w = np.array([[3.0, 4.0], [0.3, 0.4]])
    for dim in (2, 5, -3):
        with pytest.raises(ValueError, match="dim"):
            optim.max_norm_(w, 1.0, dim=dim)
    with pytest.raises(TypeError, match="dim"):
        optim.max_norm_(w, 1.0, dim=0.5)
    for norm_type in (0, -1):
        with pytest.raises(ValueError, match="norm_type"):
            optim.max_norm_(w, 1.0, norm_type=norm_type)
    assert optim.max_norm_(np.ones((0, 3)), 1.0).shape == (0, 3)
    np.testing.assert_allclose(optim.max_norm_(w.copy(), 1.0, dim=-1),
                               optim.max_norm_(w.copy(), 1.0, dim=1))


@pytest.mark.parametrize("norm_type,exc", [("fro", TypeError), (None, TypeError),
                                           (0, ValueError), (-1.0, ValueError)])
def test_clip_grad_norm_checks_norm_type(norm_type, exc):
    p = nn.Parameter(np.ones(2))
    p.grad = np.ones(2)
    with pytest.raises(exc, match="clip_grad_norm_: norm_type"):
        optim.clip_grad_norm_([p], 1.0, norm_type)


def test_scheduler_arguments_are_checked():
    """Counts are ints >= 0 (patience=2.9 was truncated to 2, 'a' gave int()'s error),
    thresholds and floors non-negative numbers, metrics one number, last_epoch an int."""
    opt = optim.SGD([nn.Parameter(np.ones(2))], lr=0.1)
    for kw, exc, match in [(dict(patience="a"), TypeError, "patience must be an int"),
                           (dict(patience=2.9), TypeError, "patience must be an int"),
                           (dict(cooldown=-1), ValueError, "cooldown must be an int >= 0"),
                           (dict(min_lr="a"), TypeError, "min_lr must be a number"),
                           (dict(threshold=-1.0), ValueError, "threshold must be >= 0"),
                           (dict(eps=-1.0), ValueError, "eps must be >= 0")]:
        with pytest.raises(exc, match=match):
            optim.ReduceLROnPlateau(opt, **kw)
    sched = optim.ReduceLROnPlateau(opt)
    for bad in ("abc", np.array([1.0, 2.0]), None):
        with pytest.raises(TypeError, match="metrics must be a number"):
            sched.step(bad)
    sched.step(np.float32(0.5))
    with pytest.raises(TypeError, match="last_epoch must be an int"):
        optim.StepLR(opt, 1, last_epoch="a")
    with pytest.raises(ValueError, match="last_epoch must be an int >= -1, got -2"):
        optim.StepLR(opt, 1, last_epoch=-2)


def test_optimiser_structure_errors():
    p = nn.Parameter(np.ones(2))
    opt = optim.Adam([p], lr=0.1)
    with pytest.raises(TypeError, match="expected a dict with 'state' and 'param_groups'"):
        opt.load_state_dict({})
    groups = opt.state_dict()["param_groups"]
    with pytest.raises(ValueError, match="state for parameter 5, but this optimiser has 1"):
        opt.load_state_dict({"state": {5: {}}, "param_groups": groups})
    with pytest.raises(TypeError, match="params must be an iterable"):
        optim.SGD(None, lr=0.1)


def test_sgd_steps_from_a_state_with_no_momentum_buffer():
    """torch's SGD state dicts hold 'momentum_buffer': None before a step; loading one and
    stepping raised AttributeError. The first step then starts the buffer, as torch does."""
    p = nn.Parameter(np.zeros(3))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["state"] = {0: {"momentum_buffer": None}}
    opt.load_state_dict(state)
    p.grad = np.ones(3)
    opt.step()
    np.testing.assert_array_equal(p.data, np.full(3, -0.1))
    p.grad = np.ones(3)
    opt.step()
    np.testing.assert_allclose(p.data, np.full(3, -0.1 - 0.1 * 1.9))


@pytest.mark.parametrize("clip", [lambda ps: optim.clip_grad_norm_(ps, 1.0),
                                  lambda ps: optim.clip_grad_value_(ps, 1.0)])
def test_clipping_names_what_is_not_a_parameter(clip):
    for bad in ([np.ones(3)], 3):
        with pytest.raises(TypeError, match="parameters must be a Parameter or an iterable of "
                                            "Parameters"):
            clip(bad)
