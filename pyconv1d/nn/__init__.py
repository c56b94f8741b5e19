"""Layers on numpy arrays with an explicit backward pass: ``pyconv1d.nn``.

PyTorch's names, arguments, defaults, weight shapes and initialisation, so that model code
ports line by line; arrays in and out are numpy arrays. ``forward(x)`` (or calling the layer)
computes the output and keeps what the backward pass needs; ``backward(grad_output)`` returns
the gradient of the input and adds into every parameter's ``.grad``; an optimiser from
:mod:`pyconv1d.optim` then updates the parameters.

Initialisation draws from a ``numpy.random.Generator``: pass ``rng=`` to a layer, or seed the
default one with :func:`manual_seed`.

Examples
--------
>>> import numpy as np
>>> from pyconv1d import nn, optim
>>> _ = nn.manual_seed(0)
>>> model = nn.Sequential(nn.Conv1d(1, 8, 5, padding='same'), nn.ReLU(),
...                       nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(8, 2))
>>> loss_fn = nn.CrossEntropyLoss()
>>> opt = optim.Adam(model.parameters(), lr=1e-2)
>>> x = np.zeros((4, 1, 32), np.float32); y = np.array([0, 1, 0, 1])
>>> loss = loss_fn(model(x), y)
>>> opt.zero_grad(); _ = model.backward(loss_fn.backward()); opt.step()
"""
from . import init
from .activation import (GELU, Dropout, Flatten, LeakyReLU, LogSoftmax, Permute, ReLU, Sigmoid,
                         Softmax, Tanh, Transpose)
from .conv import Conv1d, Conv2d, ConvTranspose1d
from .linear import Embedding, Identity, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss
from .module import (Concat, Module, ModuleDict, ModuleList, Parameter, Sequential,
                     default_rng, get_num_threads, manual_seed, set_num_threads)
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import (AdaptiveAvgPool2d, AdaptiveMaxPool1d, AvgPool1d, AvgPool2d, MaxPool1d,
                      MaxPool2d)

__all__ = [
    "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AvgPool1d", "AvgPool2d", "BCEWithLogitsLoss",
    "BatchNorm1d", "BatchNorm2d", "Concat", "Conv1d", "Conv2d", "ConvTranspose1d",
    "CrossEntropyLoss", "Dropout", "Embedding", "Flatten", "GELU", "Identity", "LayerNorm",
    "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "MaxPool1d", "MaxPool2d", "Module",
    "ModuleDict", "ModuleList", "Parameter", "Permute", "ReLU", "Sequential", "Sigmoid",
    "Softmax", "Tanh", "Transpose", "default_rng", "get_num_threads", "init", "manual_seed",
    "set_num_threads",
]
