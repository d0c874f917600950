"""Private fine-tuning on digits (docs/design.md §4.5).

1. Train a 64-64-64-10 model on one half of digits' training split (verify mode).
2. Keep its first two layers, freeze them, and fine-tune a fresh head on the other half in
   private mode: the frozen layers run on the device behind one-time pads, every product
   checked; the head trains inside the enclave in float64. A RecordingDevice keeps
   everything the device is given.
3. Fine-tune the same head from the same start on the same batches in plain float64
   (numpy, no enclave, no quantization), and compare test accuracies.
4. Audit what the device saw over the whole fine-tuning: the frozen layers' W_q and,
   besides them, only 24-bit limbs of values uniform on [0, p_b) and uncorrelated with the
   data.

    python examples/python/private_finetune.py [--epochs 20] [--out model.npz]
"""
import argparse

import numpy as np
from scipy import stats

import veil
from veil._batching import epoch_batches
from veil._reference import FloatMLP
from veil.datasets import load_dataset

P_B = 2**48 - 59
FRAC_ACT = 8
LR, BATCH, SEED = 0.5, 32, 1


def hidden(weights, X):
    """The frozen ReLU layers in float64."""
    for w in weights:
        X = np.maximum(np.hstack([X, np.ones((len(X), 1))]) @ w, 0.0)
    return X


def audit(device, frozen, batches_x):
    """What the device received, against the plaintexts of the same batches: returns
    (values seen, chi-square p-value of their uniformity on [0, p_b), |correlation| with the
    plaintexts they mask)."""
    uploads = device.received("upload")
    assert len(uploads) == len(frozen), "the device got weights of a head layer"
    for w, seen in zip(frozen, uploads):
        assert np.array_equal(seen, np.round(w * 2.0**10)), "an upload is not W_q"
    assert not device.received("backward") and not device.received("update")
    blinded_all, plain_all = [], []
    for layer in range(len(frozen)):
        limbs = device.received("forward", layer)
        assert len(limbs) == 2 * len(batches_x), "not two limb products per layer and batch"
        for k, x in enumerate(batches_x):
            lo, hi = limbs[2 * k], limbs[2 * k + 1]
            for limb in (lo, hi):
                assert np.all(limb == np.floor(limb)) and limb.min() >= 0 and limb.max() < 2**24
            blinded = lo.astype(np.int64) + (hi.astype(np.int64) << 24)
            assert blinded.max() < P_B
            # The plaintext this product would have had: the batch, or its hidden layer.
            plain = x if layer == 0 else hidden(frozen[:layer], x)
            plain_q = np.round(plain * 2**FRAC_ACT)
            assert not np.array_equal(lo[:, :-1], plain_q), "the device saw a plaintext"
            blinded_all.append(blinded[:, :-1].ravel())
            plain_all.append(plain_q.ravel())
    corr = abs(np.corrcoef(np.concatenate(blinded_all).astype(np.float64),
                           np.concatenate(plain_all))[0, 1])
    values = np.concatenate(blinded_all)
    counts = np.bincount((values * 64) // P_B, minlength=64)
    return values.size, stats.chisquare(counts).pvalue, corr


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="fine-tuning epochs")
    parser.add_argument("--out", default=None, help="write the fine-tuned model file here")
    args = parser.parse_args()
    data = load_dataset("digits", seed=0)
    half = len(data.X_train) // 2
    XA, yA = data.X_train[:half], data.y_train[:half]
    XB, yB = data.X_train[half:], data.y_train[half:]

    # 1. The pretrained model, from part A.
    base = veil.Sequential([veil.Dense(64, 64), veil.ReLU(), veil.Dense(64, 64), veil.ReLU(),
                            veil.Dense(64, 10)])
    pre = veil.Trainer(base, mode="verify", device="cpu", lr=2**-2, seed=0, batch_size=64)
    pre.fit(XA, yA, epochs=15, verbose=0)
    pretrained = pre.export_weights()
    print(f"pretrained on part A ({half} samples): test accuracy "
          f"{pre.evaluate(data.X_test, data.y_test)['accuracy']:.4f}")

    # 2. Private fine-tuning of a fresh head on part B; layers 0 and 1 frozen.
    model = veil.Sequential([veil.Dense(64, 64), veil.ReLU(), veil.Dense(64, 64), veil.ReLU(),
                             veil.Dense(64, 10)]).freeze(upto=2)
    device = veil.RecordingDevice()
    tuner = veil.Trainer(model, mode="private", device=device, weights=pretrained[:2], lr=LR,
                         seed=SEED, batch_size=BATCH)
    tuner.fit(XB, yB, epochs=args.epochs, verbose=0)
    private = tuner.evaluate(data.X_test, data.y_test)["accuracy"]

    # 3. The same fine-tuning in float64: same start, same batches, same lr.
    head = FloatMLP([tuner.initial_weights[2]], ["identity"], "cross_entropy")
    features = hidden(pretrained[:2], XB)
    order = [epoch_batches(len(XB), BATCH, SEED, e) for e in range(args.epochs)]
    for epoch in order:
        for idx in epoch:
            head.train_step(features[idx], yB[idx], LR)
    reference = head.evaluate(hidden(pretrained[:2], data.X_test), data.y_test)["accuracy"]
    print(f"private fine-tuning accuracy {private:.4f}, float64 fine-tuning accuracy "
          f"{reference:.4f}, difference {100 * abs(private - reference):.2f} points")

    # 4. The audit, over every step and the evaluation.
    batches_x = [XB[idx] for epoch in order for idx in epoch]
    batches_x += [data.X_test[i:i + BATCH] for i in range(0, len(data.X_test), BATCH)]
    seen, p_value, corr = audit(device, pretrained[:2], batches_x)
    print(f"audit: the device saw {seen} masked values, uniformity p={p_value:.3f}, "
          f"|correlation| with the data {corr:.4f}, checks passed {tuner.checks_passed}")
    if args.out:
        veil.save_model(args.out, tuner)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
