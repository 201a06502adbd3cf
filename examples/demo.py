"""The main job from a source checkout: `python examples/demo.py [options]`.

The same as `coordgate-keras demo` (and `make demo`): loads the pretrained
`unet_d2` and `coordgate_unet_d2`, simulates held-out 256x256 images with the PSF
field the weights were trained for, deblurs them, exports the CoordGate model to
int8 TFLite, verifies and times it, and writes `out/demo/report.png` and
`report.json`. `--help` lists the options (`--finetune STEPS`, `--from-scratch`,
`--images DIR`, `--psf FIELD.npz`, ...). The pipeline itself is
`coordgate_keras.demo.run_demo`.
"""

import sys

import coordgate_keras  # noqa: F401  (first: keeps TensorFlow's start-up lines quiet)
from coordgate_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
