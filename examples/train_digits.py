"""Train a small CNN (or an MLP) on scikit-learn's 8x8 handwritten digits, entirely in the
tensord daemon.

    python examples/train_digits.py [--model cnn|mlp] [--epochs N] [--seed S]
                                    [--address ADDR]

The 1797 images are split 80/20 with a seeded permutation and uploaded once, together
with every epoch's shuffling order; batches are slices of that order gathered with
index_select in the daemon, so per step the client only queues ops (forward, loss,
backward, one fused optimizer node) and reads back one number per epoch. Parameters are
initialised in the daemon from the session generator seeded with --seed, so a run is
reproducible. Prints the mean training loss of every epoch and the final test accuracy.
"""
import argparse
import time

import numpy as np

import tensord as td
from tensord import nn

BATCH_SIZE = 64


def session_seed(seed):
    """The daemon session seed for --seed (the daemon reads seed 0 as "pick one")."""
    if seed < 0:
        raise ValueError("seed must be >= 0, got %d" % seed)
    return seed + 1


def load_data(seed):
    """Returns: (x_train, y_train, x_test, y_test) NumPy arrays: images (N, 1, 8, 8)
    float32 scaled to [0, 1], labels int64; a seeded 80/20 split of load_digits."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(seed).permutation(len(y))
    n_train = int(round(0.8 * len(y)))
    tr, te = perm[:n_train], perm[n_train:]
    return x[tr], y[tr], x[te], y[te]


def build_model(kind):
    """The example's models: a two-conv CNN or a one-hidden-layer MLP (10 logits)."""
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 2 * 2, 10))
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    raise ValueError("unknown model %r (cnn or mlp)" % (kind,))


def accuracy(model, x, y):
    """Returns: the fraction of rows of x whose argmax logit equals y (one download)."""
    model.eval()
    with td.no_grad():
        pred = td.op("argmax", model(x), dim=1)
        correct = td.op("sum", td.op("eq", pred, y))
    model.train()
    return correct.item() / y.shape[0]


def train(epochs=8, seed=0, model_kind="cnn", lr=1e-2, batch_size=BATCH_SIZE, client=None,
          address=None, log=print):
    """Trains a fresh model on the digits. client: a connected Client to use (made the
    default for the run; its generator's state decides the initial weights); otherwise a
    new one is connected to address (None: a private daemon) with its session generator
    seeded by session_seed(seed), and returned for the caller to close (owns_client=True)
    once done with the model. Returns: dict(model, test_accuracy, losses, seconds, client,
    owns_client)."""
    own = client is None
    if own:
        client = td.connect(address, seed=session_seed(seed))
    else:
        td.set_default_client(client)
    t0 = time.perf_counter()
    x_tr, y_tr, x_te, y_te = load_data(seed)
    n = len(y_tr)
    rng = np.random.default_rng(seed + 1)
    orders = np.stack([rng.permutation(n) for _ in range(epochs)]).astype(np.int64)

    xtr, ytr = td.tensor(x_tr), td.tensor(y_tr)
    xte, yte = td.tensor(x_te), td.tensor(y_te)
    orders_t = td.tensor(orders)

    model = build_model(model_kind)
    opt = td.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    starts = list(range(0, n, batch_size))
    for epoch in range(epochs):
        order = orders_t[epoch]
        total = None
        for s in starts:
            idx = order[s:s + batch_size]
            xb = td.index_select(xtr, 0, idx)
            yb = td.index_select(ytr, 0, idx)
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            with td.no_grad():
                part = loss.detach() * min(batch_size, n - s)
                total = part if total is None else total + part
        losses.append(total.item() / n)
        if log is not None:
            log("epoch %d  loss %.4f" % (epoch + 1, losses[-1]))
    acc = accuracy(model, xte, yte)
    secs = time.perf_counter() - t0
    if log is not None:
        log("test accuracy %.4f (%d images), %.1f s" % (acc, len(y_te), secs))
    return dict(model=model, test_accuracy=acc, losses=losses, seconds=secs, client=client,
                owns_client=own)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("cnn", "mlp"), default="cnn")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    ap.add_argument("--address", default=None,
                    help="daemon address (default: start a private daemon)")
    args = ap.parse_args()
    r = train(args.epochs, args.seed, args.model, args.lr, args.batch_size,
              address=args.address)
    r["client"].close()


if __name__ == "__main__":
    main()
