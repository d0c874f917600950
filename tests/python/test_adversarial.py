"""Every adversarial strategy against every phase of verify training and of private
inference: each lie caught where it should be, and no false alarm on honest work.

"Caught" means veil.VerificationError whose message names the layer, the phase and the
step (the batch, in inference): at once for a bad product or a bad export; at the next
product that uses the weights for a bad update (the next step's forward of that layer)
or a bad model (that batch's first product of the layer). A result of the wrong shape
is refused by the host bridge before the enclave sees it: veil.DeviceError whose message
names the shape problem, the layer, the phase and the step.
"""
import functools
import re

import numpy as np

import veil
from adversarial import NEEDS_PARTNER, PRIVATE_PHASES, STRATEGIES, TRAINING_PHASES, Adversary

FEATURES, WIDTH, CLASSES, BATCH = 16, 16, 4, 8
SAME_SHAPE = (0, 1, 2)   # layers whose weights are (WIDTH + 1) x WIDTH
HONEST_BEFORE = 2        # honest steps before a lie
HONEST_STRETCH = 12      # ... for "honest for N steps, then cheating"
FAULT = re.compile(r"\b(mismatch|out_of_range|not_integral|not_finite)\b")
ACTIVATIONS = ["sigmoid", "sigmoid", "sigmoid", "identity"]
FRAC_WEIGHTS = 10  # veil.Inference's default f_w


def model():
    # Sigmoid keeps every activation non-zero, so a lie in the weights always shows
    # in the next product (a dead ReLU input would multiply it away).
    return veil.Sequential([
        veil.Dense(FEATURES, WIDTH), veil.Sigmoid(),
        veil.Dense(WIDTH, WIDTH), veil.Sigmoid(),
        veil.Dense(WIDTH, WIDTH), veil.Sigmoid(),
        veil.Dense(WIDTH, CLASSES),
    ])


def batches(seed):
    rng = np.random.default_rng(seed)
    while True:
        yield rng.random((BATCH, FEATURES)), rng.integers(0, CLASSES, BATCH)


def pick_layer(index, strategy, phase):
    layers = [1, 2, 3] if phase == "backward" else [0, 1, 2, 3]  # layer 0 has no backward
    if strategy in NEEDS_PARTNER:
        layers = [layer for layer in layers if layer in SAME_SHAPE]
    return layers[index % len(layers)]


def where_caught(phase, layer, honest):
    """The exact location the enclave must name (docs/design.md §1, 4.1, 4.2)."""
    if phase in PRIVATE_PHASES:
        where = f"layer {layer}, phase forward, batch {honest + 1}"
    elif phase in ("forward", "backward"):
        where = f"layer {layer}, phase {phase}, step {honest + 1}"
    elif phase == "update":  # caught by the next product that uses the weights
        where = f"layer {layer}, phase forward, step {honest + 2}"
    elif phase == "export":
        where = f"layer {layer}, phase export (export), after step {honest}"
    else:
        where = f"layer {layer}, phase forward (predict), after step {honest}"
    return re.compile(re.escape(where) + r"(:| \()")  # "step 3" must not match "step 31"


@functools.lru_cache(maxsize=None)
def deployed():
    """A model trained for a few honest steps, as private inference deploys it, and its
    history as W_q: the first model, the one before the last update, that update."""
    trainer = veil.Trainer(model(), device="cpu", lr=2**-2, seed=7, batch_size=BATCH)
    data = batches(7)
    exports = [trainer.export_weights()]
    for _ in range(3):
        trainer.train_step(*next(data))
        exports.append(trainer.export_weights())

    def quantized(weights):
        return {layer: np.rint(w * 2.0**FRAC_WEIGHTS) for layer, w in enumerate(weights)}

    first, before, now = quantized(exports[0]), quantized(exports[-2]), quantized(exports[-1])
    return exports[-1], first, before, {layer: before[layer] - now[layer] for layer in now}


def adversary(index, strategy, phase, honest_before):
    layer = pick_layer(index, strategy, phase)
    partner = SAME_SHAPE[(SAME_SHAPE.index(layer) + 1) % len(SAME_SHAPE)] \
        if strategy in NEEDS_PARTNER else None
    return Adversary(strategy, phase, layer, step=honest_before + 1, partner=partner,
                     seed=1000 + index)


def run_training(device, index, phase, honest_before):
    """Drive a Trainer into the cell's phase. Returns (session, honest steps, error
    type, message)."""
    trainer = veil.Trainer(model(), device=device, lr=2**-2, seed=index, batch_size=BATCH)
    data = batches(index)
    steps = {"forward": honest_before + 1, "backward": honest_before + 1,
             "update": honest_before + 2}.get(phase, honest_before)
    honest, kind, message = 0, None, ""
    try:
        with device.calling("train"):
            for _ in range(steps):
                trainer.train_step(*next(data))
                if not device.cheated:
                    honest += 1
        if phase == "export":
            with device.calling("export"):
                trainer.export_weights()
        elif phase == "predict":
            with device.calling("predict"):
                trainer.predict(next(data)[0])
    except veil.Error as e:  # keep no reference to the traceback (it holds the session)
        kind, message = type(e), str(e)
    return trainer, honest, kind, message


def run_private(device, index, phase, honest_before):
    """Drive a private Inference into the cell's phase, one slot per batch. Returns
    (session, honest batches, error type, message)."""
    weights, first, before, delta = deployed()
    device.remember(first, before, delta)
    session = veil.Inference(weights, mode="private", device=device, activations=ACTIVATIONS,
                             loss="cross_entropy", batch_size=BATCH,
                             frac_weights=FRAC_WEIGHTS)
    session.precompute(honest_before + 1, verbose=0)
    data = batches(index)
    honest, kind, message = 0, None, ""
    try:
        with device.calling("private"):
            for _ in range(honest_before + 1):
                session.predict(next(data)[0])
                if not device.cheated:
                    honest += 1
    except veil.Error as e:
        kind, message = type(e), str(e)
    return session, honest, kind, message


def after_abort_calls(session, index):
    """Calls that must all be refused once a session has aborted."""
    data = batches(index)
    if isinstance(session, veil.Trainer):
        return [lambda: session.train_step(*next(data)),
                lambda: session.predict(next(data)[0]),
                session.export_weights]
    return [lambda: session.precompute(1, verbose=0),
            lambda: session.predict(next(data)[0])]


def aborted(session):
    return (session.stats() if isinstance(session, veil.Trainer) else session.status())["aborted"]


def run_cell(index, strategy, phase):
    """Run one (strategy, phase) cell. Returns (how it was caught or None, honest
    steps completed, a reason when not caught)."""
    honest_before = HONEST_STRETCH if strategy == "honest_then_cheat" else HONEST_BEFORE
    device = adversary(index, strategy, phase, honest_before)
    layer = device.layer
    run = run_private if phase in PRIVATE_PHASES else run_training
    session, honest, kind, message = run(device, index, phase, honest_before)

    if not device.cheated:
        return None, honest, f"the device never lied (stopped by {kind}: {message})"
    if honest != honest_before:
        return None, honest, f"false alarm after {honest} honest steps: {message}"
    if kind is None:
        return None, honest, "the lie was accepted"
    location = where_caught(phase, layer, honest)
    if not location.search(message):
        return None, honest, f"{kind.__name__} does not name {location.pattern!r}: {message}"
    if strategy == "wrong_shape":
        if kind is not veil.DeviceError or "shape" not in message:
            return None, honest, f"wrong shape not refused as a shape problem: {message}"
        if aborted(session):
            return None, honest, "a refused shape aborted the session"
        return "shape", honest, ""
    if kind is not veil.VerificationError:
        return None, honest, f"{kind.__name__} instead of VerificationError: {message}"
    if phase in PRIVATE_PHASES:
        limb = "high" if phase == "private_high" else "low"
        detail = f"(slot {honest}): the device's product of the {limb} limb"
        if detail not in message:
            return None, honest, f"the message does not name {detail!r}: {message}"
    # The session is over: nothing further leaves it.
    if not aborted(session):
        return None, honest, "the session was not aborted"
    for number, call in enumerate(after_abort_calls(session, index)):
        try:
            call()
            return None, honest, "a call after the abort succeeded"
        except veil.ProtocolError as e:
            # The first call reaches the enclave, which names the abort.
            if number == 0 and "aborted" not in str(e):
                return None, honest, f"after the abort: {e}"
    fault = FAULT.search(message)
    return fault.group(1) if fault else "check", honest, ""


def honest_run():
    """Adversaries that never get their turn: training steps, predictions, exports and
    private batches all pass. Returns the number of steps and batches."""
    device = Adversary("one_element", "forward", 0, step=10**9)
    trainer = veil.Trainer(model(), device=device, lr=2**-2, seed=99, batch_size=BATCH)
    data = batches(99)
    steps = 0
    for _ in range(4):
        with device.calling("train"):
            for _ in range(250):
                trainer.train_step(*next(data))
                steps += 1
        with device.calling("predict"):
            probs = trainer.predict_proba(next(data)[0])
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
        with device.calling("export"):
            weights = trainer.export_weights()
        for layer, w in enumerate(weights):
            np.testing.assert_array_equal(w, device.weights[layer] * 2.0 ** -(8 + 12 + 2 + 3))
    stats = trainer.stats()
    assert not stats["aborted"] and stats["step"] == steps

    weights, first, before, delta = deployed()
    device = Adversary("one_element", "private_low", 0, step=10**9)
    device.remember(first, before, delta)
    session = veil.Inference(weights, mode="private", device=device, activations=ACTIVATIONS,
                             loss="cross_entropy", batch_size=BATCH, frac_weights=FRAC_WEIGHTS)
    reference = veil.Inference(weights, mode="verify", device="cpu", activations=ACTIVATIONS,
                               loss="cross_entropy", batch_size=BATCH, frac_weights=FRAC_WEIGHTS)
    session.precompute(100, verbose=0)
    with device.calling("private"):
        for _ in range(100):
            x = next(data)[0]
            # Private and verify inference run the same integer arithmetic.
            np.testing.assert_array_equal(session.predict_proba(x),
                                          reference.predict_proba(x))
            steps += 1
    assert not session.status()["aborted"]
    return steps


def test_every_strategy_is_caught_in_every_phase(report):
    phases = TRAINING_PHASES + PRIVATE_PHASES
    caught, failures, honest_steps = {}, [], 0
    for index, strategy in enumerate(STRATEGIES):
        for phase in phases:
            how, honest, reason = run_cell(index, strategy, phase)
            honest_steps += honest
            caught[strategy, phase] = how
            if how is None:
                failures.append(f"{strategy} x {phase}: {reason}")
    honest_steps += honest_run()

    width = max(len(s) for s in STRATEGIES)
    lines = [" " * width + "  " + " ".join(f"{p:>12}" for p in phases)]
    for strategy in STRATEGIES:
        lines.append(f"{strategy:<{width}}  " + " ".join(
            f"{caught[strategy, p] or 'MISSED':>12}" for p in phases))
    print("\n" + "\n".join(lines), flush=True)
    assert not failures, "\n".join(failures)
    assert len(STRATEGIES) >= 12
    summary = (f"{len(STRATEGIES)} strategies × {len(phases)} phases: all caught; "
               f"{honest_steps} honest steps: no false alarm")
    print(summary, flush=True)
    report(summary)

