"""A public-API version of Keras' `run_layer_test`."""

import json

import keras
import numpy as np


def _concrete(shape, batch=2):
    return tuple(
        batch if i == 0 else (7 if d is None else d) for i, d in enumerate(shape)
    )


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_shape,
    expected_output_shape,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=0,
    run_training_check=True,
    run_mixed_precision_check=True,
    seed=0,
):
    """Checks a layer the way Keras checks its own, through public APIs only.

    Runs, in order: config round-trip (through JSON), build and weight counts,
    symbolic call (shape and dtype), eager call (shape, finite values, agreement
    with `compute_output_shape`), one `fit` step with `jit_compile=True` that must
    change the weights and keep the loss finite, and a call under `mixed_float16`
    and `mixed_bfloat16` (output in the compute dtype, variables float32).

    Args:
        layer_cls: the layer class.
        init_kwargs: dict of constructor arguments.
        input_shape: tuple, the input shape including the batch dimension.
        expected_output_shape: tuple, the output shape for `input_shape`.
        expected_num_trainable_weights: int or None (not checked).
        expected_num_non_trainable_weights: int.
        run_training_check: bool.
        run_mixed_precision_check: bool.
        seed: int, seeds the random inputs.
    """
    rng = np.random.default_rng(seed)

    # === Config round-trip ===
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    restored = layer_cls.from_config(json.loads(json.dumps(config)))
    _assert_equal(restored.get_config(), config, "config round-trip")
    serialized = keras.saving.serialize_keras_object(layer)
    revived = keras.saving.deserialize_keras_object(json.loads(json.dumps(serialized)))
    _assert_equal(type(revived), layer_cls, "registered deserialization")

    # === Build ===
    layer = layer_cls(**init_kwargs)
    layer.build(input_shape)
    if expected_num_trainable_weights is not None:
        _assert_equal(
            len(layer.trainable_weights),
            expected_num_trainable_weights,
            "trainable weight count",
        )
    _assert_equal(
        len(layer.non_trainable_weights),
        expected_num_non_trainable_weights,
        "non-trainable weight count",
    )

    # === Symbolic call ===
    layer = layer_cls(**init_kwargs)
    symbolic = layer(keras.KerasTensor(input_shape))
    _assert_equal(tuple(symbolic.shape), tuple(expected_output_shape), "symbolic shape")
    _assert_equal(symbolic.dtype, layer.compute_dtype, "symbolic dtype")

    # === Eager call ===
    x = rng.standard_normal(_concrete(input_shape)).astype("float32")
    layer = layer_cls(**init_kwargs)
    y = keras.ops.convert_to_numpy(layer(x))
    expected = _concrete(expected_output_shape)
    expected = tuple(
        e if s is None else s for e, s in zip(y.shape, expected_output_shape)
    )
    _assert_equal(y.shape, expected, "eager shape")
    _assert_equal(
        tuple(layer.compute_output_shape(x.shape)), y.shape, "compute_output_shape"
    )
    if not np.all(np.isfinite(y)):
        raise AssertionError("eager call produced non-finite values")

    # === One XLA training step ===
    if run_training_check:
        layer = layer_cls(**init_kwargs)
        model = keras.Sequential([keras.Input(input_shape[1:]), layer])
        model.compile(
            optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=True
        )
        before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        target = rng.standard_normal(y.shape).astype("float32")
        history = model.fit(x, target, batch_size=x.shape[0], epochs=1, verbose=0)
        loss = history.history["loss"][-1]
        if not np.isfinite(loss):
            raise AssertionError(f"training step gave a non-finite loss: {loss}")
        after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        if before and all(np.array_equal(a, b) for a, b in zip(before, after)):
            raise AssertionError("training step did not change any weight")

    # === Mixed precision ===
    if run_mixed_precision_check:
        for policy in ("mixed_float16", "mixed_bfloat16"):
            layer = layer_cls(**init_kwargs, dtype=policy)
            y = layer(x)
            compute_dtype = keras.DTypePolicy(policy).compute_dtype
            _assert_equal(
                keras.backend.standardize_dtype(y.dtype), compute_dtype, policy
            )
            for weight in layer.weights:
                _assert_equal(
                    weight.dtype, "float32", f"{policy} variable {weight.path}"
                )
            # Cast before leaving the backend: NumPy cannot take TF bfloat16 directly.
            y = keras.ops.convert_to_numpy(keras.ops.cast(y, "float32"))
            if not np.all(np.isfinite(y)):
                raise AssertionError(f"{policy} call produced non-finite values")


def _assert_equal(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")
