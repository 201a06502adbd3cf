"""Training losses, computed in float32 (also under mixed precision)."""

import keras
from keras import ops

from coordgate_keras.training.metrics import ssim
from coordgate_keras.utils import argument_validation as av


@keras.saving.register_keras_serializable(package="coordgate_keras")
def mse_loss(y_true, y_pred):
    """Mean squared error per example."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    return ops.mean(
        ops.square(y_true - y_pred), axis=tuple(range(1, len(y_true.shape)))
    )


@keras.saving.register_keras_serializable(package="coordgate_keras")
def l1_loss(y_true, y_pred):
    """Mean absolute error per example."""
    y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    return ops.mean(ops.abs(y_true - y_pred), axis=tuple(range(1, len(y_true.shape))))


@keras.saving.register_keras_serializable(package="coordgate_keras")
def l1_ssim_loss(y_true, y_pred):
    """`L1 + (1 - SSIM)` per example, as MultiWienerNet's training loss."""
    return l1_loss(y_true, y_pred) + 1.0 - ssim(y_true, y_pred)


_LOSSES = {"mse": mse_loss, "l1": l1_loss, "l1_ssim": l1_ssim_loss}


def get_loss(name):
    """The loss function named `name` (`"mse"`, `"l1"` or `"l1_ssim"`)."""
    av.choice(name, "loss", tuple(_LOSSES))
    return _LOSSES[name]
