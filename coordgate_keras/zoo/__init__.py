"""Model zoo: U-Net family (plain, CoordConv, CoordGate), baselines and a registry.

Importing this package registers every model:

>>> from coordgate_keras.zoo import create_model, list_models
>>> list_models("coordgate_unet_d[12]")
['coordgate_unet_d1', 'coordgate_unet_d2']
>>> model = create_model("coordgate_unet_d2", input_shape=(64, 64, 1))
"""

# General layers that live in `coordgate_keras.layers`, re-exported here too.
from coordgate_keras.layers import (
    LocallyConnected1D,
    LocallyConnected2D,
    MultiWienerDeconvolution,
    gaussian_psfs,
)
from coordgate_keras.zoo._frame import frame_geometry, with_frame
from coordgate_keras.zoo._registry import (
    ModelInfo,
    create_model,
    list_models,
    load_weights,
    model_info,
    register_model,
    register_weights,
    weights_info,
)
from coordgate_keras.zoo._weights import WeightEntry, WeightsError
from coordgate_keras.zoo.cnn1d import build_cnn1d
from coordgate_keras.zoo.multi_wiener_net import build_multiwienernet
from coordgate_keras.zoo.receptive_field import receptive_field
from coordgate_keras.zoo.unet import PAPER_COORDGATE_OPTIONS, build_unet
from coordgate_keras.zoo.unet_presets import UNET_PRESETS, register_presets

register_presets()

__all__ = [
    "LocallyConnected1D",
    "LocallyConnected2D",
    "ModelInfo",
    "MultiWienerDeconvolution",
    "PAPER_COORDGATE_OPTIONS",
    "UNET_PRESETS",
    "WeightEntry",
    "WeightsError",
    "build_cnn1d",
    "build_multiwienernet",
    "build_unet",
    "create_model",
    "frame_geometry",
    "gaussian_psfs",
    "list_models",
    "load_weights",
    "model_info",
    "receptive_field",
    "register_model",
    "register_weights",
    "with_frame",
    "weights_info",
]
