"""Training: `TrainConfig`, `train`, `evaluate`, metrics, the device simulator.

>>> from coordgate_keras.training import TrainConfig, train
>>> cfg = TrainConfig(steps=100).override(["model_kwargs.base_filters=16"])
>>> metrics = train(cfg, "runs/cg_d2")  # doctest: +SKIP

Nothing here imports TensorFlow on the JAX backend.
"""

from coordgate_keras.training._data import noise_model, psf_field
from coordgate_keras.training._workdir import WorkdirLockedError
from coordgate_keras.training.config import (
    TrainConfig,
    list_recipes,
    load_config,
)
from coordgate_keras.training.device_simulator import DeviceSimulator
from coordgate_keras.training.losses import get_loss
from coordgate_keras.training.metrics import psnr, ssim
from coordgate_keras.training.publish import publish_weights
from coordgate_keras.training.train import (
    builder_kwargs,
    evaluate,
    format_metrics,
    heldout_data,
    load_trained,
    train,
)

__all__ = [
    "DeviceSimulator",
    "TrainConfig",
    "WorkdirLockedError",
    "builder_kwargs",
    "evaluate",
    "format_metrics",
    "get_loss",
    "heldout_data",
    "list_recipes",
    "load_config",
    "load_trained",
    "noise_model",
    "psf_field",
    "publish_weights",
    "psnr",
    "ssim",
    "train",
]
