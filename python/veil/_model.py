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
    enclave (docs/design.md §4.5).
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


def _positive_int(owner: str, name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{owner}.{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Conv2d:
    """A 2-D convolution with PyTorch's shapes: inputs (N, in_channels, H, W), a square
    ``kernel_size`` window, ``padding`` zeros on each side (docs/design.md §4.4). The
    device holds its kernel as a (kernel_size² · in_channels + 1) × out_channels matrix,
    bias row last, columns of a window in (channel, row, column) order."""

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "kernel_size", "stride"):
            object.__setattr__(self, name, _positive_int("Conv2d", name, getattr(self, name)))
        object.__setattr__(self, "padding", _positive_int("Conv2d", "padding", self.padding, 0))


@dataclass(frozen=True)
class MaxPool2d:
    """Max pooling over ``kernel_size`` × ``kernel_size`` windows, stride ``kernel_size``."""

    kernel_size: int
    code = _codes.POOL["max"]

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel_size",
                           _positive_int(type(self).__name__, "kernel_size", self.kernel_size, 2))


@dataclass(frozen=True)
class AvgPool2d(MaxPool2d):
    """Average pooling over ``kernel_size`` × ``kernel_size`` windows, stride ``kernel_size``."""

    code = _codes.POOL["avg"]


@dataclass(frozen=True)
class Flatten:
    """(N, C, H, W) to (N, C·H·W) in (channel, row, column) order, as PyTorch's."""


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
    """A stack of layers: Dense and Conv2d, each optionally followed by one activation
    and (a Conv2d) by one pooling layer; Flatten between the convolutions and the
    Dense layers. A model that starts with Conv2d needs ``input_shape=(C, H, W)``.

    Example:
        >>> model = Sequential([Dense(64, 128), ReLU(), Dense(128, 10)])
        >>> model.layer_specs()
        [(64, 128, 'relu'), (128, 10, 'identity')]
    """

    def __init__(self, layers: Iterable[object], input_shape: Optional[Sequence[int]] = None):
        self.layers: List[object] = list(layers)
        self.input_shape = None if input_shape is None else tuple(int(v) for v in input_shape)
        self._specs: List[Tuple[int, int, str]] = []
        self._geometry: List[Optional[dict]] = []
        self._parse()
        # One flag per weight layer (Dense or Conv2d); a Conv2d trains unless frozen here.
        self._trainable = [getattr(layer, "trainable", True) for layer in self.layers
                           if isinstance(layer, (Dense, Conv2d))]

    @property
    def trainable(self) -> List[bool]:
        """Whether each weight layer trains (False: frozen), in order."""
        return list(self._trainable)

    def freeze(self, upto: int) -> "Sequential":
        """Freeze the first ``upto`` weight layers (the rest stay as they are); returns the
        model. Private fine-tuning needs at least the first layer frozen."""
        if not isinstance(upto, numbers.Integral) or isinstance(upto, bool) or not (
                0 <= upto <= len(self._specs)):
            raise ConfigError(f"freeze(upto={upto!r}): give a number of weight layers in "
                              f"[0, {len(self._specs)}]")
        for k in range(int(upto)):
            self._trainable[k] = False
        return self

    def _parse(self) -> None:
        # The tensor (C, H, W) the next layer receives, or None once it is flat.
        tensor = self.input_shape
        if tensor is not None and (len(tensor) != 3 or min(tensor) < 1):
            raise ConfigError(f"input_shape must be (channels, height, width), got {tensor!r}")
        flat = tensor is None
        width: Optional[int] = None  # the flat width the next Dense layer receives
        last = None  # the previous veil layer object
        for position, layer in enumerate(self.layers):
            where = f"layer {position} ({layer!r})"
            if isinstance(layer, Dense):
                if not flat:
                    raise ConfigError(f"{where}: a Dense layer takes flat inputs; put "
                                      "veil.Flatten() after the convolutions")
                if width is not None and width != layer.inputs:
                    raise ConfigError(f"{where} takes {layer.inputs} inputs but the layer before "
                                      f"gives {width}")
                self._specs.append((layer.inputs, layer.outputs, "identity"))
                self._geometry.append(None)
                width = layer.outputs
            elif isinstance(layer, Conv2d):
                if tensor is None or flat:
                    raise ConfigError(f"{where}: a convolution needs an image input: give "
                                      "Sequential(..., input_shape=(C, H, W)) and put it before "
                                      "any Flatten or Dense layer")
                c, h, w = tensor
                if c != layer.in_channels:
                    raise ConfigError(f"{where}: in_channels={layer.in_channels} but its input "
                                      f"has {c} channels")
                k, st, p = layer.kernel_size, layer.stride, layer.padding
                if h + 2 * p < k or w + 2 * p < k:
                    raise ConfigError(f"{where}: a {k}x{k} kernel does not fit the padded "
                                      f"{h + 2 * p}x{w + 2 * p} input")
                out = ((h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1)
                self._specs.append((k * k * c, layer.out_channels, "identity"))
                self._geometry.append(dict(channels=c, height=h, width=w, kernel=k, stride=st,
                                           padding=p, pool=0, pool_size=0, out=out))
                tensor = (layer.out_channels,) + out
            elif isinstance(layer, MaxPool2d):  # AvgPool2d too
                g = self._geometry[-1] if self._geometry else None
                if g is None or flat or g["pool"]:
                    raise ConfigError(f"{where}: pooling follows a Conv2d (and its activation), "
                                      "once")
                k = layer.kernel_size
                if k > min(g["out"]):
                    raise ConfigError(f"{where}: a {k}x{k} window does not fit the "
                                      f"{g['out'][0]}x{g['out'][1]} output")
                g["pool"], g["pool_size"] = layer.code, k
                tensor = (tensor[0], g["out"][0] // k, g["out"][1] // k)
            elif isinstance(layer, Flatten):
                if flat:
                    raise ConfigError(f"{where}: the input is already flat")
                flat = True
                width = tensor[0] * tensor[1] * tensor[2]
            elif isinstance(layer, _Activation):
                if not self._specs or isinstance(last, (_Activation, Flatten)):
                    raise ConfigError(f"{where}: an activation must follow a Dense or Conv2d "
                                      "layer (or a max pooling after one)")
                if isinstance(last, AvgPool2d):
                    raise ConfigError(f"{where}: put the activation before AvgPool2d (the enclave "
                                      "pools a layer's activated output)")
                if self._specs[-1][2] != "identity":
                    raise ConfigError(f"layer {position}: two activations in a row")
                # After MaxPool2d it commutes: every activation is non-decreasing.
                self._specs[-1] = (self._specs[-1][0], self._specs[-1][1], layer.name)
            else:
                raise ConfigError(
                    f"layer {position}: {layer!r} is not a veil layer (use veil.Dense, "
                    "veil.Conv2d, veil.MaxPool2d, veil.AvgPool2d, veil.Flatten, veil.ReLU, "
                    "veil.Sigmoid, veil.Arctan, veil.Softplus, veil.Identity)"
                )
            last = layer
        if not self._specs:
            raise ConfigError("the model has no Dense or Conv2d layer")
        if self._geometry[-1] is not None:
            raise ConfigError("the last layer must be Dense (it gives the classes): add "
                              "veil.Flatten() and a veil.Dense layer")

    def layer_specs(self) -> List[Tuple[int, int, str]]:
        """``(inputs, outputs, activation name)`` per Dense or Conv2d layer; a Conv2d's
        inputs are kernel_size² · in_channels, the rows of its kernel matrix but one."""
        return list(self._specs)

    def wire_specs(self) -> List[Tuple[int, ...]]:
        """Each layer as the enclave takes it (veil_layer_spec_t of edl/veil.edl):
        (inputs, outputs, activation code) for a dense layer, then for a convolution
        (kind, channels, height, width, kernel, stride, padding, pool, pool_size)."""
        out: List[Tuple[int, ...]] = []
        for (i, o, a), g in zip(self._specs, self._geometry):
            spec: Tuple[int, ...] = (i, o, ACTIVATIONS[a].code)
            if g is not None:
                spec += (_codes.LAYER_KIND["conv2d"], g["channels"], g["height"], g["width"],
                         g["kernel"], g["stride"], g["padding"], g["pool"], g["pool_size"])
            out.append(spec)
        return out

    @property
    def is_convolutional(self) -> bool:
        return self._geometry[0] is not None

    @property
    def input_size(self) -> int:
        """Features per sample: C·H·W for a convolutional model."""
        if self.input_shape is not None:
            c, h, w = self.input_shape
            return c * h * w
        return self._specs[0][0]

    @property
    def output_size(self) -> int:
        return self._specs[-1][1]

    def positions(self) -> List[int]:
        """Output positions per sample of each layer (1 for Dense)."""
        return [1 if g is None else g["out"][0] * g["out"][1] for g in self._geometry]

    def count_params(self) -> int:
        """Trainable parameters: weights and biases of every Dense and Conv2d layer."""
        return sum((i + 1) * o for i, o, _a in self._specs)

    def summary(self, file: Optional[TextIO] = None) -> None:
        """Print one row per layer (shape, activation, parameters) and the total."""
        out = sys.stdout if file is None else file
        rows = []
        for k, ((i, o, a), g) in enumerate(zip(self._specs, self._geometry)):
            if g is None:
                rows.append((f"dense_{k}", f"{i} -> {o}", a, f"{(i + 1) * o:,}"))
            else:
                pool = "" if not g["pool"] else f", pool {g['pool_size']}"
                shape = (f"{g['channels']}x{g['height']}x{g['width']} -> "
                         f"{o}x{g['out'][0]}x{g['out'][1]}{pool}")
                rows.append((f"conv_{k}", shape, a, f"{(i + 1) * o:,}"))
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
        shape = "" if self.input_shape is None else f", input_shape={self.input_shape}"
        return "veil.Sequential([" + ", ".join(
            f"Dense({layer.inputs}, {layer.outputs}"
            + ("" if self._trainable[self._weight_index(layer)] else ", trainable=False") + ")"
            if isinstance(layer, Dense) else repr(layer)
            for layer in self.layers) + "]" + shape + ")"

    def _weight_index(self, layer: object) -> int:
        """Position of a Dense or Conv2d among the weight layers."""
        weights = [x for x in self.layers if isinstance(x, (Dense, Conv2d))]
        return next(k for k, x in enumerate(weights) if x is layer)


def from_wire(specs: Sequence[Sequence[int]],
              input_shape: Optional[Sequence[int]] = None) -> Sequential:
    """The Sequential whose wire_specs() are ``specs`` (checkpoints store those)."""
    names = {cls.code: name for name, cls in ACTIVATIONS.items()}
    pools = {MaxPool2d.code: MaxPool2d, AvgPool2d.code: AvgPool2d}
    layers: List[object] = []
    if input_shape is None and specs and len(specs[0]) > 3:
        input_shape = tuple(int(v) for v in specs[0][4:7])
    for k, spec in enumerate(specs):
        i, o, a = (int(v) for v in spec[:3])
        if len(spec) > 3 and int(spec[3]) == _codes.LAYER_KIND["conv2d"]:
            c, _h, _w, kern, stride, pad, pool, pool_size = (int(v) for v in spec[4:12])
            layers.append(Conv2d(c, o, kern, stride, pad))
        else:
            if k > 0 and len(specs[k - 1]) > 3 and int(specs[k - 1][3]) == _codes.LAYER_KIND["conv2d"]:
                layers.append(Flatten())
            layers.append(Dense(i, o))
            pool = 0
        if names.get(a, "identity") != "identity":
            layers.append(ACTIVATIONS[names[a]]())
        if pool:
            layers.append(pools[pool](pool_size))
    return Sequential(layers, input_shape=input_shape)
