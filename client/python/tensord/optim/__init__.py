"""tensord.optim: PyTorch's optimizers (SGD, Adam, AdamW) with fused in-daemon updates.

Each step() queues one update node per parameter group; the daemon reads the gradients
and updates parameters and optimizer state in place, with no round trip.
"""
from .optimizer import Optimizer
from .sgd import SGD
from .adam import Adam, AdamW

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
