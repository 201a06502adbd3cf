import keras
import pytest

from coordgate_keras.zoo import (
    ModelInfo,
    _registry,
    create_model,
    list_models,
    model_info,
    register_model,
    register_weights,
)

EXPECTED_NAMES = sorted(
    [f"unet_d{d}" for d in range(1, 6)]
    + [f"coordconv_unet_d{d}" for d in range(1, 6)]
    + [f"coordgate_unet_d{d}" for d in range(1, 6)]
    + ["multiwienernet"]
    + ["cnn1d", "coordconv_cnn1d", "coordgate_cnn1d", "locally_connected_cnn1d"]
)


def test_list_models_registers_every_name_on_import():
    assert list_models() == EXPECTED_NAMES


def test_list_models_pattern():
    assert list_models("coordgate_unet_*") == [
        f"coordgate_unet_d{d}" for d in range(1, 6)
    ]
    assert list_models("*_d3") == [
        "coordconv_unet_d3",
        "coordgate_unet_d3",
        "unet_d3",
    ]
    assert list_models("nothing*") == []


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match=r"Unknown model name: 'coordgate_unet_d7'"):
        create_model("coordgate_unet_d7")
    with pytest.raises(ValueError, match=r"Did you mean: .*coordgate_unet_d1"):
        create_model("coordgate_unet_d7")
    with pytest.raises(ValueError, match=r"Did you mean: .*coordgate_unet_d2"):
        model_info("cordgate_unet_d2")


def test_unknown_name_lists_the_registered_names():
    with pytest.raises(ValueError, match=r"'vgg16'. Registered models: cnn1d, ") as e:
        create_model("vgg16")
    assert "Did you mean" not in str(e.value)
    assert all(name in str(e.value) for name in EXPECTED_NAMES)


def test_model_info_fields():
    info = model_info("coordgate_unet_d3")
    assert isinstance(info, ModelInfo)
    assert info.family == "coordgate_unet"
    assert info.depth == 3
    assert info.reference_input_shape == (256, 256, 1)
    assert info.weights == ()
    assert info.description.startswith("CoordGate U-Net")
    assert model_info("multiwienernet").depth == 4
    assert model_info("cnn1d").reference_input_shape == (256, 1)


def test_model_info_num_params_matches_a_real_build():
    # unet_d1 at 256x256x1 is small enough to build for real.
    model = create_model("unet_d1", input_shape=(256, 256, 1))
    assert model_info("unet_d1").num_params == model.count_params()


def test_build_uninitialized_leaks_nothing():
    """Shape-only variables must not be initialised by a later stateless scope."""
    from keras.src.backend.common import global_state

    model = _registry.build_uninitialized("unet_d2")
    assert model.count_params() == model_info("unet_d2").num_params
    queued = global_state.get_global_attribute("uninitialized_variables") or []
    assert not any(v is w for v in queued for w in model.weights)
    # A later symbolic call (which opens and closes a stateless scope) must not
    # give them values.
    keras.layers.Dense(2)(keras.Input((3,)))
    assert model.weights[0]._value is None


def test_create_model_passes_input_shape_and_overrides():
    model = create_model("unet_d1", input_shape=(16, 24, 3), base_filters=4)
    assert model.input_shape == (None, 16, 24, 3)
    assert model.output_shape == (None, 16, 24, 3)
    assert model.name == "unet_d1"
    assert model.get_layer("unet_d1_down0_conv0").filters == 4
    renamed = create_model("unet_d1", base_filters=4, name="mine")
    assert renamed.get_layer("mine_down0_conv0").filters == 4


def test_register_model_rejects_duplicates_and_unknown_depth():
    with pytest.raises(ValueError, match="already registered"):

        @register_model
        def unet_d1(**kwargs):  # noqa: F811
            """Duplicate."""

    with pytest.raises(ValueError, match="Cannot infer the depth of model `tiny`"):

        @register_model
        def tiny(**kwargs):
            """No depth suffix."""

    assert "tiny" not in list_models()


def test_register_weights_needs_a_registered_model():
    with pytest.raises(ValueError, match="Unknown model name: 'nope'"):
        register_weights("nope", "tag", "file:///x", "0" * 64)


def test_list_models_pattern_must_be_a_string():
    with pytest.raises(ValueError) as info:
        list_models(123)
    assert str(info.value) == (
        "Invalid value for argument `pattern`. Expected a string. Received: pattern=123"
    )
