"""Model registry: `register_model`, `create_model`, `list_models`, `model_info`.

A registered model is a builder function `fn(**kwargs) -> keras.Model` whose name
is the model name (`coordgate_unet_d2`). Metadata (family, depth, the reference
input shape used to count parameters) is attached at registration; published
weights are attached later with `register_weights` and are listed by
`model_info`.
"""

import dataclasses
import difflib
import fnmatch
import functools
import re
import traceback

import keras

# Private, but the only way to drop variables queued by a stateless scope; a
# test guards it (tests/zoo/test_registry.py::test_build_uninitialized_leaks_nothing).
from keras.src.backend.common import global_state

from coordgate_keras.utils import argument_validation as av
from coordgate_keras.zoo import _weights

# The reference input used for parameter counts and the model table.
DEFAULT_REFERENCE_INPUT_SHAPE = (256, 256, 1)


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model.

    Args:
        name: str. Registered name, e.g. `"coordgate_unet_d2"`.
        family: str. Name without the depth suffix, e.g. `"coordgate_unet"`.
        depth: int. Down-sampling levels (U-Nets) or hidden layers (1D nets).
        description: str. First line of the builder's docstring.
        reference_input_shape: tuple. Input shape (no batch) used to count
            parameters.
        num_params: int. Parameter count at `reference_input_shape` with the
            default arguments.
        weights: tuple of str. Tags accepted by `create_model(weights=...)`.
    """

    name: str
    family: str
    depth: int
    description: str
    reference_input_shape: tuple
    num_params: int
    weights: tuple


@dataclasses.dataclass(frozen=True)
class _Entry:
    fn: object
    family: str
    depth: int
    description: str
    reference_input_shape: tuple


_MODELS = {}
_DEPTH_SUFFIX = re.compile(r"^(?P<family>.+)_d(?P<depth>\d+)$")


def register_model(fn=None, *, family=None, depth=None, reference_input_shape=None):
    """Registers a model builder under its function name.

    Usable bare (`@register_model`) when the name ends in `_d<depth>`, or with
    keywords (`@register_model(depth=3, reference_input_shape=(256, 1))`).

    Args:
        fn: callable. Builder `fn(**kwargs) -> keras.Model`; its name is the
            model name and the first line of its docstring the description.
        family: str or None. Defaults to the name without its `_d<depth>` suffix.
        depth: int or None. Defaults to the number in the `_d<depth>` suffix.
        reference_input_shape: tuple or None. Input shape (no batch) used for
            `model_info().num_params`; defaults to `(256, 256, 1)`.

    Returns:
        `fn`, unchanged.
    """

    def decorator(fn):
        name = fn.__name__
        if name in _MODELS:
            raise ValueError(f"A model named `{name}` is already registered.")
        match = _DEPTH_SUFFIX.match(name)
        model_family = family or (match["family"] if match else name)
        model_depth = (
            depth if depth is not None else (int(match["depth"]) if match else None)
        )
        if model_depth is None:
            raise ValueError(
                f"Cannot infer the depth of model `{name}`: its name has no "
                "`_d<depth>` suffix. Pass `depth=` to `register_model`."
            )
        doc = (fn.__doc__ or "").strip()
        _MODELS[name] = _Entry(
            fn=fn,
            family=model_family,
            depth=model_depth,
            description=doc.splitlines()[0] if doc else "",
            reference_input_shape=tuple(
                reference_input_shape or DEFAULT_REFERENCE_INPUT_SHAPE
            ),
        )
        return fn

    if fn is not None:
        return decorator(fn)
    return decorator


def register_weights(
    name, tag, url=None, sha256=None, description="", builder_kwargs=None
):
    """Publishes a weight file for a registered model under `tag`.

    Packaged weights are registered by their family's presets module (e.g.
    `unet_presets.py`); this adds others, e.g. on a mirror.

    Args:
        name: str. Registered model name.
        tag: str. Weight tag, passed as `create_model(name, weights=tag)`.
        url: str or None. Address of the `.weights.h5` file (`file://` works);
            None to download only from a base URL (argument or
            `$COORDGATE_KERAS_WEIGHTS_URL`).
        sha256: str. SHA-256 of that file.
        description: str. One line on the training data.
        builder_kwargs: dict or None. Builder arguments the weights need.

    Returns:
        The `WeightEntry`.
    """
    _get_entry(name)
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(
            "Invalid value for argument `sha256`. Expected 64 lowercase hex "
            f"digits. Received: sha256={sha256!r}"
        )
    return _weights.register(
        _weights.WeightEntry(
            model=name,
            tag=tag,
            filename=_weights.weight_filename(name, tag),
            sha256=sha256,
            description=description,
            builder_kwargs=dict(builder_kwargs or {}),
            url=url,
        )
    )


def unregister_weights(name, tag):
    """Removes a weight tag added by `register_weights` (used by tests)."""
    _weights.unregister(name, tag)


def list_models(pattern="*", pretrained=False):
    """Names of the registered models matching a shell-style pattern, sorted.

    Args:
        pattern: str. `fnmatch` pattern, e.g. `"*unet*"` or `"coordgate_*"`.
        pretrained: bool. Only models with published weights.

    Returns:
        A sorted list of model names.

    Example:

    >>> from coordgate_keras.zoo import list_models
    >>> list_models("unet_d*")
    ['unet_d1', 'unet_d2', 'unet_d3', 'unet_d4', 'unet_d5']
    """
    av.string(pattern, "pattern")
    return sorted(
        name
        for name in _MODELS
        if fnmatch.fnmatchcase(name, pattern)
        and (not pretrained or _weights.tags(name))
    )


def create_model(name, /, input_shape=None, weights=None, **overrides):
    """Builds a registered model.

    Args:
        name: str. Registered model name (see `list_models()`).
        input_shape: tuple or None. Input shape without the batch axis, e.g.
            `(256, 256, 1)` or `(None, None, 3)`. `None` uses the builder's
            default.
        weights: str or None. `None` for random initialisation, or a weight tag
            listed in `model_info(name).weights`.
        **overrides: keyword arguments for the family's builder (e.g.
            `base_filters=32`, `normalization="batch"`, or `name`, which
            defaults to the registered name).

    Returns:
        A `keras.Model`.

    Example:

    >>> from coordgate_keras.zoo import create_model
    >>> model = create_model("coordgate_unet_d2", input_shape=(64, 64, 1))
    """
    entry = _get_entry(name)
    weight_entry = None
    if weights is not None:
        weight_entry = _weights.get_entry(name, weights)
        # The weights' builder arguments are the defaults; a conflicting
        # override is caught by the architecture check below.
        overrides = {**weight_entry.builder_kwargs, **overrides}
    if input_shape is not None:
        overrides["input_shape"] = input_shape  # Checked by the builder.
    overrides.setdefault("name", name)
    try:
        model = entry.fn(**overrides)
    except TypeError as error:
        known = _unknown_keyword(error, name, overrides)
        if known is None:
            raise
        raise known from None
    _weights.note_builder(
        model, name, {k: v for k, v in overrides.items() if k != "name"}
    )
    if weight_entry is not None:
        _weights.load(model, weights, name=name)
    return model


def load_weights(model, tag, name=None, base_url=None, cache_dir=None):
    """Loads published weights into a model, after checking that they fit.

    The check compares the model with the architecture recorded in the
    weights' metadata (layer types and their configuration, weight shapes), so
    weights made for other builder arguments are refused with the first
    difference named, before anything is loaded.

    Args:
        model: a `keras.Model`, e.g. from `create_model(name)`.
        tag: str. Weight tag (`model_info(name).weights`).
        name: str or None. Registered model name of the weights; defaults to
            the name given to `create_model`, else `model.name`.
        base_url: str or None. Download base URL (over
            `$COORDGATE_KERAS_WEIGHTS_URL`).
        cache_dir: str or None. Cache root (default: Keras' cache).

    Returns:
        `model`, with the weights loaded.

    Example:

    >>> from coordgate_keras.zoo import create_model, load_weights
    >>> model = create_model("coordgate_unet_d2", residual=True)
    >>> load_weights(model, "zernike_256")  # doctest: +SKIP
    """
    return _weights.load(model, tag, name=name, base_url=base_url, cache_dir=cache_dir)


def weights_info(name, tag):
    """The published weights of model `name` under `tag`.

    Args:
        name: str. Registered model name.
        tag: str. Weight tag, as in `create_model(name, weights=tag)`.

    Returns:
        A `WeightEntry`: file name, SHA-256, the builder arguments the weights
        were trained with and the sidecar's metadata (`recipe`, held-out
        `metrics`, input size, value range, versions).

    Example:

    >>> from coordgate_keras.zoo import weights_info
    >>> info = weights_info("coordgate_unet_d2", "zernike_256")
    >>> info.metadata["recipe"]["model"]
    'coordgate_unet_d2'
    """
    _get_entry(name)
    return _weights.get_entry(name, tag)


def model_info(name):
    """Describes a registered model.

    The parameter count is computed once per model by building it at its
    reference input shape without allocating weights.

    Args:
        name: str. Registered model name.

    Returns:
        A `ModelInfo`.

    Example:

    >>> from coordgate_keras.zoo import model_info
    >>> model_info("unet_d2").family
    'unet'
    """
    entry = _get_entry(name)
    return ModelInfo(
        name=name,
        family=entry.family,
        depth=entry.depth,
        description=entry.description,
        reference_input_shape=entry.reference_input_shape,
        num_params=_count_params(name),
        weights=tuple(_weights.tags(name)),
    )


def build_uninitialized(name, input_shape=None, **overrides):
    """Builds a model whose variables are never initialised (shapes only).

    Cheap even for 100M-parameter models: good for counting parameters and
    reading layer shapes, useless for running the model.
    """
    entry = _get_entry(name)
    input_shape = input_shape or entry.reference_input_shape
    # Keras queues variables created in a stateless scope and initialises the
    # queue when the next stateless scope closes (every symbolic call opens
    # one). Restore the queue so these shape-only variables never get values.
    queue = global_state.get_global_attribute("uninitialized_variables")
    queue = list(queue) if queue else []
    try:
        with keras.StatelessScope(initialize_variables=False):
            return create_model(name, input_shape=input_shape, **overrides)
    finally:
        global_state.set_global_attribute("uninitialized_variables", queue)


@functools.cache
def _count_params(name):
    return build_uninitialized(name).count_params()


def _unknown_keyword(error, name, overrides):
    """The argument error for a keyword the builder of `name` does not take,
    or None when `error` is another `TypeError`."""
    match = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    frames = traceback.extract_tb(error.__traceback__)
    # Raised by the call into the builder, not somewhere inside it.
    if match is None or frames[-1].name not in ("create_model", name):
        return None
    key = match[1]
    return av.invalid_value(
        overrides.get(key),
        key,
        f"a keyword argument of the `{name}` builder (`{key}` is not one; "
        f"see help(coordgate_keras.zoo.{_entry_module(name)}))",
        received=f"{key}={overrides.get(key)!r}",
    )


def _entry_module(name):
    """The zoo module that defines model `name`, e.g. `unet`."""
    return _MODELS[name].fn.__module__.rpartition(".")[2]


def _get_entry(name):
    if name in _MODELS:
        return _MODELS[name]
    close = difflib.get_close_matches(str(name), list(_MODELS), n=5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"Unknown model name: {name!r}.{hint} Registered models: "
        f"{', '.join(list_models())}."
    )
