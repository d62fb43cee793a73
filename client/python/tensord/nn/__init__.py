"""tensord.nn: PyTorch's torch.nn over tensors that live in the daemon.

    import tensord as td
    model = td.nn.Sequential(td.nn.Linear(64, 32), td.nn.ReLU(), td.nn.Linear(32, 10))
    loss = td.nn.CrossEntropyLoss()(model(x), y)
    loss.backward()

Modules, parameters, losses, td.nn.functional and td.nn.init keep PyTorch's names and
defaults. Parameters are created and initialised in the daemon (from the session's seeded
generator) and never leave it unless downloaded.
"""
from . import functional, init
from .parameter import Buffer, Parameter
from .modules import (Module, Sequential, ModuleList, ModuleDict, Identity, Linear, ReLU,
                      GELU, Tanh, Sigmoid, Dropout, Embedding, LayerNorm, Conv2d, MaxPool2d,
                      AvgPool2d, Flatten, Softmax, LogSoftmax, MSELoss, L1Loss,
                      CrossEntropyLoss, NLLLoss, BCEWithLogitsLoss)

__all__ = [
    "functional", "init", "Parameter", "Buffer", "Module", "Sequential", "ModuleList",
    "ModuleDict", "Identity", "Linear", "ReLU", "GELU", "Tanh", "Sigmoid", "Dropout",
    "Embedding", "LayerNorm", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten", "Softmax",
    "LogSoftmax", "MSELoss", "L1Loss", "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss",
]
