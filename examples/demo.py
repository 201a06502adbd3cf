"""The main job, small enough for a laptop CPU: simulate, train, deblur, report.

1. A Zernike (Seidel) PSF field that varies across the field of view.
2. On-the-fly (blurred, sharp) pairs of procedural microscopy scenes.
3. A short training run of `coordgate_unet_d2` and of the same U-Net without gates.
4. Deblurring of held-out images; PSNR of each model; a report image.

It stands in for the full pipeline (pretrained model -> deblur -> int8 TFLite ->
report), which replaces it once pretrained weights and export land. Usage:

    python examples/demo.py [--size 64 --epochs 4 --out out/demo]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# First, before Keras: the package import keeps TensorFlow's start-up lines quiet.
import coordgate_keras  # noqa: E402, F401, I001

# isort: split
import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from coordgate_keras import data  # noqa: E402
from coordgate_keras.zoo import create_model  # noqa: E402


def psnr(a, b):
    mse = float(np.mean((np.asarray(a) - np.asarray(b)) ** 2))
    return 10.0 * np.log10(1.0 / max(mse, 1e-12))


def train(name, train_ds, size, epochs, steps):
    keras.utils.set_random_seed(0)
    model = create_model(
        name, input_shape=(size, size, 1), base_filters=16, residual=True
    )
    # Plain TF graph on CPU: XLA measured ~2x slower there (it is the GPU path).
    model.compile(keras.optimizers.Adam(2e-3), loss="mse", jit_compile=False)
    start = time.perf_counter()
    model.fit(train_ds, epochs=epochs, steps_per_epoch=steps, shuffle=False, verbose=0)
    return model, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--out", default="out/demo")
    args = parser.parse_args()

    field = data.zernike_psf_field(grid_shape=(4, 4), kernel_size=15, coma=0.4)
    shape = (args.size, args.size)
    train_ds = data.deblur_dataset(field, image_shape=shape, batch_size=8, seed=0)
    blurred, sharp = next(
        iter(data.deblur_dataset(field, image_shape=shape, batch_size=8, seed=1))
    )
    blurred, sharp = blurred.numpy(), sharp.numpy()

    print(f"PSF field: {field.psfs.shape[:2]} grid of {field.psfs.shape[2]}px PSFs")
    print(f"blurred input     PSNR {psnr(blurred, sharp):6.2f} dB")
    outputs = {}
    for name in ("unet_d2", "coordgate_unet_d2"):
        model, seconds = train(name, train_ds, args.size, args.epochs, args.steps)
        outputs[name] = np.clip(model.predict(blurred, verbose=0), 0.0, 1.0)
        print(
            f"{name:18s}PSNR {psnr(outputs[name], sharp):6.2f} dB  "
            f"params {model.count_params():,}  trained {seconds:.0f}s "
            f"({args.epochs * args.steps} steps)"
        )

    os.makedirs(args.out, exist_ok=True)
    panels = [sharp[0], blurred[0]] + [outputs[n][0] for n in outputs]
    strip = np.concatenate([p[..., 0] for p in panels], axis=1)
    path = os.path.join(args.out, "report.png")
    Image.fromarray((strip * 255).round().astype("uint8")).save(path)
    print(f"report: {path} (sharp | blurred | unet_d2 | coordgate_unet_d2)")


if __name__ == "__main__":
    main()
