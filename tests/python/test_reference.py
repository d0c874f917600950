"""Tests for the float64 reference trainer and the shared batch and learning-rate schedule."""

import numpy as np
import pytest

from veil._batching import epoch_batches, lr_exponent_at
from veil._reference import ACTIVATIONS, FloatMLP
from veil.datasets import load_dataset


def random_weights(widths, seed=0, scale=0.7):
    """Random weights in veil's layout: (n + 1, m) per layer, bias in the last row."""
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=(n + 1, m)) for n, m in zip(widths[:-1], widths[1:])]


def he_weights(widths, seed=0):
    rng = np.random.default_rng(seed)
    weights = []
    for n, m in zip(widths[:-1], widths[1:]):
        w = np.zeros((n + 1, m))
        w[:-1] = rng.normal(scale=np.sqrt(2.0 / n), size=(n, m))
        weights.append(w)
    return weights


def numeric_gradients(model, X, y, h=1e-6):
    """Central finite differences of the loss with respect to every weight."""
    weights = model.weights
    grads = []
    for layer, w in enumerate(weights):
        g = np.zeros_like(w)
        for index in np.ndindex(*w.shape):
            values = []
            for step in (h, -h):
                shifted = [v.copy() for v in weights]
                shifted[layer][index] += step
                probe = FloatMLP(shifted, model.activations, model.loss)
                values.append(probe.loss_and_gradients(X, y)[0])
            g[index] = (values[0] - values[1]) / (2 * h)
        grads.append(g)
    return grads


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_finite_differences(activation, loss):
    widths = [5, 4, 3, 3]
    rng = np.random.default_rng(11)
    X = rng.normal(size=(6, widths[0]))
    y = np.array([0, 1, 2, 2, 1, 0])
    # Cross-entropy needs a linear output; MSE also exercises sigma' on the output layer.
    output = "identity" if loss == "cross_entropy" else activation
    model = FloatMLP(random_weights(widths, seed=3), [activation, activation, output], loss)
    _, analytic = model.loss_and_gradients(X, y)
    numeric = numeric_gradients(model, X, y)
    for a, n in zip(analytic, numeric):
        error = np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-12)
        assert error < 1e-6, f"{activation}/{loss}: relative error {error:.2e}"


def test_forward_uses_bias_as_last_row():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 2))
    X = rng.normal(size=(5, 3))
    model = FloatMLP([w], ["identity"], "mse")
    np.testing.assert_allclose(model.predict_proba(X), X @ w[:-1] + w[-1])


def test_mse_loss_definition():
    w = np.zeros((3, 2))
    w[-1] = [0.5, 0.25]  # constant output through the bias
    model = FloatMLP([w], ["identity"], "mse")
    X = np.zeros((2, 2))
    y = np.array([0, 1])
    # sum_k (a - onehot)^2 averaged over the batch: ((0.5^2 + 0.25^2) + (0.5^2 + 0.75^2)) / 2
    expected = ((0.25 + 0.0625) + (0.25 + 0.5625)) / 2
    assert model.evaluate(X, y)["loss"] == pytest.approx(expected)


def test_cross_entropy_predicts_probabilities():
    model = FloatMLP(random_weights([4, 3]), ["identity"], "cross_entropy")
    p = model.predict_proba(np.random.default_rng(1).normal(size=(7, 4)))
    assert p.shape == (7, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert np.all(p > 0)


def test_train_step_is_plain_sgd_and_does_not_touch_caller_arrays():
    widths = [4, 5, 3]
    initial = random_weights(widths, seed=2)
    saved = [w.copy() for w in initial]
    model = FloatMLP(initial, ["sigmoid", "identity"], "cross_entropy")
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, size=8)
    loss_before, grads = model.loss_and_gradients(X, y)
    loss, n_correct = model.train_step(X, y, 0.125)
    assert loss == pytest.approx(loss_before)
    assert 0 <= n_correct <= 8
    for new, old, g in zip(model.weights, saved, grads):
        np.testing.assert_allclose(new, old - 0.125 * g)
    for w, old in zip(initial, saved):
        np.testing.assert_array_equal(w, old)


def test_update_divisor_divides_the_summed_gradient():
    widths = [4, 5, 3]
    initial = random_weights(widths, seed=6)
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(5, 4)), rng.integers(0, 3, size=5)
    _, grads = FloatMLP(initial, ["relu", "identity"], "cross_entropy").loss_and_gradients(X, y)
    model = FloatMLP(initial, ["relu", "identity"], "cross_entropy", update_divisor=8)
    assert model.update_divisor == 8
    model.train_step(X, y, 0.5)
    # Mean gradient times B gives the summed gradient, which the step divides by 8, not 5.
    for new, old, g in zip(model.weights, initial, grads):
        np.testing.assert_allclose(new, old - 0.5 * (5 / 8) * g)
    same = FloatMLP(initial, ["relu", "identity"], "cross_entropy", update_divisor=5)
    plain = FloatMLP(initial, ["relu", "identity"], "cross_entropy")
    same.train_step(X, y, 0.5)
    plain.train_step(X, y, 0.5)
    for a, b in zip(same.weights, plain.weights):
        np.testing.assert_allclose(a, b)
    for bad in (0, -4, 2.0, True):
        with pytest.raises(ValueError, match="update_divisor"):
            FloatMLP(initial, ["relu", "identity"], "cross_entropy", update_divisor=bad)


def test_relu_derivative_at_zero_is_zero():
    # The hidden unit's pre-activation is exactly 0 for every input, so nothing reaches layer 0.
    first = np.zeros((3, 1))
    second = np.array([[1.0, -1.0], [0.1, 0.2]])
    model = FloatMLP([first, second], ["relu", "identity"], "cross_entropy")
    _, grads = model.loss_and_gradients(np.ones((2, 2)), np.array([0, 1]))
    np.testing.assert_array_equal(grads[0], 0.0)


def test_extreme_inputs_stay_finite():
    w = np.array([[1.0, 1.0], [0.0, 0.0]])
    X = np.array([[-1000.0], [1000.0]])
    for activation in ("sigmoid", "softplus", "arctan"):
        model = FloatMLP([w], [activation], "mse")
        out = model.predict_proba(X)
        assert np.all(np.isfinite(out))
        _, grads = model.loss_and_gradients(X, np.array([0, 1]))
        assert all(np.all(np.isfinite(g)) for g in grads)
    softplus = FloatMLP([w], ["softplus"], "mse").predict_proba(X)
    np.testing.assert_allclose(softplus[:, 0], [np.log1p(np.exp(-1000.0)), 1000.0])
    ce = FloatMLP([w * 1000], ["identity"], "cross_entropy")
    assert np.isfinite(ce.evaluate(X, np.array([0, 1]))["loss"])


def test_constructor_errors():
    with pytest.raises(ValueError, match="identity"):
        FloatMLP(random_weights([3, 2]), ["relu"], "cross_entropy")
    with pytest.raises(ValueError, match="inputs"):
        FloatMLP([np.zeros((4, 3)), np.zeros((5, 2))], ["relu", "identity"], "mse")
    with pytest.raises(ValueError, match="unknown activation"):
        FloatMLP(random_weights([3, 2]), ["tanh"], "mse")
    with pytest.raises(ValueError, match="unknown loss"):
        FloatMLP(random_weights([3, 2]), ["identity"], "hinge")
    with pytest.raises(ValueError, match="activations"):
        FloatMLP(random_weights([3, 2]), ["identity", "identity"], "mse")
    model = FloatMLP(random_weights([3, 2]), ["identity"], "mse")
    with pytest.raises(ValueError, match="labels"):
        model.evaluate(np.zeros((2, 3)), np.array([0, 2]))
    with pytest.raises(ValueError, match="shape"):
        model.evaluate(np.zeros((2, 4)), np.array([0, 1]))


def test_fit_follows_the_shared_schedule():
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, size=50)
    weights = random_weights([4, 6, 3], seed=1)
    acts = ["arctan", "identity"]
    fitted = FloatMLP(weights, acts, "cross_entropy")
    history = fitted.fit(X, y, epochs=3, batch_size=16, seed=5, base_lr_exp=2, halve_at=[1, 2],
                         validation_data=(X[:10], y[:10]))
    manual = FloatMLP(weights, acts, "cross_entropy")
    for epoch in range(3):
        lr = 2.0 ** -lr_exponent_at(epoch, 2, [1, 2])
        for idx in epoch_batches(50, 16, 5, epoch):
            manual.train_step(X[idx], y[idx], lr)
    for a, b in zip(fitted.weights, manual.weights):
        np.testing.assert_array_equal(a, b)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["lr_exp"] for h in history] == [2, 3, 4]
    for record in history:
        assert set(record) >= {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"}
        assert 0.0 <= record["accuracy"] <= 1.0 and 0.0 <= record["val_accuracy"] <= 1.0
    no_val = FloatMLP(weights, acts, "cross_entropy").fit(X, y, 1, 16, 5, 2, ())
    assert no_val[0]["val_loss"] is None and no_val[0]["val_accuracy"] is None


def test_digits_relu_mlp_learns():
    data = load_dataset("digits", seed=0)
    model = FloatMLP(he_weights([64, 32, 10], seed=0), ["relu", "identity"], "cross_entropy")
    history = model.fit(data.X_train, data.y_train, epochs=8, batch_size=32, seed=0,
                        base_lr_exp=3, halve_at=[6])
    assert history[-1]["loss"] < history[0]["loss"]
    assert model.evaluate(data.X_test, data.y_test)["accuracy"] > 0.9


# --- shared schedule -------------------------------------------------------------------------


@pytest.mark.parametrize("n, batch_size", [(100, 32), (64, 64), (5, 10), (1, 1)])
def test_epoch_batches_cover_every_index_once(n, batch_size):
    batches = epoch_batches(n, batch_size, seed=3, epoch=2)
    assert all(b.dtype == np.int64 for b in batches)
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert 1 <= len(batches[-1]) <= batch_size
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n))


def test_epoch_batches_are_deterministic_per_seed_and_epoch():
    def order(seed, epoch):
        return np.concatenate(epoch_batches(200, 32, seed, epoch))

    np.testing.assert_array_equal(order(1, 4), order(1, 4))
    np.testing.assert_array_equal(order(1, 4),
                                  np.random.default_rng([1, 4]).permutation(200))
    assert not np.array_equal(order(1, 4), order(1, 5))
    assert not np.array_equal(order(1, 4), order(2, 4))


def test_epoch_batches_edge_cases_and_errors():
    assert epoch_batches(0, 8, 0, 0) == []
    for args in ((10, 0, 0, 0), (-1, 4, 0, 0), (10, 4, -1, 0), (10, 4, 0, -1), (10, 2.5, 0, 0)):
        with pytest.raises(ValueError):
            epoch_batches(*args)


def test_lr_exponent_at():
    assert [lr_exponent_at(e, 2, [20]) for e in (0, 19, 20, 29)] == [2, 2, 3, 3]
    assert [lr_exponent_at(e, 3, [2, 5]) for e in range(7)] == [3, 3, 4, 4, 4, 5, 5]
    assert lr_exponent_at(10, 4, []) == 4
    assert lr_exponent_at(0, 1, [0]) == 2
    for args in ((0, 2, [3, 3]), (-1, 2, [1]), (0, 2, [-1]), (0, 2.0, [1])):
        with pytest.raises(ValueError):
            lr_exponent_at(*args)
