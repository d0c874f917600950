"""A first veil program: train an MLP on scikit-learn's digits with every product checked.

    python examples/python/train_digits.py

The device (the CPU here, a GPU with device="cuda") holds the weights and does the
matrix products; the enclave checks each one with Freivalds' algorithm and would
stop with veil.VerificationError, naming layer, phase and step, at the first lie.
"""
import veil
from veil.datasets import load_dataset

data = load_dataset("digits", validation_fraction=0.1, seed=0)
model = veil.Sequential([veil.Dense(64, 128), veil.ReLU(),
                         veil.Dense(128, 128), veil.ReLU(),
                         veil.Dense(128, 10)])
trainer = veil.Trainer(model, mode="verify", device="auto", loss="cross_entropy",
                       lr=2**-2, seed=0, halve_lr_at=(20,))
trainer.fit(data.X_train, data.y_train, epochs=30, batch_size=64,
            validation_data=(data.X_val, data.y_val), verbose=1)
result = trainer.evaluate(data.X_test, data.y_test)
print(f"test accuracy {result['accuracy']:.4f}, {trainer.checks_passed} checks passed")

# The weights leave the enclave's protection only after both fingerprints match.
weights = trainer.export_weights()
print("exported", [w.shape for w in weights])

# The same model, served privately: the device sees only one-time-padded inputs.
infer = veil.Inference(trainer, mode="private", device="auto")
infer.precompute(batches=6, batch_size=64, verbose=0)
private = infer.evaluate(data.X_test, data.y_test)
print(f"private inference accuracy {private['accuracy']:.4f}")
