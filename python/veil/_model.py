"""Model description: dense layers and the activations between them."""
from __future__ import annotations

import numbers
import sys
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, TextIO, Tuple

from veil import _codes
from veil._errors import ConfigError


@dataclass(frozen=True)
class Dense:
    """A dense layer ``z = a @ W + b`` with ``inputs`` inputs and ``outputs`` outputs.

    ``trainable=False`` freezes it: private fine-tuning (``veil.Trainer(mode="private")``)
    runs frozen layers on the device behind one-time pads and trains the rest inside the
    enclave (docs/design.md §4.4).
    """

    inputs: int
    outputs: int
    trainable: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.trainable, bool):
            raise ConfigError(f"Dense.trainable must be True or False, got {self.trainable!r}")
        for name in ("inputs", "outputs"):
            value = getattr(self, name)
            # Any integer type counts (numpy's too): widths often come from X.shape.
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"Dense.{name} must be a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))


class _Activation:
    """Base of the activation layers; ``code`` is the EDL's veil_activation_t value."""

    code = -1
    name = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.code = _codes.ACTIVATION[cls.name]

    def __repr__(self) -> str:
        return f"veil.{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class Identity(_Activation):
    """sigma(z) = z."""

    name = "identity"


class ReLU(_Activation):
    """sigma(z) = max(z, 0)."""

    name = "relu"


class Sigmoid(_Activation):
    """sigma(z) = 1 / (1 + e^-z)."""

    name = "sigmoid"


class Arctan(_Activation):
    """sigma(z) = arctan(z)."""

    name = "arctan"


class Softplus(_Activation):
    """sigma(z) = log(1 + e^z) (the seed paper's "SoftMax")."""

    name = "softplus"


ACTIVATIONS = {cls.name: cls for cls in (Identity, ReLU, Sigmoid, Arctan, Softplus)}


class Sequential:
    """A stack of Dense layers, each optionally followed by one activation.

    Example:
        >>> model = Sequential([Dense(64, 128), ReLU(), Dense(128, 10)])
        >>> model.layer_specs()
        [(64, 128, 'relu'), (128, 10, 'identity')]
    """

    def __init__(self, layers: Iterable[object]):
        self.layers: List[object] = list(layers)
        self._specs = self._parse(self.layers)
        self._trainable = [layer.trainable for layer in self.layers if isinstance(layer, Dense)]

    @property
    def trainable(self) -> List[bool]:
        """Whether each dense layer trains (False: frozen), in order."""
        return list(self._trainable)

    def freeze(self, upto: int) -> "Sequential":
        """Freeze the first ``upto`` dense layers (the rest stay as they are); returns the
        model. Private fine-tuning needs at least the first layer frozen."""
        if not isinstance(upto, numbers.Integral) or isinstance(upto, bool) or not (
                0 <= upto <= len(self._specs)):
            raise ConfigError(f"freeze(upto={upto!r}): give a number of dense layers in "
                              f"[0, {len(self._specs)}]")
        for k in range(int(upto)):
            self._trainable[k] = False
        return self

    @staticmethod
    def _parse(layers: Sequence[object]) -> List[Tuple[int, int, str]]:
        specs: List[Tuple[int, int, str]] = []
        for position, layer in enumerate(layers):
            if isinstance(layer, Dense):
                if specs and specs[-1][1] != layer.inputs:
                    raise ConfigError(
                        f"layer {position} (Dense({layer.inputs}, {layer.outputs})) takes "
                        f"{layer.inputs} inputs but the layer before gives {specs[-1][1]}"
                    )
                specs.append((layer.inputs, layer.outputs, "identity"))
            elif isinstance(layer, _Activation):
                if not specs:
                    raise ConfigError(f"layer {position}: an activation must follow a Dense layer")
                if specs[-1][2] != "identity" or isinstance(layers[position - 1], _Activation):
                    raise ConfigError(f"layer {position}: two activations in a row")
                specs[-1] = (specs[-1][0], specs[-1][1], layer.name)
            else:
                raise ConfigError(
                    f"layer {position}: {layer!r} is not a veil layer "
                    "(use veil.Dense, veil.ReLU, veil.Sigmoid, veil.Arctan, veil.Softplus, veil.Identity)"
                )
        if not specs:
            raise ConfigError("the model has no Dense layer")
        return specs

    def layer_specs(self) -> List[Tuple[int, int, str]]:
        """``(inputs, outputs, activation name)`` for each dense layer."""
        return list(self._specs)

    @property
    def input_size(self) -> int:
        return self._specs[0][0]

    @property
    def output_size(self) -> int:
        return self._specs[-1][1]

    def count_params(self) -> int:
        """Trainable parameters: weights and biases of every dense layer."""
        return sum((i + 1) * o for i, o, _a in self._specs)

    def summary(self, file: Optional[TextIO] = None) -> None:
        """Print one row per dense layer (shape, activation, parameters) and the total."""
        out = sys.stdout if file is None else file
        rows = [(f"dense_{k}", f"{i} -> {o}", a, f"{(i + 1) * o:,}")
                for k, (i, o, a) in enumerate(self._specs)]
        header = ("layer", "inputs -> outputs", "activation", "params")
        widths = [max(len(r[c]) for r in rows + [header]) for c in range(4)]
        line = "  ".join("{:<%d}" % w for w in widths[:3]) + "  {:>%d}" % widths[3]
        rule = "-" * (sum(widths) + 6)
        print(line.format(*header), file=out)
        print(rule, file=out)
        for r in rows:
            print(line.format(*r), file=out)
        print(rule, file=out)
        print(f"total params: {self.count_params():,}", file=out)

    def __repr__(self) -> str:
        return "veil.Sequential([" + ", ".join(
            f"Dense({i}, {o}" + ("" if trains else ", trainable=False") + ")"
            + ("" if a == "identity" else f", {ACTIVATIONS[a]()!r}")
            for (i, o, a), trains in zip(self._specs, self._trainable)
        ) + "])"
