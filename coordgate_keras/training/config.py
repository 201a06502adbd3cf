"""`TrainConfig`: everything that defines a training run, as one frozen dataclass.

A config is loaded from and saved to JSON or YAML (a file may start from
another with `extends:`, see `load_config`), every field can be changed from
the command line (`override(["steps=100", "psf.kernel_size=15"])`), and
unknown keys are an error that lists the valid ones. The defaults reproduce the
2D study's setting measured on an H100 (128x128, batch 16, 1,500 steps, Adam
1e-3 with a cosine schedule, MSE, residual U-Nets, a Zernike 8x8 field of 31 px
PSFs, Poisson + Gaussian noise).
"""

import copy
import dataclasses
import difflib
import inspect
import json
import math
import os

from coordgate_keras.utils import argument_validation as av

RECIPES_DIR = os.path.join(os.path.dirname(__file__), "recipes")
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
# The key of a config file that names the file it starts from.
EXTENDS = "extends"

DEFAULT_PSF = {"kind": "zernike", "grid_shape": [8, 8], "kernel_size": 31}
DEFAULT_PSF_1D = {"kind": "varying_gaussian_1d", "sigma_range": [0.5, 6.0]}
DEFAULT_NOISE = {"photons_range": [100.0, 1000.0], "read_noise_range": [0.0, 0.02]}

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("cosine", "constant")
LOSSES = ("mse", "l1", "l1_ssim")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
XLA_MODES = ("auto", "on", "off")
STRATEGIES = ("auto", "none", "mirrored", "multi_worker", "data_parallel")
SIMULATORS = ("auto", "host", "device")
PSF_KINDS = ("zernike", "gaussian", "file", "varying_gaussian_1d")
NOISE_KEYS = ("photons_range", "read_noise_range", "clip")
DATA_OPTION_KEYS = ("color_mode", "normalization", "recursive")
# Fields that do not change what a run computes: a resumed run may differ in them.
RESUME_EXEMPT = ("log_every",)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A complete description of a training run (frozen; see `replace`).

    Args:
        model: str. Registry name (`coordgate_keras.zoo.list_models()`).
        model_kwargs: dict. Builder arguments passed to `zoo.create_model`
            (not `input_shape`: that comes from `image_size`). For
            `multiwienernet`, `psfs: "field"` starts the Wiener filters from
            the training field's PSFs at the centres of a `sqrt(num_psfs)`-square
            grid (`PSFField.sample_psfs`; `num_psfs` a square, default 4), as
            MultiWienerNet starts from measured PSFs.
        init_weights: str or None. Weights to start from (fine-tuning): a
            published weight tag of `model` (`zoo.model_info(model).weights`)
            or the path of a `.weights.h5` file; None starts from random
            initialisation.
        data: str. Training pairs: `"sim"` (procedural microscopy scenes
            blurred by the `psf` field, with `noise`), `"folder:PATH"` (random
            crops of your images, blurred the same way) or `"dataset:PATH"`
            (pairs written by `data.write_deblur_dataset`). 1D models use the
            1D task (`data.varying_blur_1d`) with `"sim"`.
        data_options: dict. `ImageFolder` options for `folder:` data
            (`color_mode`, `normalization`, `recursive`).
        eval_data: str or None. Held-out pairs: `None` makes `eval_images`
            pairs from the training source with `eval_seed` (for `dataset:`
            data, its last `eval_images` pairs are held out), or
            `"folder:PATH"` / `"dataset:PATH"`.
        image_size: int or `[height, width]`. Training image size (signal
            length for 1D models).
        frame_size: None, int or `[height, width]`. The sensor frame the
            training images are crops of (2D models; `None`: every image is a
            whole frame, as before). With it the model is the two-input frame
            form (`zoo.with_frame`): every sample is an `image_size` crop at a
            random origin on the model's grid (`2**depth`), blurred through the
            frame's PSF field with the light from a margin of the PSF radius;
            the held-out set is the tiles covering whole held-out frames
            (corners included), and `metrics.json` adds `psnr_frames`, the
            PSNR of those frames restored tile by tile.
        psf: dict. The PSF field: `{"kind": "zernike", ...}` or
            `{"kind": "gaussian", ...}` with the keyword arguments of
            `data.zernike_psf_field` / `data.gaussian_psf_field`,
            `{"kind": "file", "path": "field.npz"}` (a saved `PSFField`), or
            for 1D models `{"kind": "varying_gaussian_1d", "sigma_range":
            [first, last]}` (the default 2D field is replaced by this one for
            1D models).
        noise: dict or None. `data.NoiseModel` arguments (`photons_range`,
            `read_noise_range`, `clip`), or None for noise-free data.
        train_images: int. Distinct sharp training images (the scene pool).
        eval_images: int. Held-out pairs.
        eval_seed: int. Seed of the held-out set, independent of `seed` so
            runs with different seeds are scored on the same pairs.
        batch_size: int. Global batch size (split over devices).
        steps: int. Optimizer steps in total.
        optimizer: str. `"adam"` or `"adamw"`.
        learning_rate: float. Peak learning rate.
        weight_decay: float. Decoupled weight decay (AdamW).
        schedule: str. `"cosine"` (decay to 0 over `steps`) or `"constant"`.
        warmup_steps: int. Linear warm-up steps before the schedule.
        loss: str. `"mse"`, `"l1"` or `"l1_ssim"` (`l1 + (1 - SSIM)`).
        precision: str. `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`
            (with loss scaling).
        xla: str. `"auto"` (on when a GPU is visible, and always on the JAX
            backend, where "off" means op-by-op dispatch), `"on"` or `"off"`.
        strategy: str. `"auto"` (every visible GPU of this host, else one
            device), `"none"`, `"mirrored"` (TF `MirroredStrategy`),
            `"multi_worker"` (JAX: `DataParallel` over processes after
            `jax.distributed.initialize`; refused on TF, where Keras 3's
            `fit` fails under `MultiWorkerMirroredStrategy`) or
            `"data_parallel"` (JAX `keras.distribution.DataParallel`).
        simulator: str. Where blur and noise run: `"host"` (NumPy, per batch),
            `"device"` (keras.ops on the accelerator, inside the train step)
            or `"auto"` (device when a GPU is visible or on JAX).
        seed: int. Seeds weights, the training pool and noise, data order.
        deterministic: bool. Deterministic ops (TF op determinism, which
            turns XLA off on TF; on JAX set
            `XLA_FLAGS=--xla_gpu_deterministic_ops=true` before start).
        eval_every: int. Held-out evaluation (and `best.keras`) every this
            many steps; 0 evaluates at the end only.
        checkpoint_every: int. Backup and `last.keras` every this many steps.
        log_every: int. One progress line per this many steps when the
            output is not a terminal.

    Example:

    >>> from coordgate_keras.training import TrainConfig
    >>> cfg = TrainConfig().override(["steps=200", "model_kwargs.base_filters=16"])
    >>> cfg.steps, cfg.model_kwargs
    (200, {'residual': True, 'base_filters': 16})
    """

    model: str = "coordgate_unet_d2"
    model_kwargs: dict = dataclasses.field(default_factory=lambda: {"residual": True})
    init_weights: str | None = None
    data: str = "sim"
    data_options: dict = dataclasses.field(default_factory=dict)
    eval_data: str | None = None
    image_size: int | list = 128
    frame_size: int | list | None = None
    psf: dict = dataclasses.field(default_factory=lambda: copy.deepcopy(DEFAULT_PSF))
    noise: dict | None = dataclasses.field(
        default_factory=lambda: copy.deepcopy(DEFAULT_NOISE)
    )
    train_images: int = 4096
    eval_images: int = 64
    eval_seed: int = 1234
    batch_size: int = 16
    steps: int = 1500
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    warmup_steps: int = 0
    loss: str = "mse"
    precision: str = "float32"
    xla: str = "auto"
    strategy: str = "auto"
    simulator: str = "auto"
    seed: int = 0
    deterministic: bool = False
    eval_every: int = 500
    checkpoint_every: int = 100
    log_every: int = 50

    def __post_init__(self):
        # YAML 1.1 reads `1e-3` as a string; accept it for the float fields.
        for name in ("learning_rate", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    object.__setattr__(self, name, float(value))
                except ValueError:
                    pass
            elif isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, name, float(value))
        _validate(self)

    # === Construction ===

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a mapping; unknown keys raise a `ValueError`."""
        if not isinstance(values, dict):
            raise av.invalid_value(
                None, "config", "a mapping of config fields", f"config={values!r}"
            )
        for key in values:
            _check_key(key)
        return cls(**copy.deepcopy(values))

    @classmethod
    def from_file(cls, path):
        """Reads a `.json`, `.yaml` or `.yml` file written by `save` (or by hand).

        A file with `extends: BASE` holds only its changes to BASE (a recipe
        name or another config file, see `load_config`).
        """
        return cls.from_dict(_read_config_file(path))

    def replace(self, **changes):
        """A copy with `changes` applied (validated)."""
        for key in changes:
            _check_key(key)
        return dataclasses.replace(self, **copy.deepcopy(changes))

    def override(self, assignments):
        """A copy with `key=value` strings applied, as `--set` on the CLI.

        Values are parsed as YAML (`16`, `1e-3`, `[8, 8]`, `null`, `true`);
        `a.b=value` sets key `b` of the dict field `a` (`psf.kernel_size=15`,
        `model_kwargs.base_filters=16`). Setting `kind` of a dict field to a
        new value (`psf.kind=file`) starts that dict afresh, so set it first.
        """
        import yaml

        values = self.to_dict()
        if isinstance(assignments, str):
            assignments = [assignments]
        for assignment in assignments:
            key, sep, text = str(assignment).partition("=")
            key = key.strip()
            if not sep or not key:
                raise av.invalid_value(
                    None,
                    "assignment",
                    "the form key=value",
                    f"assignment={assignment!r}",
                )
            value = yaml.safe_load(text) if text.strip() else ""
            head, _, sub = key.partition(".")
            _check_key(head)
            if not sub:
                values[head] = value
                continue
            target = values[head]
            if target is None:
                target = values[head] = {}
            if not isinstance(target, dict):
                raise av.invalid_value(
                    None,
                    "assignment",
                    f"a dotted key only for a dict field (`{head}` is "
                    f"{type(target).__name__})",
                    f"assignment={assignment!r}",
                )
            if sub == "kind" and target.get("kind") != value:
                # Another kind takes other keys: the old kind's are dropped.
                target = values[head] = {}
            *parents, last = sub.split(".")
            for part in parents:
                target = target.setdefault(part, {})
            target[last] = value
        return TrainConfig.from_dict(values)

    # === Output ===

    def to_dict(self):
        """A JSON-compatible dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def save(self, path):
        """Writes `.json` or `.yaml`/`.yml` (chosen by the suffix), atomically."""
        from coordgate_keras.utils import atomic_io

        path = os.fspath(path)
        if path.endswith(".json"):
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        elif path.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        else:
            raise av.invalid_value(
                None, "path", "a .json, .yaml or .yml file", f"path={path!r}"
            )
        atomic_io.atomic_write_text(path, text)

    def diff(self, other):
        """Names of the fields whose values differ from `other`'s."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [name for name in mine if mine[name] != theirs.get(name)]

    @property
    def frame_shape(self):
        """`(height, width)` of the frame, or None."""
        if self.frame_size is None:
            return None
        if isinstance(self.frame_size, int):
            return (self.frame_size, self.frame_size)
        return tuple(self.frame_size)

    @property
    def image_shape(self):
        """`(height, width)` (or `(length,)` for a 1D model)."""
        if isinstance(self.image_size, int):
            return (self.image_size, self.image_size)
        return tuple(self.image_size)


def load_config(path_or_recipe):
    """Loads a config file, or a packaged recipe by name.

    A file (a recipe too) may start from another: with `extends: BASE` it
    holds only what differs from BASE. BASE is a recipe name (`unet_d3`) or a
    `.json` / `.yaml` / `.yml` file, a relative path being relative to the
    folder of the file that names it. The base is loaded first (it may extend
    another in turn; a cycle is refused, naming the chain of files), then the
    file's own keys override its values: a dict-valued field (`psf`,
    `model_kwargs`, `noise`, `data_options`) merges key by key, so
    `model_kwargs: {base_filters: 16}` keeps the base's other builder
    arguments, except that a dict naming another `kind` (`psf: {kind:
    gaussian}`) replaces the base's; any other value (`null` included)
    replaces the base's.

    Args:
        path_or_recipe: str or path-like. A `.json` / `.yaml` file, or the name
            of a recipe in `coordgate_keras/training/recipes/` (see
            `list_recipes()`), e.g. `"coordgate_unet_d2"`.

    Returns:
        A `TrainConfig`.

    Example:

    >>> from coordgate_keras.training import load_config
    >>> cfg = load_config("unet_d3_w16")  # extends: unet_d3, which extends _base.yaml
    >>> cfg.model, cfg.model_kwargs, cfg.precision
    ('unet_d3', {'residual': True, 'base_filters': 16}, 'float32')
    """
    path = os.fspath(path_or_recipe)
    if os.path.isfile(path):
        return TrainConfig.from_file(path)
    if path in list_recipes():
        return TrainConfig.from_file(_recipe_path(path))
    raise av.invalid_value(
        None,
        "path_or_recipe",
        "an existing .json/.yaml file or a recipe name, one of "
        + ", ".join(repr(r) for r in list_recipes()),
        f"path_or_recipe={path!r}",
    )


def list_recipes():
    """Names of the packaged recipes (not the shared base, `_base.yaml`)."""
    if not os.path.isdir(RECIPES_DIR):
        return []
    return sorted(
        name[: -len(".yaml")]
        for name in os.listdir(RECIPES_DIR)
        if name.endswith(".yaml") and not name.startswith("_")
    )


def _read_config_file(path):
    """The values of config file `path`, its `extends` chain applied (a dict).

    See `load_config` for `extends` and how a file's values override its
    base's.
    """
    return _read_extending(os.path.abspath(os.fspath(path)), ())


def _recipe_path(name):
    return os.path.join(RECIPES_DIR, f"{name}.yaml")


def _read_extending(path, chain):
    chain = (*chain, path)
    values = _read_mapping(path)
    if EXTENDS not in values:
        return values
    base = _base_path(values.pop(EXTENDS), path)
    if base in chain:
        files = " -> ".join(chain[chain.index(base) :] + (base,))
        raise av.invalid_value(
            None,
            EXTENDS,
            "a base that does not extend this file in turn",
            f"a cycle of `extends`: {files}",
        )
    return _merge(_read_extending(base, chain), values)


def _read_mapping(path):
    if not path.endswith(CONFIG_SUFFIXES):
        raise av.invalid_value(
            None, "path", "a .json, .yaml or .yml file", f"path={path!r}"
        )
    with open(path) as f:
        text = f.read()
    if path.endswith(".json"):
        values = json.loads(text)
    else:
        import yaml

        values = yaml.safe_load(text) or {}
    if not isinstance(values, dict):
        raise av.invalid_value(
            None, "config", "a mapping of config fields", f"{values!r} in {path}"
        )
    return values


def _base_path(base, path):
    """The file that `extends: base` in the file `path` names."""
    folder = os.path.dirname(path)
    if isinstance(base, str) and base.endswith(CONFIG_SUFFIXES):
        candidate = os.path.abspath(os.path.join(folder, os.path.expanduser(base)))
        if os.path.isfile(candidate):
            return candidate
    elif isinstance(base, str) and base in list_recipes():
        return _recipe_path(base)
    raise av.invalid_value(
        base,
        EXTENDS,
        "a recipe name (one of "
        + ", ".join(repr(r) for r in list_recipes())
        + f") or an existing .json/.yaml/.yml file (relative to {folder})",
        f"extends={base!r} in {path}",
    )


def _merge(base, changes):
    """`changes` over `base`: dicts merge key by key unless `kind` changes."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        old = merged.get(key)
        if (
            isinstance(old, dict)
            and isinstance(value, dict)
            and value.get("kind", old.get("kind")) == old.get("kind")
        ):
            value = _merge(old, value)
        merged[key] = copy.deepcopy(value)
    return merged


# === Validation ===


def _check_key(key):
    names = TrainConfig.field_names()
    if key not in names:
        close = difflib.get_close_matches(str(key), names, n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        if key == EXTENDS:
            hint = " (`extends` is read from config files: `load_config`, `from_file`)"
        raise av.invalid_value(
            None,
            "config",
            "keys among " + ", ".join(names) + hint,
            f"unknown key {key!r}",
        )


def _check_data(name, value, allow_none=False, allow_sim=True):
    if value is None and allow_none:
        return
    ok = isinstance(value, str) and (
        (allow_sim and value == "sim")
        or (value.startswith(("folder:", "dataset:")) and value.partition(":")[2])
    )
    if not ok:
        forms = "'folder:PATH' or 'dataset:PATH'"
        expected = ("'sim', " if allow_sim else "") + forms
        if allow_none:
            expected = "None, " + expected
        raise av.invalid_value(None, name, expected, f"{name}={value!r}")


def _check_dict(name, value, keys=None):
    if not isinstance(value, dict):
        raise av.invalid_value(None, name, "a mapping", f"{name}={value!r}")
    if keys is not None:
        for key in value:
            if key not in keys:
                raise av.invalid_value(
                    None,
                    name,
                    "keys among " + ", ".join(keys),
                    f"unknown key {key!r} in {name}={value!r}",
                )


def psf_keys(kind):
    """Valid keys of a `psf` dict of `kind` (besides `kind`)."""
    from coordgate_keras import data

    if kind == "zernike":
        params = inspect.signature(data.zernike_psf_field).parameters
        return [p for p in params if p != "image_shape"]
    if kind == "gaussian":
        params = inspect.signature(data.gaussian_psf_field).parameters
        return [p for p in params if p != "image_shape"]
    if kind == "file":
        return ["path", "normalize"]
    return ["sigma_range"]


def _validate(cfg):
    from coordgate_keras import zoo

    names = zoo.list_models()
    if cfg.model not in names:
        close = difflib.get_close_matches(str(cfg.model), names, n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise av.invalid_value(
            None, "model", "a registered model name" + hint, f"model={cfg.model!r}"
        )
    _check_dict("model_kwargs", cfg.model_kwargs)
    if "input_shape" in cfg.model_kwargs:
        raise av.invalid_value(
            None,
            "model_kwargs",
            "builder arguments without `input_shape` (set `image_size`)",
            f"model_kwargs={cfg.model_kwargs!r}",
        )
    if "psfs" in cfg.model_kwargs:
        num = cfg.model_kwargs.get("num_psfs") or 4
        if cfg.model_kwargs["psfs"] != "field" or not (
            isinstance(num, int) and num >= 1 and math.isqrt(num) ** 2 == num
        ):
            raise av.invalid_value(
                None,
                "model_kwargs",
                "`psfs: field` (the training field's PSFs) with `num_psfs` a "
                "square number (1, 4, 9, ...) or unset; PSF arrays do not go in a "
                "config",
                f"model_kwargs={cfg.model_kwargs!r}",
            )
    if cfg.init_weights is not None:
        tags = zoo.model_info(cfg.model).weights
        if not isinstance(cfg.init_weights, str) or not (
            cfg.init_weights in tags or cfg.init_weights.endswith(".weights.h5")
        ):
            expected = "None, a `.weights.h5` path" + (
                " or one of " + ", ".join(repr(t) for t in tags) if tags else ""
            )
            raise av.invalid_value(
                None, "init_weights", expected, f"init_weights={cfg.init_weights!r}"
            )
    _check_data("data", cfg.data)
    _check_dict("data_options", cfg.data_options, DATA_OPTION_KEYS)
    _check_data("eval_data", cfg.eval_data, allow_none=True, allow_sim=False)
    size = cfg.image_size
    if isinstance(size, (list, tuple)):
        if len(size) not in (1, 2):
            raise av.invalid_value(
                None,
                "image_size",
                "a positive integer or [height, width]",
                f"image_size={size!r}",
            )
        for s in size:
            av.positive_int(s, "image_size")
    else:
        av.positive_int(size, "image_size")
    if cfg.frame_size is not None:
        frame = cfg.frame_size
        sizes = frame if isinstance(frame, (list, tuple)) else [frame]
        if not (
            len(sizes) in (1, 2)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in sizes)
        ):
            raise av.invalid_value(
                None,
                "frame_size",
                "None, a positive integer or [height, width]",
                f"frame_size={frame!r}",
            )
        for s in sizes:
            av.positive_int(s, "frame_size")
        image = cfg.image_shape
        if len(image) != 2 or any(f < i for f, i in zip(cfg.frame_shape, image)):
            raise av.invalid_value(
                None,
                "frame_size",
                f"a frame at least as large as image_size {tuple(image)} (2D models)",
                f"frame_size={frame!r}",
            )
    _check_dict("psf", cfg.psf)
    kind = cfg.psf.get("kind")
    av.choice(kind, "psf.kind", PSF_KINDS)
    _check_dict("psf", cfg.psf, ["kind"] + psf_keys(kind))
    if kind == "file" and not isinstance(cfg.psf.get("path"), str):
        raise av.invalid_value(
            None,
            "psf",
            "a 'path' to a PSFField .npz file for kind 'file'",
            f"psf={cfg.psf!r}",
        )
    if cfg.noise is not None:
        _check_dict("noise", cfg.noise, NOISE_KEYS)
    for name in ("train_images", "eval_images", "batch_size", "steps"):
        av.positive_int(getattr(cfg, name), name)
    for name in ("eval_seed", "seed", "warmup_steps", "eval_every"):
        av.non_negative_int(getattr(cfg, name), name)
    for name in ("checkpoint_every", "log_every"):
        av.positive_int(getattr(cfg, name), name)
    if cfg.warmup_steps >= cfg.steps:
        raise av.invalid_value(
            None,
            "warmup_steps",
            f"fewer warm-up steps than `steps` ({cfg.steps})",
            f"warmup_steps={cfg.warmup_steps}",
        )
    av.number(cfg.learning_rate, "learning_rate", minimum=0.0, min_inclusive=False)
    av.number(cfg.weight_decay, "weight_decay", minimum=0.0)
    av.choice(cfg.optimizer, "optimizer", OPTIMIZERS)
    av.choice(cfg.schedule, "schedule", SCHEDULES)
    av.choice(cfg.loss, "loss", LOSSES)
    av.choice(cfg.precision, "precision", PRECISIONS)
    av.choice(cfg.xla, "xla", XLA_MODES)
    av.choice(cfg.strategy, "strategy", STRATEGIES)
    av.choice(cfg.simulator, "simulator", SIMULATORS)
    if not isinstance(cfg.deterministic, bool):
        raise av.invalid_value(
            None,
            "deterministic",
            "True or False",
            f"deterministic={cfg.deterministic!r}",
        )
