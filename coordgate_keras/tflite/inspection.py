"""What a `.tflite` file contains: its operators and their tensors.

Read from the flatbuffer with the schema shipped in `ai_edge_litert`, so no
interpreter (and no delegate) is involved and files with Flex ops can be read.
"""

import collections
import os

import numpy as np
from ai_edge_litert import schema_py_generated as schema

Tensor = collections.namedtuple(
    "Tensor", ["name", "shape", "shape_signature", "dtype", "constant"]
)
Tensor.__doc__ = """A tensor of a `.tflite` file.

`shape_signature` has -1 for dynamic sizes; `constant` is True when the tensor's
data is stored in the file (weights, folded constants).
"""

Operator = collections.namedtuple("Operator", ["name", "inputs", "outputs"])
Operator.__doc__ = """An operator: its name (`"CONV_2D"`, or the custom code such as
`"FlexFFT2D"`) and its input and output `Tensor`s (None for an omitted optional
input)."""

_BUILTIN_NAMES = {
    value: name
    for name, value in vars(schema.BuiltinOperator).items()
    if not name.startswith("_")
}
_TYPE_NAMES = {
    value: name.lower()
    for name, value in vars(schema.TensorType).items()
    if not name.startswith("_")
}

# Builtin operators that act on shapes rather than data: with a fixed batch and
# fixed spatial size none of them is needed.
DYNAMIC_SHAPE_OPS = frozenset({"SHAPE", "BROADCAST_ARGS", "RANGE", "WHERE"})


def _read_bytes(model):
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    with open(os.fspath(model), "rb") as f:
        return f.read()


def _operator_names(root):
    names = []
    for i in range(root.OperatorCodesLength()):
        code = root.OperatorCodes(i)
        # Codes above 127 live in `BuiltinCode`; older files use the deprecated field.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            names.append(code.CustomCode().decode())
        else:
            names.append(_BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}"))
    return names


def _tensor(root, subgraph, index):
    if index < 0:
        return None
    tensor = subgraph.Tensors(index)
    buffer = root.Buffers(tensor.Buffer())
    # Large models store data outside the flatbuffer (offset/size); small ones inline.
    constant = buffer is not None and (buffer.DataLength() > 0 or buffer.Offset() > 1)
    shape = tuple(int(n) for n in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
    signature = (
        tuple(int(n) for n in tensor.ShapeSignatureAsNumpy())
        if tensor.ShapeSignatureLength()
        else shape
    )
    return Tensor(
        name=tensor.Name().decode(),
        shape=shape,
        shape_signature=signature,
        dtype=_TYPE_NAMES.get(tensor.Type(), str(tensor.Type())),
        constant=bool(constant),
    )


def list_operators(model):
    """The operators of a `.tflite` model, in execution order, all subgraphs.

    Args:
        model: path of a `.tflite` file, or its bytes.

    Returns:
        A list of `Operator(name, inputs, outputs)`; the tensors are `Tensor`s.

    Example:

    >>> from coordgate_keras.tflite import list_operators
    >>> ops = list_operators("model.tflite")  # doctest: +SKIP
    >>> [op.name for op in ops][:2]  # doctest: +SKIP
    ['CONV_2D', 'CONV_2D']
    """
    root = schema.Model.GetRootAs(_read_bytes(model), 0)
    names = _operator_names(root)
    operators = []
    for g in range(root.SubgraphsLength()):
        subgraph = root.Subgraphs(g)
        for o in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(o)
            inputs = op.InputsAsNumpy() if op.InputsLength() else np.zeros(0, int)
            outputs = op.OutputsAsNumpy() if op.OutputsLength() else np.zeros(0, int)
            operators.append(
                Operator(
                    name=names[op.OpcodeIndex()],
                    inputs=tuple(_tensor(root, subgraph, int(i)) for i in inputs),
                    outputs=tuple(_tensor(root, subgraph, int(i)) for i in outputs),
                )
            )
    return operators


def op_census(model):
    """Counts the operators of a `.tflite` model by name.

    Builtin operators are named as in the TFLite schema (`"CONV_2D"`, `"MUL"`);
    custom operators by their custom code (Flex ops as `"FlexFFT2D"`).

    Args:
        model: path of a `.tflite` file, or its bytes.

    Returns:
        A `collections.Counter` mapping operator name to count.

    Example:

    >>> from coordgate_keras.tflite import op_census
    >>> op_census("model.tflite")["MUL"]  # doctest: +SKIP
    5
    """
    return collections.Counter(op.name for op in list_operators(model))


def non_builtin_ops(census):
    """The names in a census that are not builtin operators (Flex or custom)."""
    builtin = set(_BUILTIN_NAMES.values())
    return sorted(name for name in census if name not in builtin)
