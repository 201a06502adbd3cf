"""Pretrained weights: entries, resolution (package, cache, download) and checks.

A weight entry names one `.weights.h5` file of one registered model and carries
what made it (timm's `pretrained_cfg`, keras-hub's `metadata.json`): the builder
arguments, the training recipe, the held-out metrics, the input size and value
range. Each file has a JSON sidecar `<model>_<tag>.json` holding that metadata,
and the code that registers the entry (`unet_presets.py`) holds its SHA-256, so
a file is trusted only when it hashes to the value written in the code.

Resolution of `(model, tag)`, first match wins:

1. the file shipped inside the package (`coordgate_keras/zoo/weights/`), so the
   published weights work offline on a fresh install;
2. the Keras cache (`$KERAS_HOME/coordgate_keras/weights/`, default
   `~/.keras`), when the file there has the right hash (no request is made);
3. a download with `keras.utils.get_file` from `base_url` (argument), else
   `$COORDGATE_KERAS_WEIGHTS_URL`, else the entry's own URL. `file://` works.
   The file is downloaded into a private staging folder, checked, and only
   then moved into the cache, so an interrupted or corrupt download leaves
   nothing that a later call would trust.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import weakref

import keras

from coordgate_keras.utils import atomic_io

# Environment variable holding a base URL (mirror, air-gapped server, file://).
WEIGHTS_URL_ENV = "COORDGATE_KERAS_WEIGHTS_URL"
# Where the packaged weight files and their sidecars live.
PACKAGED_WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")
CACHE_SUBDIR = os.path.join("coordgate_keras", "weights")
# Configuration keys that do not change what a layer computes.
# Initializers do not decide whether weights fit (loading replaces what they
# made): `create_model(name, weights=tag, output_initializer="zeros")` loads.
_IGNORED_CONFIG_KEYS = (
    "name",
    "dtype",
    "trainable",
    "kernel_initializer",
    "bias_initializer",
    # The frame a model runs windows of does not change its weights.
    "frame_shape",
)
# Layers that pass their input through unchanged (input checks): they do not
# decide whether weights fit, and newer builders may add or drop them.
# The frame form's origin plumbing (`zoo.with_frame`) has no weights either.
_IDENTITY_LAYERS = ("SpatialSizeCheck", "FrameWindow", "DownscaleOrigin")


@dataclasses.dataclass(frozen=True)
class WeightEntry:
    """One published weight file of one registered model.

    Args:
        model: str. Registered model name.
        tag: str. Weight tag, as in `create_model(model, weights=tag)`.
        filename: str. File name, `<model>_<tag>.weights.h5`.
        sha256: str. SHA-256 of the file (64 hex digits).
        description: str. One line on what the weights were trained for.
        builder_kwargs: dict. Builder arguments the weights were trained with;
            `create_model(model, weights=tag)` builds with them.
        url: str or None. Where the file can be downloaded, when it is not
            packaged and no base URL is given.
        metadata: dict. The sidecar's content (recipe, metrics, input size,
            value range, versions, architecture), `{}` when unknown.
    """

    model: str
    tag: str
    filename: str
    sha256: str
    description: str = ""
    builder_kwargs: dict = dataclasses.field(default_factory=dict)
    url: str = None
    metadata: dict = dataclasses.field(default_factory=dict)

    @property
    def packaged_path(self):
        """Path of the packaged file, or None when the package has none."""
        path = os.path.join(PACKAGED_WEIGHTS_DIR, self.filename)
        return path if os.path.isfile(path) else None


class WeightsError(ValueError):
    """A weight file that cannot be found, fetched, trusted or loaded."""


_ENTRIES = {}
# Models built by `create_model`: what they were built with, for the checks.
_BUILT_WITH = weakref.WeakKeyDictionary()


def weight_filename(model, tag):
    return f"{model}_{tag}.weights.h5"


def sidecar_filename(model, tag):
    return f"{model}_{tag}.json"


def register(entry):
    """Adds a `WeightEntry`; reads its packaged sidecar when it has one."""
    if not entry.metadata:
        sidecar = os.path.join(
            PACKAGED_WEIGHTS_DIR, sidecar_filename(entry.model, entry.tag)
        )
        if os.path.isfile(sidecar):
            with open(sidecar, encoding="utf-8") as f:
                metadata = json.load(f)
            if metadata.get("sha256") != entry.sha256:
                raise WeightsError(
                    f"The sidecar {sidecar} records sha256 "
                    f"{metadata.get('sha256')} but the registry expects "
                    f"{entry.sha256}: the package's weight files are inconsistent."
                )
            entry = dataclasses.replace(entry, metadata=metadata)
    _ENTRIES.setdefault(entry.model, {})[entry.tag] = entry
    return entry


def unregister(model, tag):
    _ENTRIES.get(model, {}).pop(tag, None)


def tags(model):
    """Sorted weight tags of a model."""
    return sorted(_ENTRIES.get(model, {}))


def entries():
    """Every registered `WeightEntry`, sorted by model and tag."""
    return [_ENTRIES[model][tag] for model in sorted(_ENTRIES) for tag in tags(model)]


def get_entry(model, tag):
    """The entry of `(model, tag)`; an unknown tag lists the known ones."""
    known = tags(model)
    if not known:
        from coordgate_keras.zoo import _registry

        _registry._get_entry(model)  # An unknown name: the registry's error.
    if tag not in known:
        expected = (
            "None or one of " + ", ".join(repr(t) for t in known)
            if known
            else f"None (no weights are published for model `{model}` yet)"
        )
        raise ValueError(
            f"Invalid value for argument `weights`. Expected {expected}. "
            f"Received: weights={tag!r}"
        )
    return _ENTRIES[model][tag]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(path, entry):
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise WeightsError(
            f"Weight file {path} of model `{entry.model}` tag `{entry.tag}` has the "
            f"wrong SHA-256: expected {entry.sha256}, got {actual}. It was not "
            "loaded."
        )
    return path


def cache_path(entry, cache_dir=None):
    """Where the Keras cache keeps the file of `entry` (it may not exist)."""
    base = os.path.expanduser(cache_dir or default_cache_root())
    return os.path.join(base, CACHE_SUBDIR, entry.filename)


def default_cache_root():
    """`$KERAS_HOME` (read at each call) or `~/.keras`, as Keras' own cache."""
    return os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )


def download_url(entry, base_url=None):
    """The URL a download of `entry` uses, or None when none is configured."""
    base = base_url or os.environ.get(WEIGHTS_URL_ENV)
    if base:
        return base.rstrip("/") + "/" + entry.filename
    return entry.url


def resolve(model, tag, base_url=None, cache_dir=None, download=True):
    """Local path of the verified weight file of `(model, tag)`.

    Args:
        model: str. Registered model name.
        tag: str. Weight tag.
        base_url: str or None. Base URL to download from (the file name is
            appended), over `$COORDGATE_KERAS_WEIGHTS_URL` and the entry's URL.
        cache_dir: str or None. Cache root; `None` is Keras' (`~/.keras` or
            `$KERAS_HOME`).
        download: bool. Whether a missing file may be downloaded.

    Returns:
        The path of a file whose SHA-256 is the registered one.
    """
    entry = get_entry(model, tag)
    if entry.packaged_path:
        return _check_hash(entry.packaged_path, entry)
    cached = cache_path(entry, cache_dir)
    damaged = None
    if os.path.isfile(cached):
        actual = sha256_of(cached)
        if actual == entry.sha256:
            return cached
        damaged = (
            f"The cached weight file {cached} of model `{model}` tag `{tag}` is "
            f"damaged (SHA-256 {actual}, expected {entry.sha256}); delete it"
        )
    url = download_url(entry, base_url)
    if url is None:
        if damaged:
            raise WeightsError(
                f"{damaged} and pass `base_url=` or set ${WEIGHTS_URL_ENV} to "
                f"download it again."
            )
        raise WeightsError(
            f"Weights `{tag}` of model `{model}` are not packaged and not in the "
            f"cache ({cached}), and no download location is set. Pass "
            f"`base_url=` or set ${WEIGHTS_URL_ENV} to a folder URL holding "
            f"{entry.filename}."
        )
    if not download:
        if damaged:
            raise WeightsError(f"{damaged}, or allow downloading to replace it.")
        raise WeightsError(
            f"Weights `{tag}` of model `{model}` are not in the cache ({cached}) "
            "and downloading is off."
        )
    return _download(entry, url, cached)


# A staging folder older than this was left by a killed process (a download in
# progress is younger); it is removed by the next download into the cache.
STALE_STAGING_SECONDS = 24 * 3600


def _remove_stale_staging(directory):
    now = time.time()
    for name in os.listdir(directory):
        if not name.startswith(".download-"):
            continue
        path = os.path.join(directory, name)
        try:
            stale = now - os.path.getmtime(path) > STALE_STAGING_SECONDS
        except OSError:  # removed meanwhile by another process
            continue
        if stale and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


def _download(entry, url, target):
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    _remove_stale_staging(directory)
    staging = tempfile.mkdtemp(prefix=".download-", dir=directory)
    try:
        try:
            path = keras.utils.get_file(
                fname=entry.filename,
                origin=url,
                cache_dir=staging,
                cache_subdir=staging,
            )
        except Exception as error:
            raise WeightsError(
                f"Could not download weights `{entry.tag}` of model "
                f"`{entry.model}` from {url}: {error}. Set `base_url=` or "
                f"${WEIGHTS_URL_ENV} to a reachable mirror."
            ) from error
        actual = sha256_of(path)
        if actual != entry.sha256:
            raise WeightsError(
                f"Downloaded weight file {entry.filename} (from {url}) has the "
                f"wrong SHA-256: expected {entry.sha256}, got {actual}. It was "
                "deleted, nothing was cached."
            )
        os.replace(path, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# === Architecture checks ===


def note_builder(model, name, builder_kwargs):
    """Records how `create_model` built `model` (for error messages)."""
    _BUILT_WITH[model] = (name, dict(builder_kwargs))


def architecture(model):
    """What decides whether a weight file fits a model, as JSON-able lists.

    One `[class_name, config]` per layer, without names, dtype policies, the
    input's spatial size (fully convolutional models take any size) and
    identity layers (input checks), and the shape of every weight in order.
    """
    layers = []
    for layer in model.layers:
        if layer.__class__.__name__ in _IDENTITY_LAYERS:
            continue
        config = {
            k: v for k, v in layer.get_config().items() if k not in _IGNORED_CONFIG_KEYS
        }
        if isinstance(layer, keras.layers.InputLayer) and layer.name == "origin":
            continue
        if isinstance(layer, keras.layers.InputLayer):
            shape = config.pop("batch_shape", None) or ()
            config = {"channels": shape[-1] if shape else None}
        layers.append([layer.__class__.__name__, _jsonable(config)])
    shapes = [list(w.shape) for w in model.weights]
    return {"layers": layers, "weight_shapes": shapes}


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def check_architecture(model, entry):
    """Refuses `entry` for `model` when the sidecar's architecture differs."""
    expected = entry.metadata.get("architecture")
    if not expected:
        return
    actual = architecture(model)
    problem = _first_difference(expected, actual)
    if problem is None:
        return
    built = _BUILT_WITH.get(model)
    how = (
        f"This model was built as `{built[0]}` with {built[1] or 'no arguments'}; "
        if built
        else ""
    )
    raise WeightsError(
        f"Weights `{entry.tag}` of model `{entry.model}` do not fit this model: "
        f"{problem}. {how}the weights were trained with builder arguments "
        f"{entry.builder_kwargs or '{}'} (`create_model('{entry.model}', "
        f"weights='{entry.tag}')` builds that)."
    )


def _first_difference(expected, actual):
    exp_layers, act_layers = expected["layers"], actual["layers"]
    if len(exp_layers) != len(act_layers):
        return f"it has {len(act_layers)} layers, the weights' model {len(exp_layers)}"
    for i, ((exp_cls, exp_cfg), (act_cls, act_cfg)) in enumerate(
        zip(exp_layers, act_layers)
    ):
        if exp_cls != act_cls:
            return f"layer {i} is a {act_cls}, the weights' model has a {exp_cls}"
        # Keys present on both sides only: a newer Keras may add config keys.
        for key in sorted(set(exp_cfg) & set(act_cfg)):
            if exp_cfg[key] != act_cfg[key]:
                return (
                    f"layer {i} ({act_cls}) has {key}={act_cfg[key]!r}, the "
                    f"weights' model {key}={exp_cfg[key]!r}"
                )
    if expected["weight_shapes"] != actual["weight_shapes"]:
        return "its weight shapes differ"
    return None


def load(model, tag, name=None, base_url=None, cache_dir=None):
    """Loads published weights into `model` after checking they fit it.

    Args:
        model: a `keras.Model`.
        tag: str. Weight tag.
        name: str or None. Registered model name of the weights; defaults to
            the name `model` was created under by `create_model`, else
            `model.name`.
        base_url, cache_dir: as in `resolve`.

    Returns:
        `model`.
    """
    if name is None:
        built = _BUILT_WITH.get(model)
        name = built[0] if built else model.name
    entry = get_entry(name, tag)
    check_architecture(model, entry)
    path = resolve(name, tag, base_url=base_url, cache_dir=cache_dir)
    model.load_weights(path)
    return model


# === Writing a weight file ===


def write(model, out_dir, name, tag, builder_kwargs, metadata):
    """Writes `<name>_<tag>.weights.h5` and its JSON sidecar into `out_dir`.

    Both are written to temporary files first and renamed into place, the
    weights before the sidecar (a sidecar never describes a missing file).

    Args:
        model: the trained `keras.Model`.
        out_dir: str. Destination folder.
        name: str. Registered model name.
        tag: str. Weight tag.
        builder_kwargs: dict. Arguments the model was built with.
        metadata: dict. Extra sidecar fields (recipe, metrics, steps, ...).

    Returns:
        `(weights_path, sidecar_path, sidecar_dict)`.
    """
    import coordgate_keras

    os.makedirs(out_dir, exist_ok=True)
    weights_path = os.path.join(out_dir, weight_filename(name, tag))
    sidecar_path = os.path.join(out_dir, sidecar_filename(name, tag))
    # Keras insists on the `.weights.h5` suffix: the temporary keeps the name.
    with atomic_io.atomic_file(weights_path, keep_name=True) as tmp:
        model.save_weights(tmp)
        digest = sha256_of(tmp)
    sidecar = {
        "model": name,
        "tag": tag,
        "file": os.path.basename(weights_path),
        "sha256": digest,
        "size_bytes": os.path.getsize(weights_path),
        "num_params": int(model.count_params()),
        "builder_kwargs": _jsonable(builder_kwargs),
        **_jsonable(metadata),
        "keras_version": keras.__version__,
        "package_version": coordgate_keras.__version__,
        "backend": keras.backend.backend(),
        "architecture": architecture(model),
    }
    atomic_io.atomic_write_json(sidecar_path, sidecar, indent=1)
    return weights_path, sidecar_path, sidecar
