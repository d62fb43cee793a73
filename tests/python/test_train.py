"""End to end: examples/train_digits.py trains its CNN (and MLP) on scikit-learn's digits in
the daemon to at least 95% test accuracy with a fixed seed, and a state_dict saved with
td.save and loaded into a fresh model gives identical predictions."""
import os
import sys

import numpy as np
import pytest

import tensord as td

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "examples"))
import train_digits  # noqa: E402

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def session(daemon, client):
    made = []

    def make(seed):
        c = td.connect(daemon.unix_address, seed=train_digits.session_seed(seed))
        made.append(c)
        return c
    yield make
    td.set_default_client(client)
    for c in made:
        c.close()


def logits(model, x):
    model.eval()
    with td.no_grad():
        out = model(x).numpy()
    model.train()
    return out


def test_cnn_reaches_95_percent_and_reloads(session, tmp_path):
    c = session(0)
    r = train_digits.train(epochs=8, seed=0, model_kind="cnn", client=c, log=None)
    assert r["test_accuracy"] >= 0.95, r
    losses = r["losses"]
    assert len(losses) == 8 and losses[-1] < losses[0] / 5, losses
    model = r["model"]
    _, _, x_te, y_te = train_digits.load_data(0)
    x = td.tensor(x_te)
    want = logits(model, x)
    # The accuracy the example reports is the argmax of these logits.
    assert abs((want.argmax(1) == y_te).mean() - r["test_accuracy"]) < 1e-12

    path = os.path.join(tmp_path, "digits.td")
    td.save(model.state_dict(), path)
    fresh = train_digits.build_model("cnn")
    assert not np.array_equal(logits(fresh, x), want)
    res = fresh.load_state_dict(td.load(path))
    assert res.missing_keys == [] and res.unexpected_keys == []
    np.testing.assert_array_equal(logits(fresh, x), want)


def test_mlp_reaches_95_percent(session):
    c = session(1)
    r = train_digits.train(epochs=8, seed=1, model_kind="mlp", client=c, log=None)
    assert r["test_accuracy"] >= 0.95, r


def test_training_is_reproducible_from_the_seed(session):
    a = train_digits.train(epochs=1, seed=3, model_kind="cnn", client=session(3), log=None)
    b = train_digits.train(epochs=1, seed=3, model_kind="cnn", client=session(3), log=None)
    assert a["losses"] == b["losses"]
    assert a["test_accuracy"] == b["test_accuracy"]
