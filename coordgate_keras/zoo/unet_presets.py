"""Published weights of the U-Net family, beside its builder (as keras-hub's presets).

Each tag names a `.weights.h5` file shipped in `coordgate_keras/zoo/weights/` with
a JSON sidecar (recipe, held-out metrics, versions, architecture). The SHA-256
written here is what the file must hash to; the builder arguments are what
`create_model(name, weights=tag)` builds with. The files were trained by
`coordgate-train --config coordgate_keras/training/recipes/<recipe>.yaml` (the
recipe is named after the model, `unet_d3_w16` for `unet_d3`/`zernike_256_w16`;
`benchmarks/published_weights.py` maps recipes to tags).
"""

from coordgate_keras.zoo import _weights

_ZERNIKE_256 = (
    "Simulated fluorescence microscopy, 256x256, static Zernike/Seidel PSF field "
    "(8x8 grid, 31 px PSFs), Poisson+Gaussian noise; residual output, input in [0, 1]."
)

# model -> tag -> {"sha256", "description", "builder_kwargs"}
UNET_PRESETS = {
    "coordgate_unet_d1": {
        "zernike_256": {
            "sha256": "03208b260ef92011a3f25906316014a97dbbe20c393644ca8f87a3c17a5ad546",  # noqa: E501
            "builder_kwargs": {"residual": True},
        },
    },
    "coordgate_unet_d2": {
        "zernike_256": {
            "sha256": "3b0abdeb188e768c8f6b7a47a8d61490763498ab956e2e454797e05ead437442",  # noqa: E501
            "builder_kwargs": {"residual": True},
        },
    },
    "unet_d2": {
        "zernike_256": {
            "sha256": "57d09e7ced1b55c5ac07f94aebc7fd073ed638ee9ea75c28ef999a81a15c6a0f",  # noqa: E501
            "builder_kwargs": {"residual": True},
        },
    },
    "coordconv_unet_d2": {
        "zernike_256": {
            "sha256": "82d1d9fb2c039e9cdc409b929dee366aaeaa0c5f28fc2e38c008bffc9c6abd76",  # noqa: E501
            "builder_kwargs": {"residual": True},
        },
    },
    "unet_d3": {
        # The deeper plain U-Net the package carries: base_filters=16 gives it
        # as many parameters as coordgate_unet_d1. Trained on 2 CPU cores
        # (recipe unet_d3_w16: TensorFlow, float32); the others on one H100.
        "zernike_256_w16": {
            "sha256": "3d785ebcd34b5df8d985491959ed97764a72866d7edf8222000c31b306556b37",  # noqa: E501
            "description": _ZERNIKE_256[:-1] + "; base_filters=16, trained on CPU.",
            "builder_kwargs": {"residual": True, "base_filters": 16},
        },
    },
}


def register_presets():
    """Registers every tag of `UNET_PRESETS` (called when `zoo` is imported)."""
    for model, tags in UNET_PRESETS.items():
        for tag, spec in tags.items():
            _weights.register(
                _weights.WeightEntry(
                    model=model,
                    tag=tag,
                    filename=_weights.weight_filename(model, tag),
                    sha256=spec["sha256"],
                    description=spec.get("description", _ZERNIKE_256),
                    builder_kwargs=dict(spec.get("builder_kwargs", {})),
                )
            )
