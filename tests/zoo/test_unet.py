import keras
import numpy as np
import pytest

from coordgate_keras.layers import CoordConv2D, CoordGate
from coordgate_keras.zoo import PAPER_COORDGATE_OPTIONS, build_unet, create_model
from coordgate_keras.zoo._registry import build_uninitialized

# === Independent parameter counts ===


def conv_params(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def unet_params(
    depth,
    base,
    cin=1,
    cout=1,
    convs=2,
    norm=None,
    upsampling="upsample",
    coord=0,
):
    """Parameter count of build_unet by hand; `coord` extra input channels per 3x3 conv."""
    f = [base * 2**i for i in range(depth + 1)]
    per_norm = {None: 0, "batch": 4, "group": 2}[norm]

    def block(c_in, c_out):
        total = 0
        for j in range(convs):
            total += conv_params(
                3, (c_in if j == 0 else c_out) + coord, c_out, norm is None
            )
            total += per_norm * c_out
        return total

    total = block(cin, f[0])
    for i in range(1, depth + 1):
        total += block(f[i - 1], f[i])
    for i in range(depth):
        if upsampling == "upsample":
            total += conv_params(3, f[i + 1] + coord, f[i])
        else:
            total += conv_params(2, f[i + 1], f[i])
        total += block(2 * f[i], f[i])
    return total + conv_params(1, f[0], cout)


def gate_params(channels, layers=3, units=64):
    """The paper's CoordGate: Dense 2->units->...->channels, then a 1x1 conv."""
    total = 2 * units + units + (layers - 2) * (units * units + units)
    total += units * channels + channels
    return total + conv_params(1, channels, channels)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_default_parameter_counts_match_hand_counts(depth):
    plain = build_uninitialized(f"unet_d{depth}").count_params()
    assert plain == unet_params(depth, 64)
    coordconv = build_uninitialized(f"coordconv_unet_d{depth}").count_params()
    assert coordconv == unet_params(depth, 64, coord=2)
    f = [64 * 2**i for i in range(depth + 1)]
    gates = [f[i] for i in range(depth)] + [f[i + 1] for i in range(depth)] + [f[0]]
    coordgate = build_uninitialized(f"coordgate_unet_d{depth}").count_params()
    assert coordgate == plain + sum(gate_params(c) for c in gates)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_coordgate_unet_without_gates_is_the_plain_unet(depth):
    gated = build_uninitialized(f"coordgate_unet_d{depth}", spatial=None)
    plain = build_uninitialized(f"unet_d{depth}")
    assert gated.count_params() == plain.count_params()
    assert [layer.name for layer in gated.layers] == [
        layer.name.replace("unet_d", "coordgate_unet_d", 1) for layer in plain.layers
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(normalization="batch"),
        dict(normalization="group", norm_groups=4),
        dict(upsampling="transpose"),
        dict(convs_per_block=3, in_channels=3, out_channels=2),
    ],
)
def test_options_parameter_counts(kwargs):
    model = build_unet(depth=2, base_filters=8, **kwargs)
    expected = unet_params(
        2,
        8,
        cin=kwargs.get("in_channels", 1),
        cout=kwargs.get("out_channels", kwargs.get("in_channels", 1)),
        convs=kwargs.get("convs_per_block", 2),
        norm=kwargs.get("normalization"),
        upsampling=kwargs.get("upsampling", "upsample"),
    )
    assert model.count_params() == expected
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, kwargs.get("in_channels", 1)))
    y = keras.ops.convert_to_numpy(model(x.astype("float32")))
    assert np.all(np.isfinite(y))


# === Placement ===


def test_coordgate_placement_follows_cg_unet():
    depth = 3
    model = build_unet((32, 32, 1), depth=depth, base_filters=4, spatial="coordgate")
    gates = [layer for layer in model.layers if isinstance(layer, CoordGate)]
    assert [g.name for g in gates] == (
        [f"unet_down{i}_gate" for i in range(depth)]
        + [f"unet_up{i}_gate" for i in reversed(range(depth))]
        + ["unet_out_gate"]
    )
    for i in range(depth):
        gate = model.get_layer(f"unet_down{i}_gate")
        # After the encoder block, before the skip is taken and before pooling.
        assert gate.input is model.get_layer(f"unet_down{i}_act1").output
        concat = model.get_layer(f"unet_up{i}_concat")
        assert concat.input[0] is gate.output
        assert model.get_layer(f"unet_down{i}_pool").input is gate.output
        # Before each up-sampling.
        up_gate = model.get_layer(f"unet_up{i}_gate")
        assert model.get_layer(f"unet_up{i}_upsample").input is up_gate.output
    # Before the output convolution.
    assert (
        model.get_layer("unet_out_conv").input
        is model.get_layer("unet_out_gate").output
    )
    for gate in gates:
        for key, value in PAPER_COORDGATE_OPTIONS.items():
            assert getattr(gate, key) == value


def test_coordgate_options_pass_through():
    model = build_unet(
        (16, 16, 1),
        depth=1,
        base_filters=4,
        spatial="coordgate",
        coordgate_options={"encoding": "fourier", "gate_activation": "sigmoid"},
    )
    gate = model.get_layer("unet_out_gate")
    assert gate.encoding == "fourier"
    assert gate.encoding_layers == PAPER_COORDGATE_OPTIONS["encoding_layers"]
    assert gate.get_config()["gate_activation"] == "sigmoid"


def test_coordconv_replaces_every_3x3_convolution():
    model = build_unet((32, 32, 1), depth=2, base_filters=4, spatial="coordconv")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    three = [c for c in convs if c.kernel_size == (3, 3)]
    assert len(three) == 2 * 2 + 2 + 2 * (2 + 1)  # blocks + bottleneck + decoder
    assert all(isinstance(c, CoordConv2D) for c in three)
    assert not isinstance(model.get_layer("unet_out_conv"), CoordConv2D)


def test_layer_names_are_deterministic():
    names = [layer.name for layer in build_unet(depth=1, base_filters=4).layers]
    assert names == [
        "unet_input",
        "unet_size_check",  # Only with None sizes: names the valid ones.
        "unet_down0_conv0",
        "unet_down0_act0",
        "unet_down0_conv1",
        "unet_down0_act1",
        "unet_down0_pool",
        "unet_bottleneck_conv0",
        "unet_bottleneck_act0",
        "unet_bottleneck_conv1",
        "unet_bottleneck_act1",
        "unet_up0_upsample",
        "unet_up0_upconv",
        "unet_up0_concat",
        "unet_up0_conv0",
        "unet_up0_act0",
        "unet_up0_conv1",
        "unet_up0_act1",
        "unet_out_conv",
    ]


# === Shapes ===


@pytest.mark.parametrize("name", ["unet_d2", "coordconv_unet_d2", "coordgate_unet_d2"])
def test_none_spatial_sizes_run_at_several_sizes(name):
    model = create_model(name, input_shape=(None, None, 2), base_filters=4)
    assert model.input_shape == (None, None, None, 2)
    for shape in [(1, 16, 16, 2), (2, 32, 12, 2)]:
        x = np.random.default_rng(0).uniform(size=shape).astype("float32")
        y = keras.ops.convert_to_numpy(model(x))
        assert y.shape == shape
        assert np.all(np.isfinite(y))


def test_residual_predicts_a_correction():
    model = build_unet((16, 16, 2), depth=1, base_filters=4, residual=True)
    out_conv = model.get_layer("unet_out_conv")
    out_conv.set_weights([np.zeros_like(w) for w in out_conv.get_weights()])
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 2)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), x)


@pytest.mark.parametrize("spatial", [None, "coordconv", "coordgate"])
def test_zero_output_initializer_starts_at_the_identity(spatial):
    model = build_unet(
        (16, 16, 1),
        depth=1,
        base_filters=4,
        residual=True,
        spatial=spatial,
        output_initializer="zeros",
    )
    x = np.random.default_rng(0).uniform(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), x)
    # Only the output convolution changes: the default one is not zero.
    default = build_unet((16, 16, 1), depth=1, base_filters=4, residual=True)
    kernel = default.get_layer("unet_out_conv").get_weights()[0]
    assert np.abs(kernel).max() > 0


def test_zero_output_initializer_keeps_the_seeded_body():
    # Same seed: only the output kernel differs, so a zero-output ablation starts
    # from its base run's body (and seeded models keep their weights).
    models = []
    for init in ("glorot_uniform", "zeros"):
        keras.utils.set_random_seed(0)
        models.append(
            build_unet((16, 16, 1), depth=1, base_filters=4, output_initializer=init)
        )
    default, zero = models
    for layer in default.layers:
        if layer.name == "unet_out_conv":
            continue
        for a, b in zip(layer.get_weights(), zero.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_output_activation_and_channels():
    model = build_unet(
        (16, 16, 3),
        depth=1,
        base_filters=4,
        out_channels=5,
        output_activation="sigmoid",
    )
    x = np.random.default_rng(0).normal(size=(1, 16, 16, 3)).astype("float32")
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape == (1, 16, 16, 5)
    assert np.all((y > 0) & (y < 1))


# === Errors ===


def test_wrong_input_size_names_the_sizes_and_the_nearest_valid_ones():
    with pytest.raises(
        ValueError,
        match=(
            r"Invalid value for argument `input_shape`. Expected height and width "
            r"divisible by 2\*\*depth = 16 \(depth=4\), or None; nearest valid sizes: "
            r"250 -> 240 or 256; 100 -> 96 or 112. "
            r"Received: input_shape=\(250, 100, 1\)"
        ),
    ):
        create_model("unet_d4", input_shape=(250, 100, 1))
    with pytest.raises(ValueError, match=r"nearest valid sizes: 20 -> 32\."):
        create_model("coordgate_unet_d5", input_shape=(None, 20, 1))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(depth=0), "`depth`. Expected a positive integer. Received: depth=0"),
        (dict(depth=2.0), "`depth`. Expected a positive integer. Received: depth=2.0"),
        (
            dict(base_filters=0),
            "`base_filters`. Expected a positive integer. Received: base_filters=0",
        ),
        (
            dict(convs_per_block=0),
            "`convs_per_block`. Expected a positive integer. Received: convs_per_block=0",
        ),
        (
            dict(normalization="layer"),
            "`normalization`. Expected one of None, 'batch', 'group'. "
            "Received: normalization='layer'",
        ),
        (
            dict(normalization="group", base_filters=4, norm_groups=8),
            "`norm_groups`. Expected a divisor of `base_filters` \\(4\\). "
            "Received: norm_groups=8",
        ),
        (
            dict(upsampling="bilinear"),
            "`upsampling`. Expected one of 'upsample', 'transpose'. "
            "Received: upsampling='bilinear'",
        ),
        (
            dict(spatial="coordgates"),
            "`spatial`. Expected one of None, 'coordconv', 'coordgate'. "
            "Received: spatial='coordgates'",
        ),
        (
            dict(coordgate_options={"encoding_layers": 2}),
            "`coordgate_options`. Expected None unless spatial='coordgate' "
            "\\(spatial=None\\)",
        ),
        (
            dict(spatial="coordgate", coordgate_options={"filters": 3}),
            "`coordgate_options`. Expected a dict of `CoordGate` keyword arguments "
            "other than `filters` and `name`",
        ),
        (
            dict(out_channels=0),
            "`out_channels`. Expected a positive integer or None. Received: out_channels=0",
        ),
        (
            dict(residual=True, out_channels=2),
            "`out_channels`. Expected the input channel count \\(1\\) when "
            "residual=True. Received: out_channels=2",
        ),
        (dict(residual=1), "`residual`. Expected a boolean. Received: residual=1"),
        (
            dict(input_shape=(32, 32)),
            "`input_shape`. Expected a tuple of 3 positive integers or None "
            "\\(height, width, channels\\) without the batch axis. Received: input_shape=\\(32, 32\\)",
        ),
        (
            dict(input_shape=(32, 32, None)),
            "`input_shape`. Expected a known number of channels. "
            "Received: input_shape=\\(32, 32, None\\)",
        ),
        (
            dict(input_shape=(32, 32, 1), in_channels=3),
            "`in_channels`. Expected the channel count of `input_shape` \\(1\\) or "
            "None. Received: in_channels=3",
        ),
        (
            dict(in_channels=0),
            "`in_channels`. Expected a positive integer or None. Received: in_channels=0",
        ),
        (
            dict(output_initializer="nope"),
            "`output_initializer`. Expected a Keras initializer or its name, e.g. "
            "'zeros'. Received: output_initializer='nope'",
        ),
    ],
)
def test_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match="Invalid value for argument " + message):
        build_unet(**{"depth": 2, "base_filters": 8, **kwargs})


def test_any_size_unet_called_at_a_wrong_size_names_the_valid_ones():
    model = create_model("unet_d2", base_filters=4)
    assert model.get_layer("unet_d2_size_check").multiple == 4
    with pytest.raises(ValueError) as info:
        model(np.zeros((1, 50, 50, 1), "float32"))
    assert (
        "Invalid input shape for `unet_d2_size_check`. Expected spatial sizes "
        "divisible by 4 (2**depth for depth=2); nearest valid sizes: 50 -> 48 or 52. "
        "Received: input_shape=(1, 50, 50, 1)"
    ) in str(info.value)
    assert model(np.zeros((1, 52, 48, 1), "float32")).shape == (1, 52, 48, 1)
    # Last: on JAX, Keras leaves a model whose `predict` raised without weights.
    with pytest.raises(ValueError, match=r"nearest valid sizes: 50 -> 48 or 52"):
        model.predict(np.zeros((1, 50, 48, 1), "float32"), verbose=0)


def test_static_size_unet_has_no_size_check():
    model = create_model("unet_d2", input_shape=(32, 32, 1), base_filters=4)
    assert "unet_d2_size_check" not in [layer.name for layer in model.layers]


def test_numpy_integer_arguments():
    model = create_model(
        "coordgate_unet_d2",
        input_shape=(np.int64(32), np.int64(32), np.int64(1)),
        base_filters=np.int64(4),
        depth=np.int64(2),
    )
    assert model.input_shape == (None, 32, 32, 1)
    assert model.get_layer("coordgate_unet_d2_down0_conv0").filters == 4
    model.get_config()  # Every value a plain Python type.
