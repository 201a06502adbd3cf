"""One interface over Keras, LiteRT and ONNX Runtime models (machinery).

A runner knows its model's image input `(h, w, c)` (None for a free size),
whether it takes an `origin` (a frame model: then `frame_shape`), the grid its
tiles must sit on (`alignment`) and, when it can be known, the receptive-field
`margin`; `run(images, origins)` maps a float32 batch to float32 outputs.
The runtimes are imported when a runner of theirs is opened.
"""

import json
import os

import numpy as np

from coordgate_keras.utils import argument_validation as av
from coordgate_keras.zoo.receptive_field import receptive_field

_SUFFIXES = (".keras", ".tflite", ".onnx")


class _Runner:
    kind = None
    name = None
    image_shape = None  # (h, w, c); h, w None when free
    frame_shape = None  # (H, W) for a frame model, else None
    alignment = 1
    margin = None
    batch = None  # fixed batch size of an exported file, else None

    @property
    def takes_origin(self):
        return self._origin is not None

    def run(self, images, origins=None):
        """float32 outputs of `images` `(n, h, w, c)`, in chunks of the file's
        batch when it has a fixed one."""
        images = np.asarray(images, np.float32)
        if origins is not None:
            origins = np.asarray(origins, np.int32)
        if self.batch is None or images.shape[0] == self.batch:
            return self._run(images, origins)
        outputs = []
        for start in range(0, images.shape[0], self.batch):
            chunk = images[start : start + self.batch]
            count = chunk.shape[0]
            pad = self.batch - count
            chunk_origins = None
            if origins is not None:
                chunk_origins = origins[start : start + self.batch]
                chunk_origins = np.concatenate(
                    [chunk_origins, np.repeat(chunk_origins[-1:], pad, axis=0)]
                )
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            outputs.append(self._run(chunk, chunk_origins)[:count])
        return np.concatenate(outputs)


class _KerasRunner(_Runner):
    kind = "keras"

    def __init__(self, model, threads=None):
        import keras

        _set_tensorflow_threads(threads)
        self.model = model
        self.name = model.name
        inputs = model.inputs
        if len(inputs) not in (1, 2) or len(model.outputs) != 1:
            raise av.invalid_value(
                model.name,
                "model",
                "a model with one image input (or an image and an `origin`) and "
                "one output",
                f"model {model.name!r} with {len(inputs)} inputs and "
                f"{len(model.outputs)} outputs",
            )
        images = [t for t in inputs if len(t.shape) == 4]
        if len(images) != 1:
            raise av.invalid_value(
                model.name,
                "model",
                "a model whose image input is 4D (batch, height, width, channels)",
            )
        self._image = inputs.index(images[0])
        self._origin = None
        self.image_shape = tuple(images[0].shape[1:])
        if len(inputs) == 2:
            self._origin = 1 - self._image
            from coordgate_keras import zoo

            geometry = zoo.frame_geometry(model)
            if geometry is None:
                raise av.invalid_value(
                    model.name,
                    "model",
                    "a one-input model or a frame model "
                    "(`coordgate_keras.zoo.with_frame`)",
                    f"model {model.name!r} with two inputs and no frame",
                )
            self.frame_shape = tuple(geometry["frame_shape"])
            self.alignment = int(geometry["alignment"])
        self._receptive_field = None
        self._keras = keras

    @property
    def margin(self):
        if self._receptive_field is None:
            self._receptive_field = receptive_field(self.model)
        return self._receptive_field["margin"]

    def _run(self, images, origins):
        feed = [None, None] if origins is not None else [None]
        feed[self._image] = images
        if origins is not None:
            feed[self._origin] = origins
        return np.asarray(
            self.model.predict_on_batch(feed if len(feed) == 2 else feed[0]),
            np.float32,
        )


class _LiteRTRunner(_Runner):
    kind = "tflite"

    def __init__(self, path, threads=None, margin=None):
        from ai_edge_litert.interpreter import Interpreter

        self.name = os.path.basename(path)
        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        (self._output,) = _exactly_one(self.interpreter.get_output_details(), path)
        self._image, self._origin = _split_inputs(
            inputs, lambda d: len(d["shape"]), lambda d: d["name"], path
        )
        shape = [int(n) for n in self._image["shape"]]
        self.batch, self.image_shape = shape[0], tuple(shape[1:])
        _read_sidecar(self, _tflite_sidecar(path), margin)

    def _run(self, images, origins):
        from coordgate_keras.tflite.verification import (
            dequantize_output,
            quantize_input,
        )

        interpreter = self.interpreter
        interpreter.set_tensor(
            self._image["index"], quantize_input(images, self._image)
        )
        if origins is not None:
            interpreter.set_tensor(
                self._origin["index"], origins.astype(self._origin["dtype"])
            )
        interpreter.invoke()
        return dequantize_output(
            interpreter.get_tensor(self._output["index"]), self._output
        )


class _OnnxRunner(_Runner):
    kind = "onnx"

    def __init__(self, path, threads=None, margin=None):
        from coordgate_keras.tflite.onnx_export import onnx_session

        self.name = os.path.basename(path)
        self.session = onnx_session(path, threads)
        _exactly_one(self.session.get_outputs(), path)
        self._image, self._origin = _split_inputs(
            self.session.get_inputs(), lambda d: len(d.shape), lambda d: d.name, path
        )
        shape = [n if isinstance(n, int) else None for n in self._image.shape]
        self.batch, self.image_shape = shape[0], tuple(shape[1:])
        _read_sidecar(self, path + ".json", margin)

    def _run(self, images, origins):
        feed = {self._image.name: images}
        if origins is not None:
            dtype = np.int64 if "int64" in self._origin.type else np.int32
            feed[self._origin.name] = origins.astype(dtype)
        return np.asarray(self.session.run(None, feed)[0], np.float32)


def open_runner(model, weights=None, threads=None, margin=None):
    """A runner for a `keras.Model`, a registered model name (with `weights`),
    or a `.keras`, `.tflite` or `.onnx` path."""
    import keras

    threads = av.positive_int(threads, "threads", allow_none=True)
    margin = av.non_negative_int(margin, "margin", allow_none=True)
    if isinstance(model, keras.Model):
        return _KerasRunner(model, threads)
    if not isinstance(model, (str, os.PathLike)):
        raise av.invalid_value(
            model,
            "model",
            "a keras.Model, a registered model name or a .keras, .tflite or .onnx path",
        )
    model = os.fspath(model)
    suffix = os.path.splitext(model)[1].lower()
    if suffix not in _SUFFIXES:
        from coordgate_keras import zoo

        if model not in zoo.list_models():
            raise av.invalid_value(
                model,
                "model",
                "a registered model name (`coordgate_keras.zoo.list_models()`) or "
                "a file ending in .keras, .tflite or .onnx",
            )
        return _KerasRunner(_pretrained(model, weights), threads)
    if weights is not None:
        raise av.invalid_value(
            weights, "weights", "None for a model file (weights are in the file)"
        )
    if not os.path.isfile(model):
        raise av.invalid_value(model, "model", "an existing model file")
    if suffix == ".keras":
        return _KerasRunner(keras.saving.load_model(model, compile=False), threads)
    if suffix == ".tflite":
        return _LiteRTRunner(model, threads, margin)
    return _OnnxRunner(model, threads, margin)


def _pretrained(name, weights):
    """A published model at the input size its weights were trained at."""
    from coordgate_keras import zoo

    tags = zoo.model_info(name).weights
    if weights is None:
        if not tags:
            raise av.invalid_value(
                weights,
                "weights",
                f"a weight tag: {name!r} has no published weights, and a "
                "randomly initialised model does not deblur",
            )
        weights = tags[0]
    entry = zoo.weights_info(name, weights)
    size = (entry.metadata or {}).get("input_size")
    input_shape = tuple(size) if size else None
    return zoo.create_model(name, weights=weights, input_shape=input_shape)


def _set_tensorflow_threads(threads):
    if threads is None:
        return
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    threading = tf.config.threading
    if threading.get_intra_op_parallelism_threads() == threads:
        return
    try:
        threading.set_intra_op_parallelism_threads(threads)
        threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        raise av.invalid_value(
            threads,
            "threads",
            "a thread count set before TensorFlow starts (TensorFlow fixes it "
            "at its first operation: run a new process)",
        ) from None


def _exactly_one(outputs, path):
    if len(outputs) != 1:
        raise av.invalid_value(
            path,
            "model",
            "a model file with one output",
            f"{path!r} with {len(outputs)} outputs",
        )
    return outputs


def _split_inputs(inputs, rank, name, path):
    """`(image, origin)` among a file's inputs; origin None for one input."""
    images = [d for d in inputs if rank(d) == 4]
    origins = [d for d in inputs if rank(d) == 2 and "origin" in name(d)]
    if len(images) != 1 or len(inputs) != 1 + len(origins) or len(origins) > 1:
        raise av.invalid_value(
            path,
            "model",
            "a model file whose inputs are one image (batch, height, width, "
            "channels) and optionally an `origin` (batch, 2)",
            f"{path!r} with inputs {[name(d) for d in inputs]}",
        )
    return images[0], (origins[0] if origins else None)


def _tflite_sidecar(path):
    from coordgate_keras.tflite.verification import sidecar_path

    return sidecar_path(path)


def _read_sidecar(runner, sidecar, margin):
    """Frame geometry of an exported file, from its JSON report if it has one.

    The frame shape, the alignment and the receptive-field margin are looked
    up under those names anywhere in the report; `margin` (an argument) wins.
    """
    found = {}
    if os.path.isfile(sidecar):
        with open(sidecar, encoding="utf-8") as f:
            _collect(json.load(f), found)
    if runner._origin is not None:
        frame = found.get("frame_shape")
        runner.frame_shape = tuple(int(n) for n in frame[:2]) if frame else None
        runner.alignment = int(found.get("alignment") or 1)
    for key in ("receptive_field_margin", "margin"):
        if found.get(key) is not None:
            runner.margin = int(found[key])
            break
    if margin is not None:
        runner.margin = margin


def _collect(report, found):
    if isinstance(report, dict):
        for key, value in report.items():
            if key in ("frame_shape", "alignment", "receptive_field_margin", "margin"):
                found.setdefault(key, value)
            else:
                _collect(value, found)
    elif isinstance(report, list):
        for value in report:
            _collect(value, found)
