"""Op census: gates fold to one MUL each, coordinates to constants, no Flex ops."""

import collections

import keras
import numpy as np
import pytest

from coordgate_keras.layers import AddCoords, CoordConv2D, CoordGate
from coordgate_keras.tflite import export_tflite, list_operators, op_census
from coordgate_keras.tflite.inspection import DYNAMIC_SHAPE_OPS, non_builtin_ops

# What a folded gate or coordinate channel must never leave behind.
GATE_WORK = {
    "FULLY_CONNECTED",
    "BATCH_MATMUL",
    "LOGISTIC",
    "SIN",
    "COS",
    "RELU",
    "TANH",
    "SHAPE",
    "STRIDED_SLICE",
    "RESHAPE",
    "BROADCAST_TO",
    "PACK",
    "CONCATENATION",
}

GATES = [
    {"gate_activation": "sigmoid", "encoding_layers": 3, "encoding_units": 8},
    {"encoding": "fourier", "num_frequencies": 2, "hidden_activation": "tanh"},
    # (The default all-ones map would be optimised away as a multiply by one.)
    {"encoding": "map", "map_size": 3, "map_initializer": "random_uniform"},
]


def _gated_model(with_gates):
    inputs = keras.Input((None, None, 1))
    x = inputs
    for i, gate in enumerate(GATES):
        x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(x)
        if with_gates:
            x = CoordGate(name=f"gate{i}", **gate)(x)
        else:
            # The gate's own 1x1 projection, without the gate.
            x = keras.layers.Conv2D(4, 1)(x)
    x = keras.layers.Conv2D(1, 1)(x)
    return keras.Model(inputs, x)


def _assert_static(path):
    for op in list_operators(path):
        for tensor in op.inputs + op.outputs:
            if tensor is not None:
                assert -1 not in tensor.shape_signature, (op.name, tensor)


@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_each_gate_is_one_mul(tmp_path, quantization):
    shape = (1, 16, 16, 1)
    census = {}
    for with_gates in (True, False):
        path = tmp_path / f"gates_{with_gates}.tflite"
        export_tflite(
            _gated_model(with_gates),
            path,
            shape,
            quantization=quantization,
            gates="constant",
        )
        census[with_gates] = op_census(path)
        _assert_static(path)
    k = len(GATES)
    # With gates = without gates + exactly one MUL per gate; nothing else.
    assert census[True] - census[False] == collections.Counter({"MUL": k})
    assert census[False] - census[True] == collections.Counter()
    assert not GATE_WORK & set(census[True])
    # The MUL's other operand is the stored gate, shaped like the feature map.
    muls = [
        op for op in list_operators(tmp_path / "gates_True.tflite") if op.name == "MUL"
    ]
    for op in muls:
        (gate,) = [t for t in op.inputs if t.constant]
        assert gate.shape[-3:] == (16, 16, 4)


def test_coordinate_channels_are_a_constant_concatenation(tmp_path):
    inputs = keras.Input((None, None, 2))
    x = AddCoords(with_r=True)(inputs)
    x = CoordConv2D(4, 3, padding="same")(x)
    x = CoordConv2D(1, 3, padding="same")(x)
    path = tmp_path / "coords.tflite"
    export_tflite(keras.Model(inputs, x), path, (1, 12, 12, 2))
    assert op_census(path) == collections.Counter({"CONCATENATION": 3, "CONV_2D": 2})
    for op in list_operators(path):
        if op.name == "CONCATENATION":
            constants = [t for t in op.inputs if t.constant]
            assert len(constants) == 1 and constants[0].shape[:3] == (1, 12, 12)
    _assert_static(path)


def test_census_names_flex_ops(tmp_path):
    import tensorflow as tf

    # Converted here with Flex allowed, only to read it back: the exporter never does.
    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8), tf.float32)])
    def spectrum(x):
        return tf.math.real(tf.signal.fft2d(tf.complex(x, tf.zeros_like(x)))) * 2.0

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [spectrum.get_concrete_function()]
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS,
        tf.lite.OpsSet.SELECT_TF_OPS,
    ]
    content = converter.convert()
    census = op_census(content)
    assert census["FlexFFT2D"] == 1
    assert "FlexFFT2D" in non_builtin_ops(census)
    assert "MUL" not in non_builtin_ops(census)
    path = tmp_path / "flex.tflite"
    path.write_bytes(content)
    assert op_census(path) == census


# === Registry models (the float32 exports of test_tflite_registry.py) ===


def _separable_gate_ops(gates):
    # Once per model: SLICE, MUL by 0 and ADD 1 make a one from the input.
    # Per gate: the row term times the one (a small MUL), one ADD of the
    # column term (ReLU fused), one MUL by the gate, the 1x1 projection.
    return collections.Counter(
        {"SLICE": 1, "MUL": 1 + 2 * gates, "ADD": 1 + gates, "CONV_2D": gates}
    )


def _full_size_gate_ops(separable, whole):
    # At most one full-size ADD and one full-size MUL per gate.
    return collections.Counter(
        {
            ("ADD", "full"): separable,
            ("MUL", "full"): separable + whole,
            ("ADD", "small"): 1,
            ("MUL", "small"): 1 + separable,
        }
    )


def _coordconv_count(depth):
    # Encoder 2 per level, bottleneck 2, decoder 1 up-conv + 2 per level.
    return 2 * depth + 2 + 3 * depth


# Depths 2-5 take about 56 s on 2 cores and exercise the same code as 1: `make test-slow`.
@pytest.mark.parametrize(
    "depth", [1] + [pytest.param(d, marks=pytest.mark.slow) for d in (2, 3, 4, 5)]
)
def test_registry_unet_census(registry_export, spatial_ops, depth):
    plain = op_census(registry_export(f"unet_d{depth}")[1])
    gated_path = registry_export(f"coordgate_unet_d{depth}")[1]
    gated = op_census(gated_path)
    coordconv_path = registry_export(f"coordconv_unet_d{depth}")[1]
    coordconv = op_census(coordconv_path)

    # CG_UNet: a gate after each encoder block, before each up-sampling and
    # before the output: 2 * depth + 1 gates, each its 1x1 conv, the MUL by
    # the gate and the separable gate's tiny ops (test_small_gates.py).
    # Gates of 2 x 2 and below are stored whole (one MUL) instead.
    sizes = [32 >> i for i in range(depth)] + [32 >> (i + 1) for i in range(depth)]
    separable = sum(s > 2 for s in sizes + [32])
    whole = 2 * depth + 1 - separable
    expected = _separable_gate_ops(separable)
    expected.update({"MUL": whole, "CONV_2D": whole})
    assert gated - plain == expected
    assert plain - gated == collections.Counter()
    assert plain["MUL"] == 0 and plain["ADD"] == 0
    assert spatial_ops(gated_path) == _full_size_gate_ops(separable, whole)

    # CoordConv: one CONCATENATION of a constant per CoordConv2D, nothing else.
    extra = collections.Counter({"CONCATENATION": _coordconv_count(depth)})
    assert coordconv - plain == extra
    assert plain - coordconv == collections.Counter()
    concats = [
        op for op in list_operators(coordconv_path) if op.name == "CONCATENATION"
    ]
    assert (
        sum(any(t.constant for t in op.inputs) for op in concats)
        == extra["CONCATENATION"]
    )

    for census in (plain, gated, coordconv):
        assert not non_builtin_ops(census)
        assert not DYNAMIC_SHAPE_OPS & set(census)
        assert not {"LOGISTIC", "FULLY_CONNECTED", "BROADCAST_TO", "PACK"} & set(census)


def test_registry_int8_census(registry_export, spatial_ops):
    plain = op_census(registry_export("unet_d2", "int8")[1])
    gated_path = registry_export("coordgate_unet_d2", "int8")[1]
    gated = op_census(gated_path)
    assert gated - plain == _separable_gate_ops(5)
    assert spatial_ops(gated_path) == _full_size_gate_ops(5, 0)
    assert plain - gated == collections.Counter()
    for census in (plain, gated):
        # Full integer: no float fallbacks inside the graph.
        assert not {"DEQUANTIZE", "QUANTIZE"} & set(census)


def test_list_operators_reads_tensors(registry_export):
    _, path, _ = registry_export("coordgate_unet_d1")
    operators = list_operators(path)
    # The first convolution reads the model's input.
    conv = next(op for op in operators if op.name == "CONV_2D")
    assert conv.inputs[0].shape == (1, 32, 32, 1) and not conv.inputs[0].constant
    assert conv.inputs[1].constant and conv.inputs[1].dtype == "float32"
    assert np.prod(conv.outputs[0].shape) == 32 * 32 * 8
