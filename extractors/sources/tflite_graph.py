"""Read a TensorFlow Lite flatbuffer without TensorFlow: operators, tensor shapes and (float16) weights.

Uses the pure-Python ``tflite`` package (``pip install 'rsa-bridge[blazeface]'``), which parses the
flatbuffer schema. :func:`read_graph` returns a :class:`TFLiteGraph`: the operators in execution order
(name, input and output tensor indices, padding / stride / fused activation of convolutions and
pools) and every tensor's name, shape and type. :meth:`TFLiteGraph.constant` returns a weight as a
float32 NumPy array, following a ``DEQUANTIZE`` operator back to its float16 buffer when the weight
is stored that way (MediaPipe's models are).

Layouts (TFLite, channels last): input (1, H, W, C); ``CONV_2D`` kernel (O, kH, kW, I);
``DEPTHWISE_CONV_2D`` kernel (1, kH, kW, C * multiplier); bias (O,).

Example::

    >>> graph = read_graph("face_detection_short_range.tflite")   # doctest: +SKIP
    >>> [op.kind for op in graph.operators][:3]                     # doctest: +SKIP
    ['DEQUANTIZE', 'DEQUANTIZE', 'CONV_2D']
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rsa_bridge.errors import RSABridgeError

#: TFLite TensorType code -> NumPy dtype (the types a float model uses)
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64, 3: np.uint8, 9: np.int8}
#: TFLite Padding enum -> name
PADDING = {0: "SAME", 1: "VALID"}
#: TFLite ActivationFunctionType -> name
ACTIVATION = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH"}


@dataclass(frozen=True)
class Tensor:
    """One TFLite tensor: ``index``, ``name``, ``shape`` (tuple of ints), ``dtype`` and ``buffer`` index."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    buffer: int


@dataclass(frozen=True)
class Operator:
    """One operator: ``kind`` (``CONV_2D`` ...), input and output tensor indices and its options.

    ``options`` holds ``padding`` ("SAME"/"VALID"), ``stride`` (h, w), ``activation`` and, for pools,
    ``filter`` (h, w); empty for operators without those options.
    """

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass
class TFLiteGraph:
    """The first subgraph of a ``.tflite`` file: tensors, operators in order, graph inputs and outputs."""

    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    _buffers: list[bytes] = field(repr=False, default_factory=list)

    def by_name(self, name: str) -> Tensor:
        """The tensor called ``name``; KeyError listing a few names otherwise."""
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor {name!r} in the graph (e.g. {[t.name for t in self.tensors[:5]]})")

    def producer(self, index: int) -> Operator | None:
        """The operator that writes tensor ``index`` (None for constants and graph inputs)."""
        for op in self.operators:
            if index in op.outputs:
                return op
        return None

    def constant(self, index: int) -> np.ndarray:
        """Tensor ``index`` as float32: its own buffer, or the float16 buffer its DEQUANTIZE op reads."""
        tensor = self.tensors[index]
        raw = self._buffers[tensor.buffer] if tensor.buffer < len(self._buffers) else b""
        if not raw:
            op = self.producer(index)
            if op is None or op.kind != "DEQUANTIZE":
                raise ValueError(f"tensor {tensor.name!r} has no data and is not a DEQUANTIZE output")
            return self.constant(op.inputs[0])
        values = np.frombuffer(raw, dtype=tensor.dtype).reshape(tensor.shape)
        return values.astype(np.float32)


def _options(tflite, op, kind: str) -> dict:
    classes = {"CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
               "MAX_POOL_2D": tflite.Pool2DOptions, "AVERAGE_POOL_2D": tflite.Pool2DOptions}
    if kind not in classes:
        return {}
    table = op.BuiltinOptions()
    opts = classes[kind]()
    opts.Init(table.Bytes, table.Pos)
    out = {"padding": PADDING.get(opts.Padding(), str(opts.Padding())),
           "stride": (int(opts.StrideH()), int(opts.StrideW())),
           "activation": ACTIVATION.get(opts.FusedActivationFunction(), str(opts.FusedActivationFunction()))}
    if kind.endswith("POOL_2D"):
        out["filter"] = (int(opts.FilterHeight()), int(opts.FilterWidth()))
    if kind == "DEPTHWISE_CONV_2D":
        out["depth_multiplier"] = int(opts.DepthMultiplier())
    return out


def read_graph(path: str | Path) -> TFLiteGraph:
    """Parse a ``.tflite`` file's first subgraph.

    Raises:
        RSABridgeError: the ``tflite`` package is missing, or the file is not a TFLite flatbuffer.
    """
    try:
        import tflite
    except ImportError:
        raise RSABridgeError("reading a .tflite file needs the tflite package; install it with "
                             "pip install 'rsa-bridge[blazeface]'") from None
    data = Path(path).read_bytes()
    if data[4:8] != b"TFL3":
        raise RSABridgeError(f"{str(path)!r} is not a TensorFlow Lite file (no TFL3 identifier)")
    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    buffers = [model.Buffers(i).DataAsNumpy().tobytes() if model.Buffers(i).DataLength() else b""
               for i in range(model.BuffersLength())]
    tensors = []
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        tensors.append(Tensor(i, t.Name().decode(), shape, _DTYPES.get(t.Type(), np.float32), int(t.Buffer())))
    operators = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "UNKNOWN")
        operators.append(Operator(kind, tuple(int(i) for i in op.InputsAsNumpy()),
                                  tuple(int(i) for i in op.OutputsAsNumpy()), _options(tflite, op, kind)))
    return TFLiteGraph(tensors, operators, tuple(int(i) for i in graph.InputsAsNumpy()),
                       tuple(int(i) for i in graph.OutputsAsNumpy()), buffers)
