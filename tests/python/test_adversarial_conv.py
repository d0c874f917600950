"""The adversarial devices of adversarial.py against a convolutional network
(docs/design.md §4.4): wrong forward, backward and update results of a convolution, of
the convolution between a max pooling and an average pooling, and of the dense layer
that flattens a pooled output, each caught naming the layer, the phase and the step."""
import numpy as np
import pytest

import veil
from adversarial import STRATEGIES, Adversary
from test_adversarial import HONEST_BEFORE, aborted, where_caught

BATCH, CLASSES = 8, 4
# Layer 0: a convolution feeding a max pooling; layer 1: a convolution between that
# pooling and an average pooling; layer 2: the dense layer after the flatten.
LAYERS = {"forward": (0, 1, 2), "backward": (1, 2), "update": (0, 1, 2), "export": (0, 1, 2),
          "predict": (0, 1, 2)}
# Every strategy but the one that needs two layers of one shape.
CNN_STRATEGIES = [name for name in STRATEGIES if name != "other_layer"]


def model():
    # Sigmoid keeps every activation non-zero (see test_adversarial.model).
    return veil.Sequential(
        [veil.Conv2d(1, 4, 3, padding=1), veil.Sigmoid(), veil.MaxPool2d(2),
         veil.Conv2d(4, 4, 3, padding=1), veil.Sigmoid(), veil.AvgPool2d(2),
         veil.Flatten(), veil.Dense(16, CLASSES)], input_shape=(1, 8, 8))


def batches(seed):
    rng = np.random.default_rng(seed)
    while True:
        yield rng.random((BATCH, 1, 8, 8)), rng.integers(0, CLASSES, BATCH)


def run(strategy, phase, layer, index):
    device = Adversary(strategy, phase, layer, step=HONEST_BEFORE + 1, seed=2000 + index)
    trainer = veil.Trainer(model(), device=device, lr=2**-2, seed=index, batch_size=BATCH)
    data = batches(index)
    steps = {"forward": HONEST_BEFORE + 1, "backward": HONEST_BEFORE + 1,
             "update": HONEST_BEFORE + 2}.get(phase, HONEST_BEFORE)
    honest, error = 0, None
    try:
        with device.calling("train"):
            for _ in range(steps):
                trainer.train_step(*next(data))
                honest += not device.cheated
        with device.calling(phase if phase in ("export", "predict") else "train"):
            if phase == "export":
                trainer.export_weights()
            elif phase == "predict":
                trainer.predict(next(data)[0])
    except veil.Error as e:
        # Without its traceback: the frames it holds would keep this session open until
        # the cyclic garbage collector runs (the enclave holds 64).
        error = e.with_traceback(None)
    return trainer, device, honest, error


CELLS = [(s, p, l) for s in CNN_STRATEGIES for p in LAYERS for l in LAYERS[p]]


@pytest.mark.parametrize("strategy, phase, layer", CELLS)
def test_every_lie_about_a_cnn_is_caught_naming_layer_phase_and_step(strategy, phase, layer):
    trainer, device, honest, error = run(strategy, phase, layer, CELLS.index((strategy, phase, layer)))
    assert device.cheated, f"the device never lied: {error}"
    assert honest == HONEST_BEFORE, f"false alarm after {honest} honest steps: {error}"
    assert error is not None, "the lie was accepted"
    assert where_caught(phase, layer, honest).search(str(error)), str(error)
    if strategy == "wrong_shape":
        assert isinstance(error, veil.DeviceError) and "shape" in str(error)
        assert not aborted(trainer)
    else:
        assert isinstance(error, veil.VerificationError), str(error)
        assert aborted(trainer)


def test_an_honest_cnn_run_raises_no_false_alarm():
    device = Adversary("one_element", "forward", 0, step=10**9)
    trainer = veil.Trainer(model(), device=device, lr=2**-2, seed=5, batch_size=BATCH)
    data = batches(5)
    with device.calling("train"):
        for _ in range(60):
            trainer.train_step(*next(data))
    assert trainer.stats()["step"] == 60 and not trainer.stats()["aborted"]
