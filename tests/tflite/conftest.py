"""Shared exports of the registry models (each converted once per session)."""

import keras
import pytest

# Small inputs and widths: conversion time, not the default size, is the point.
SIZE_2D = (1, 32, 32, 1)
SIZE_1D = (1, 64, 1)


def registry_overrides(name):
    """Builder overrides that keep a registry model small."""
    if "unet" in name or name == "multiwienernet":
        return {"base_filters": 8}
    return {}


def registry_shape(name):
    from coordgate_keras.zoo import model_info

    rank = len(model_info(name).reference_input_shape) - 1
    return SIZE_2D if rank == 2 else SIZE_1D


def build_registry_model(name, seed=0):
    from coordgate_keras.zoo import create_model

    # Before seeding: `model_info` builds a shape-only model (once per name).
    shape = registry_shape(name)
    keras.utils.set_random_seed(seed)
    return create_model(name, input_shape=shape[1:], **registry_overrides(name))


@pytest.fixture(scope="session")
def registry_model():
    """`registry_model(name)` -> (small seeded model, its export input shape)."""

    def build(name):
        return build_registry_model(name), registry_shape(name)

    return build


@pytest.fixture(scope="session")
def registry_export(tmp_path_factory):
    """`registry_export(name, quantization)` -> (model, path, report), cached."""
    from coordgate_keras.tflite import export_tflite

    cache = {}
    directory = tmp_path_factory.mktemp("registry")

    def export(name, quantization="none"):
        key = (name, quantization)
        if key not in cache:
            model = build_registry_model(name)
            path = directory / f"{name}_{quantization}.tflite"
            report = export_tflite(
                model, path, registry_shape(name), quantization=quantization
            )
            cache[key] = (model, path, report)
        return cache[key]

    return export


def _spatial_ops(path):
    """`(name, "full" | "small")` of each ADD and MUL of a `.tflite` file.

    Full-size: the output has the shape of a feature map (the input of a
    convolution); small: anything else, such as a row or column term, a
    coarse map or a scalar.
    """
    import collections

    from coordgate_keras.tflite import list_operators

    operators = list_operators(path)
    maps = {
        op.inputs[0].shape
        for op in operators
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")
    }
    counts = collections.Counter()
    for op in operators:
        if op.name in ("ADD", "MUL"):
            full = op.outputs[0].shape in maps
            counts[(op.name, "full" if full else "small")] += 1
    return counts


@pytest.fixture(scope="session")
def spatial_ops():
    """`spatial_ops(path)` -> Counter of `(ADD | MUL, "full" | "small")`."""
    return _spatial_ops
