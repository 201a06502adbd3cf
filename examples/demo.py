"""Builds a small CoordGate U-Net from the layers and runs it on a synthetic image.

A stand-in for the full pipeline (pretrained model -> deblur -> int8 TFLite ->
report), which replaces it once training and export land.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from coordgate_keras.layers import CoordConv2D, CoordGate  # noqa: E402


def coordgate_unet(size=128, base_filters=16):
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(base_filters, 3, padding="same", activation="relu")(inputs)
    skip = CoordGate(encoding_layers=2)(x)
    x = keras.layers.MaxPooling2D()(skip)
    x = CoordConv2D(2 * base_filters, 3, padding="same", activation="relu")(x)
    x = CoordGate(encoding_layers=2)(x)
    x = keras.layers.UpSampling2D()(x)
    x = keras.layers.Conv2D(base_filters, 3, padding="same", activation="relu")(x)
    x = keras.layers.Concatenate()([x, skip])
    x = keras.layers.Conv2D(base_filters, 3, padding="same", activation="relu")(x)
    x = CoordGate(encoding_layers=2)(x)
    outputs = keras.layers.Add()([inputs, keras.layers.Conv2D(1, 1)(x)])
    return keras.Model(inputs, outputs, name="coordgate_unet_demo")


def main():
    model = coordgate_unet()
    rows, cols = np.mgrid[-1:1:128j, -1:1:128j]
    image = np.exp(-((rows - 0.3) ** 2 + (cols + 0.2) ** 2) / 0.05).astype("float32")
    output = model.predict(image[None, :, :, None], verbose=0)
    print(f"model: {model.name}")
    print(f"parameters: {model.count_params():,}")
    print(f"input shape: {(1,) + image.shape + (1,)}  output shape: {output.shape}")
    print(f"output finite: {bool(np.isfinite(output).all())}")


if __name__ == "__main__":
    main()
