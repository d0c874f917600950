"""ONNX export of a trained model (the optional ``onnx`` extra: ``pip install .[onnx]``)."""
from __future__ import annotations

import os
from typing import Union

import numpy as np

from veil._errors import ConfigError

_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "arctan": "Atan", "softplus": "Softplus"}


def export_onnx(source, path: Union[str, os.PathLike], opset: int = 17) -> str:
    """Write a model as an ONNX graph: input ``X`` (float32, n x inputs), output
    ``probabilities`` (the softmax for cross-entropy models, the last activation for
    MSE). The model's input standardization is part of the graph. The graph runs
    the float weights anywhere; it has none of veil's checks.

    Args:
        source: a model file path, a :class:`veil.SavedModel` or a :class:`veil.Trainer`.
        path: the ``.onnx`` file to write.
        opset: the ONNX opset to target.

    Returns:
        The path written.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install '.[onnx]' in veil's "
                          "source, or pip install onnx") from None
    from veil._inference import SavedModel, load_model
    from veil._trainer import Trainer

    if isinstance(source, Trainer):
        saved = SavedModel(source.export_weights(),
                           [a for _i, _o, a in source.model.layer_specs()], source.loss,
                           model=source.model if source.model.is_convolutional else None)
    elif isinstance(source, SavedModel):
        saved = source
    else:
        saved = load_model(source)
    if saved.model is not None:
        raise ConfigError("ONNX export holds dense models only; this model has convolutions")
    nodes, inits = [], []
    current = "X"

    def const(name, array):
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    if saved.mean is not None:
        nodes.append(helper.make_node("Sub", [current, const("mean", saved.mean)], ["centered"]))
        nodes.append(helper.make_node("Div", ["centered", const("scale", saved.scale)],
                                      ["standardized"]))
        current = "standardized"
    last = len(saved.weights) - 1
    for l, (w, act) in enumerate(zip(saved.weights, saved.activations)):
        z = f"z{l}"
        nodes.append(helper.make_node("Gemm", [current, const(f"W{l}", w[:-1]),
                                               const(f"b{l}", w[-1])], [z]))
        current = z
        if act != "identity":
            nodes.append(helper.make_node(_OPS[act], [current], [f"a{l}"]))
            current = f"a{l}"
        if l == last and saved.loss == "cross_entropy":
            nodes.append(helper.make_node("Softmax", [current], ["softmax"], axis=1))
            current = "softmax"
    nodes.append(helper.make_node("Identity", [current], ["probabilities"]))
    inputs, outputs = saved.weights[0].shape[0] - 1, saved.weights[-1].shape[1]
    graph = helper.make_graph(
        nodes, "veil_model",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["n", inputs])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", outputs])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="veil")
    onnx.checker.check_model(model)
    path = os.fspath(path)
    onnx.save(model, path)
    return path
