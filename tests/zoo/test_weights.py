"""Pretrained weights: packaged files, the cache, downloads from 127.0.0.1, checks."""

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import threading
import time

import keras
import numpy as np
import pytest

from coordgate_keras.zoo import (
    WeightsError,
    _registry,
    _weights,
    create_model,
    list_models,
    load_weights,
    model_info,
    register_weights,
)

PACKAGED = _weights.entries()
# The real file the server tests serve: the smallest packaged one.
SERVED = min(PACKAGED, key=lambda e: e.metadata["size_bytes"]) if PACKAGED else None
needs_packaged = pytest.mark.skipif(
    not PACKAGED, reason="no packaged weights in this checkout"
)


# === A weight server on 127.0.0.1 ===


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            # Announces the whole file, sends half, closes: an interrupted
            # transfer as the client sees it.
            path = os.path.join(self.directory, self.path.split("/", 2)[2])
            with open(path, "rb") as f:
                payload = f.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@contextlib.contextmanager
def serve(directory):
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def remote(tmp_path, monkeypatch):
    """The smallest packaged weight file, registered again under a tag that is
    not packaged (so it must be downloaded), with a private cache."""
    if SERVED is None:
        pytest.skip("no packaged weights in this checkout")
    site = tmp_path / "site"
    site.mkdir()
    tag = "remote_test"
    filename = _weights.weight_filename(SERVED.model, tag)
    shutil.copy(SERVED.packaged_path, site / filename)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(_weights.WEIGHTS_URL_ENV, raising=False)
    entry = register_weights(
        SERVED.model,
        tag,
        sha256=SERVED.sha256,
        builder_kwargs=SERVED.builder_kwargs,
    )
    # The packaged sidecar's architecture applies to the same file.
    _weights._ENTRIES[SERVED.model][tag] = entry = _weights.dataclasses.replace(
        entry, metadata=SERVED.metadata
    )
    yield entry, site
    _registry.unregister_weights(SERVED.model, tag)


def open_text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _cache_file(entry):
    return _weights.cache_path(entry)


def _cache_litter(entry):
    folder = os.path.dirname(_cache_file(entry))
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


# === Packaged weights ===


@needs_packaged
def test_published_models_are_listed_with_their_tags():
    names = list_models(pretrained=True)
    assert names == sorted({e.model for e in PACKAGED})
    for entry in PACKAGED:
        assert entry.tag in model_info(entry.model).weights
    assert "unet_d5" not in names


@needs_packaged
@pytest.mark.parametrize("entry", PACKAGED, ids=lambda e: f"{e.model}-{e.tag}")
def test_packaged_file_matches_the_registry_and_its_sidecar(entry):
    with open(entry.packaged_path, "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == entry.sha256
    meta = entry.metadata
    assert meta["sha256"] == entry.sha256 and meta["size_bytes"] == len(data)
    assert meta["model"] == entry.model and meta["tag"] == entry.tag
    assert meta["builder_kwargs"] == entry.builder_kwargs
    for key in (
        "recipe",
        "steps",
        "metrics",
        "input_size",
        "value_range",
        "keras_version",
        "package_version",
        "backend",
    ):
        assert key in meta, key
    metrics = meta["metrics"]
    for key in ("psnr", "ssim", "psnr_blurred", "ssim_blurred"):
        assert np.isfinite(metrics[key]), key
    assert metrics["psnr"] > metrics["psnr_blurred"]
    assert meta["recipe"]["model"] == entry.model


@needs_packaged
def test_packaged_weights_load_offline(monkeypatch, tmp_path):
    # No server, an empty cache and a download URL that cannot work.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv(_weights.WEIGHTS_URL_ENV, f"http://127.0.0.1:{_free_port()}")
    entry = SERVED
    model = create_model(entry.model, weights=entry.tag)
    reference = create_model(entry.model, **entry.builder_kwargs)
    reference.load_weights(entry.packaged_path)
    for a, b in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )
    assert not os.listdir(tmp_path)


def test_unknown_tag_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match=(
            r"Invalid value for argument `weights`. Expected None \(no weights are "
            r"published for model `unet_d5` yet\). Received: weights='imagenet'"
        ),
    ):
        create_model("unet_d5", weights="imagenet")
    if PACKAGED:
        entry = PACKAGED[0]
        with pytest.raises(
            ValueError, match=rf"Expected None or one of '{entry.tag}'.*weights='nope'"
        ):
            create_model(entry.model, weights="nope")


@needs_packaged
def test_weights_for_other_builder_arguments_are_refused():
    entry = SERVED
    base = entry.metadata["architecture"]["layers"]
    filters = next(cfg["filters"] for cls, cfg in base if cls == "Conv2D")
    with pytest.raises(
        WeightsError,
        match=(
            rf"Weights `{entry.tag}` of model `{entry.model}` do not fit this "
            rf"model: layer \d+ \(Conv2D\) has filters={filters // 2}, the weights' "
            rf"model filters={filters}"
        ),
    ):
        create_model(entry.model, weights=entry.tag, base_filters=filters // 2)
    # Same shapes, other computation: the residual connection.
    other = create_model(entry.model, **{**entry.builder_kwargs, "residual": False})
    with pytest.raises(WeightsError, match="do not fit this model"):
        load_weights(other, entry.tag)
    # Another architecture altogether.
    with pytest.raises(WeightsError, match="layers"):
        load_weights(create_model("unet_d1"), entry.tag, name=entry.model)


@needs_packaged
def test_weights_load_whatever_the_initializers():
    # Initializers do not decide whether weights fit: loading replaces them.
    entry = SERVED
    model = create_model(entry.model, weights=entry.tag, output_initializer="zeros")
    reference = create_model(entry.model, weights=entry.tag)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


# === Downloads (served from 127.0.0.1) ===


def test_first_call_downloads_second_uses_the_cache(remote):
    entry, site = remote
    with serve(site) as (server, url):
        path = _weights.resolve(entry.model, entry.tag, base_url=url)
        assert server.requests == [f"/{entry.filename}"]
        assert path == _cache_file(entry)
        again = _weights.resolve(entry.model, entry.tag, base_url=url)
        assert again == path and len(server.requests) == 1
    assert _cache_litter(entry) == [entry.filename]


def test_environment_override_and_offline_cache(remote, monkeypatch):
    entry, site = remote
    with serve(site) as (server, url):
        monkeypatch.setenv(_weights.WEIGHTS_URL_ENV, url + "/")
        model = create_model(entry.model, weights=entry.tag)
        assert server.requests == [f"/{entry.filename}"]
    # Server gone: the verified cache serves the next call.
    again = create_model(entry.model, weights=entry.tag)
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )


def test_file_url_works(remote):
    entry, site = remote
    path = _weights.resolve(entry.model, entry.tag, base_url=site.as_uri())
    assert _weights.sha256_of(path) == entry.sha256


def test_wrong_hash_is_refused_and_nothing_is_cached(remote):
    entry, site = remote
    with open(site / entry.filename, "r+b") as f:
        f.seek(100)
        f.write(b"\x00corrupt\x00")
    actual = _weights.sha256_of(site / entry.filename)
    with serve(site) as (_, url):
        with pytest.raises(
            WeightsError,
            match=(
                rf"Downloaded weight file {entry.filename} \(from {url}/"
                rf"{entry.filename}\) has the wrong SHA-256: expected "
                rf"{entry.sha256}, got {actual}"
            ),
        ):
            _weights.resolve(entry.model, entry.tag, base_url=url)
    assert _cache_litter(entry) == []


def test_404_names_the_url_and_the_override(remote):
    entry, site = remote
    os.remove(site / entry.filename)
    with serve(site) as (_, url):
        with pytest.raises(
            WeightsError,
            match=(
                rf"Could not download weights `{entry.tag}` of model "
                rf"`{entry.model}` from {url}/{entry.filename}: .*404.*"
                rf"\${_weights.WEIGHTS_URL_ENV}"
            ),
        ):
            _weights.resolve(entry.model, entry.tag, base_url=url)
    assert _cache_litter(entry) == []


def test_unreachable_host_names_the_url(remote):
    entry, _ = remote
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(
        WeightsError,
        match=rf"from {url}/{entry.filename}: .*{_weights.WEIGHTS_URL_ENV}",
    ):
        _weights.resolve(entry.model, entry.tag, base_url=url)


def test_truncated_download_leaves_nothing_trusted(remote):
    entry, site = remote
    with serve(site) as (_, url):
        with pytest.raises(WeightsError):
            _weights.resolve(entry.model, entry.tag, base_url=url + "/truncated")
    assert _cache_litter(entry) == []
    # A half file left at the cache path by a killed process is not trusted:
    # the next call downloads again.
    cached = _cache_file(entry)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    with open(cached, "wb") as f:
        f.write((site / entry.filename).read_bytes()[:1000])
    with serve(site) as (server, url):
        path = _weights.resolve(entry.model, entry.tag, base_url=url)
        assert server.requests == [f"/{entry.filename}"]
    assert _weights.sha256_of(path) == entry.sha256


def test_staging_left_by_a_killed_download_is_removed_later(remote):
    entry, site = remote
    folder = os.path.dirname(_cache_file(entry))
    os.makedirs(folder)
    stale = os.path.join(folder, ".download-killed")
    fresh = os.path.join(folder, ".download-running")
    for path in (stale, fresh):
        os.makedirs(path)
        with open(os.path.join(path, entry.filename), "wb") as f:
            f.write(b"half a file")
    day_ago = time.time() - _weights.STALE_STAGING_SECONDS - 60
    os.utime(stale, (day_ago, day_ago))
    with serve(site) as (_, url):
        _weights.resolve(entry.model, entry.tag, base_url=url)
    # The old one goes; one young enough to be another process's download stays.
    assert _cache_litter(entry) == [".download-running", entry.filename]


def test_no_location_configured_says_how_to_set_one(remote):
    entry, _ = remote
    with pytest.raises(
        WeightsError,
        match=rf"not packaged and not in the cache .* Pass `base_url=` or set "
        rf"\${_weights.WEIGHTS_URL_ENV}",
    ):
        _weights.resolve(entry.model, entry.tag)


def test_register_weights_checks_the_hash_format():
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `sha256`. Expected 64 lowercase hex "
        r"digits. Received: sha256='abc'",
    ):
        register_weights("unet_d1", "x", "file:///x", "abc")


def test_write_then_load_round_trip(tmp_path, monkeypatch):
    """`_weights.write` makes a file + sidecar that `load_weights` accepts."""
    model = create_model("coordgate_unet_d1", base_filters=4, residual=True)
    weights, sidecar, meta = _weights.write(
        model,
        tmp_path,
        "coordgate_unet_d1",
        "tiny",
        {"base_filters": 4, "residual": True},
        {"recipe": {"model": "coordgate_unet_d1"}},
    )
    assert json.loads(open_text(sidecar)) == meta
    assert meta["sha256"] == _weights.sha256_of(weights)
    assert [f for f in os.listdir(tmp_path) if f.startswith(".")] == []
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    entry = _weights.register(
        _weights.WeightEntry(
            "coordgate_unet_d1",
            "tiny",
            os.path.basename(weights),
            meta["sha256"],
            builder_kwargs={"base_filters": 4, "residual": True},
            metadata=meta,
        )
    )
    try:
        fresh = create_model("coordgate_unet_d1", base_filters=4, residual=True)
        load_weights(fresh, "tiny", base_url=tmp_path.as_uri())
        x = np.random.default_rng(0).random((1, 16, 16, 1), dtype="float32")
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(fresh(x)), keras.ops.convert_to_numpy(model(x))
        )
        with pytest.raises(
            WeightsError, match="filters=8, the weights' model filters=4"
        ):
            create_model("coordgate_unet_d1", weights="tiny", base_filters=8)
    finally:
        _weights.unregister("coordgate_unet_d1", "tiny")
    assert entry.filename == "coordgate_unet_d1_tiny.weights.h5"


@pytest.mark.slow
@needs_packaged
def test_packaged_weights_reproduce_their_sidecar_metrics():
    """Loaded on this machine, the smallest published model scores what its
    sidecar says on the recipe's held-out set (the sidecar was measured on the
    GPU that trained it)."""
    from coordgate_keras import training

    entry = SERVED
    cfg = training.TrainConfig.from_dict(entry.metadata["recipe"])
    blurred, sharp = training.heldout_data(cfg)
    model = create_model(entry.model, weights=entry.tag)
    scores = training.evaluate(model, blurred, sharp)
    expected = entry.metadata["metrics"]
    assert scores["psnr_blurred"] == pytest.approx(expected["psnr_blurred"], abs=1e-3)
    assert scores["psnr"] == pytest.approx(expected["psnr"], abs=0.05)
    assert scores["ssim"] == pytest.approx(expected["ssim"], abs=1e-3)


@needs_packaged
def test_weights_table_columns_fit_the_longest_tag():
    from coordgate_keras.zoo.weights_cli import format_weights_table

    lines = format_weights_table(PACKAGED).splitlines()
    where = lines[0].index("where")
    assert all(line.index("packaged") == where for line in lines[1:])
    params_end = lines[0].index("params") + len("params")
    for line, entry in zip(lines[1:], PACKAGED):
        assert line[:params_end].endswith(f"{entry.metadata['num_params']:,}")


def test_damaged_cached_file_is_named_as_damaged(remote):
    entry, site = remote
    cached = _cache_file(entry)
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    with open(cached, "wb") as f:
        f.write(b"torn")
    with pytest.raises(
        WeightsError,
        match=rf"The cached weight file .*{entry.filename} of model `{entry.model}` "
        rf"tag `{entry.tag}` is damaged \(SHA-256 [0-9a-f]{{64}}, expected "
        rf"{entry.sha256}\); delete it and pass `base_url=`",
    ):
        _weights.resolve(entry.model, entry.tag)
    with pytest.raises(WeightsError, match=r"is damaged .*or allow downloading"):
        _weights.resolve(entry.model, entry.tag, base_url="http://x", download=False)
    # A download replaces it.
    assert _weights.resolve(entry.model, entry.tag, base_url=site.as_uri()) == cached
    assert _weights.sha256_of(cached) == entry.sha256


def test_weights_of_an_unknown_model_name_the_model():
    with pytest.raises(ValueError, match=r"Unknown model name: 'unet_d9'"):
        _weights.get_entry("unet_d9", "zernike_256")


@needs_packaged
def test_weights_info_is_the_published_entry():
    from coordgate_keras.zoo import weights_info

    entry = PACKAGED[0]
    info = weights_info(entry.model, entry.tag)
    assert info.sha256 == entry.sha256 and info.filename == entry.filename
    assert info.metadata["recipe"] == entry.metadata["recipe"]
    with pytest.raises(ValueError, match=r"Unknown model name: 'unet_d9'"):
        weights_info("unet_d9", entry.tag)
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `weights`. Expected None or one of .*"
        r"Received: weights='nope'",
    ):
        weights_info(entry.model, "nope")
