"""Published weights of the U-Net family, beside its builder (as keras-hub's presets).

Each tag names a `.weights.h5` file shipped in `coordgate_keras/zoo/weights/` with
a JSON sidecar (recipe, held-out metrics, versions, architecture). The SHA-256
written here is what the file must hash to; the builder arguments are what
`create_model(name, weights=tag)` builds with. The files were trained by
`coordgate-train --config coordgate_keras/training/recipes/<model>.yaml`.
"""

from coordgate_keras.zoo import _weights

_ZERNIKE_256 = (
    "Simulated fluorescence microscopy, 256x256, static Zernike/Seidel PSF field "
    "(8x8 grid, 31 px PSFs), Poisson+Gaussian noise; residual output, input in [0, 1]."
)

# model -> tag -> {"sha256", "description", "builder_kwargs"}
UNET_PRESETS = {}


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
