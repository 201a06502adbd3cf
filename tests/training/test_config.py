import json
import pathlib
import re

import pytest
import yaml

from coordgate_keras.training import TrainConfig, list_recipes, load_config
from coordgate_keras.training import config as config_lib


def test_defaults_are_the_measured_h100_setting():
    cfg = TrainConfig()
    assert cfg.model == "coordgate_unet_d2"
    assert cfg.model_kwargs == {"residual": True}
    assert cfg.image_size == 128 and cfg.batch_size == 16 and cfg.steps == 1500
    assert cfg.psf == {"kind": "zernike", "grid_shape": [8, 8], "kernel_size": 31}
    assert cfg.noise == {
        "photons_range": [100.0, 1000.0],
        "read_noise_range": [0.0, 0.02],
    }
    assert (cfg.optimizer, cfg.learning_rate, cfg.schedule, cfg.loss) == (
        "adam",
        1e-3,
        "cosine",
        "mse",
    )
    assert (cfg.precision, cfg.xla, cfg.strategy, cfg.simulator) == (
        "float32",
        "auto",
        "auto",
        "auto",
    )


def test_defaults_are_not_shared_between_instances():
    a, b = TrainConfig(), TrainConfig()
    a.model_kwargs["base_filters"] = 8
    assert b.model_kwargs == {"residual": True}


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_file_round_trip(tmp_path, suffix):
    cfg = TrainConfig(
        model="unet_d3",
        model_kwargs={"residual": False, "base_filters": 8},
        image_size=[64, 96],
        noise=None,
        learning_rate=3e-4,
        precision="mixed_bfloat16",
    )
    path = tmp_path / f"cfg{suffix}"
    cfg.save(path)
    assert TrainConfig.from_file(path) == cfg
    assert load_config(str(path)) == cfg


def test_to_dict_is_json():
    cfg = TrainConfig()
    assert json.loads(json.dumps(cfg.to_dict())) == cfg.to_dict()
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_replace_validates():
    cfg = TrainConfig().replace(steps=100, precision="mixed_bfloat16")
    assert (cfg.steps, cfg.precision) == (100, "mixed_bfloat16")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `steps`. Expected a positive integer. Received: steps=0",
    ):
        cfg.replace(steps=0)


def test_override_dotted_and_yaml_values():
    cfg = TrainConfig().override(
        [
            "steps=100",
            "model_kwargs.base_filters=16",
            "psf.kernel_size=15",
            "psf.grid_shape=[4, 4]",
            "learning_rate=1e-3",
            "noise.read_noise_range=[0, 0.01]",
            "deterministic=true",
        ]
    )
    assert cfg.steps == 100
    assert cfg.model_kwargs == {"residual": True, "base_filters": 16}
    assert cfg.psf == {"kind": "zernike", "grid_shape": [4, 4], "kernel_size": 15}
    assert cfg.learning_rate == 1e-3 and isinstance(cfg.learning_rate, float)
    assert cfg.noise["read_noise_range"] == [0, 0.01]
    assert cfg.deterministic is True
    assert TrainConfig().override(["noise=null"]).noise is None


def test_yaml_file_reads_exponent_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-4\nsteps: 10\n")
    cfg = TrainConfig.from_file(path)
    assert cfg.learning_rate == 1e-4 and cfg.steps == 10


def test_unknown_key_names_key_and_valid_keys(tmp_path):
    msg = r"Invalid value for argument `config`. Expected keys among model, model_kwargs, .*log_every \(did you mean 'steps'\?\). Received: unknown key 'stepz'"
    with pytest.raises(ValueError, match=msg):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match=msg):
        TrainConfig().override(["stepz=3"])
    with pytest.raises(ValueError, match=msg):
        TrainConfig().replace(stepz=3)
    path = tmp_path / "c.json"
    path.write_text('{"stepz": 3}')
    with pytest.raises(ValueError, match=msg):
        TrainConfig.from_file(path)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"model": "unet_d9"},
            r"Invalid value for argument `model`. Expected a registered model name.*Received: model='unet_d9'",
        ),
        (
            {"model_kwargs": {"input_shape": [8, 8, 1]}},
            r"Invalid value for argument `model_kwargs`. Expected builder arguments without `input_shape` \(set `image_size`\)",
        ),
        (
            {"data": "lmdb:x"},
            r"Invalid value for argument `data`. Expected 'sim', 'folder:PATH' or 'dataset:PATH'. Received: data='lmdb:x'",
        ),
        (
            {"eval_data": "sim"},
            r"Invalid value for argument `eval_data`. Expected None, 'folder:PATH' or 'dataset:PATH'. Received: eval_data='sim'",
        ),
        (
            {"image_size": 0},
            r"Invalid value for argument `image_size`. Expected a positive integer. Received: image_size=0",
        ),
        (
            {"image_size": [1, 2, 3]},
            r"Invalid value for argument `image_size`. Expected a positive integer or \[height, width\]",
        ),
        (
            {"psf": {"kind": "airy"}},
            r"Invalid value for argument `psf.kind`. Expected one of 'zernike', 'gaussian', 'file', 'varying_gaussian_1d'. Received: psf.kind='airy'",
        ),
        (
            {"psf": {"kind": "zernike", "sigma": 2}},
            r"Invalid value for argument `psf`. Expected keys among kind, grid_shape, kernel_size, airy_radius.*Received: unknown key 'sigma'",
        ),
        (
            {"psf": {"kind": "file"}},
            r"Invalid value for argument `psf`. Expected a 'path' to a PSFField .npz file",
        ),
        (
            {"noise": {"photons": 3}},
            r"Invalid value for argument `noise`. Expected keys among photons_range, read_noise_range, clip",
        ),
        (
            {"batch_size": 1.5},
            r"Invalid value for argument `batch_size`. Expected a positive integer. Received: batch_size=1.5",
        ),
        (
            {"seed": -1},
            r"Invalid value for argument `seed`. Expected a non-negative integer. Received: seed=-1",
        ),
        (
            {"warmup_steps": 1500},
            r"Invalid value for argument `warmup_steps`. Expected fewer warm-up steps than `steps` \(1500\). Received: warmup_steps=1500",
        ),
        (
            {"learning_rate": 0.0},
            r"Invalid value for argument `learning_rate`. Expected a positive number. Received: learning_rate=0.0",
        ),
        (
            {"weight_decay": -1e-4},
            r"Invalid value for argument `weight_decay`. Expected a non-negative number",
        ),
        (
            {"optimizer": "sgd"},
            r"Invalid value for argument `optimizer`. Expected one of 'adam', 'adamw'. Received: optimizer='sgd'",
        ),
        (
            {"schedule": "step"},
            r"Invalid value for argument `schedule`. Expected one of 'cosine', 'constant'",
        ),
        (
            {"loss": "ssim"},
            r"Invalid value for argument `loss`. Expected one of 'mse', 'l1', 'l1_ssim'. Received: loss='ssim'",
        ),
        (
            {"precision": "float16"},
            r"Invalid value for argument `precision`. Expected one of 'float32', 'mixed_bfloat16', 'mixed_float16'",
        ),
        (
            {"xla": True},
            r"Invalid value for argument `xla`. Expected one of 'auto', 'on', 'off'. Received: xla=True",
        ),
        (
            {"strategy": "tpu"},
            r"Invalid value for argument `strategy`. Expected one of 'auto', 'none', 'mirrored', 'multi_worker', 'data_parallel'",
        ),
        (
            {"simulator": "gpu"},
            r"Invalid value for argument `simulator`. Expected one of 'auto', 'host', 'device'",
        ),
        (
            {"deterministic": "yes"},
            r"Invalid value for argument `deterministic`. Expected True or False. Received: deterministic='yes'",
        ),
        (
            {"checkpoint_every": 0},
            r"Invalid value for argument `checkpoint_every`. Expected a positive integer",
        ),
        (
            {"data_options": {"colour": "rgb"}},
            r"Invalid value for argument `data_options`. Expected keys among color_mode, normalization, recursive",
        ),
    ],
)
def test_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_bad_assignment_and_suffix(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `assignment`. Expected the form key=value. Received: assignment='steps'",
    ):
        TrainConfig().override(["steps"])
    with pytest.raises(
        ValueError,
        match=r"Expected a dotted key only for a dict field \(`steps` is int\)",
    ):
        TrainConfig().override(["steps.x=1"])
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `path`. Expected a .json, .yaml or .yml file. Received: path=",
    ):
        TrainConfig().save(tmp_path / "x.toml")
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `path_or_recipe`. Expected an existing .json/.yaml file or a recipe name, one of 'coordconv_unet_d2'",
    ):
        load_config("no_such_recipe")


def test_diff_names_fields():
    a = TrainConfig()
    b = a.replace(steps=10, psf={"kind": "gaussian"})
    assert a.diff(b) == ["psf", "steps"]


# recipe -> (model, model_kwargs, precision, xla). `unet_d3_w16` is the CPU-sized
# deeper plain U-Net (float32 without XLA: bfloat16 and XLA are slow on CPUs).
EXPECTED_RECIPES = {
    "coordconv_unet_d2": ("coordconv_unet_d2", {}, "mixed_bfloat16", "auto"),
    "coordgate_unet_d1": ("coordgate_unet_d1", {}, "mixed_bfloat16", "auto"),
    "coordgate_unet_d2": ("coordgate_unet_d2", {}, "mixed_bfloat16", "auto"),
    "unet_d2": ("unet_d2", {}, "mixed_bfloat16", "auto"),
    "unet_d3": ("unet_d3", {}, "mixed_bfloat16", "auto"),
    "unet_d3_w16": ("unet_d3", {"base_filters": 16}, "float32", "off"),
}


def test_recipes_are_complete_and_match_the_published_setting():
    assert list_recipes() == sorted(EXPECTED_RECIPES)
    for name, (model, kwargs, precision, xla) in EXPECTED_RECIPES.items():
        cfg = load_config(name)
        assert cfg.model == model
        assert cfg.image_size == 256 and cfg.batch_size == 16 and cfg.steps == 1500
        assert (cfg.optimizer, cfg.learning_rate, cfg.schedule, cfg.loss) == (
            "adam",
            1e-3,
            "cosine",
            "mse",
        )
        assert cfg.model_kwargs == {"residual": True, **kwargs}
        assert (cfg.precision, cfg.xla, cfg.seed) == (precision, xla, 0)
        assert cfg.psf == config_lib.DEFAULT_PSF
        assert cfg.noise == config_lib.DEFAULT_NOISE

    # A complete config: every field is written in a recipe or in what it
    # extends, and a recipe holds only what differs from its base.
    def read(name):
        with open(f"{config_lib.RECIPES_DIR}/{name}.yaml") as f:
            return yaml.safe_load(f)

    base = read("_base")
    assert "extends" not in base
    assert sorted(base) == sorted(set(TrainConfig.field_names()) - {"model"})
    for name in EXPECTED_RECIPES:
        recipe = read(name)
        parent = recipe.pop("extends")
        parent_values = (
            base if parent == "_base.yaml" else load_config(parent).to_dict()
        )
        assert recipe, name
        for key, value in recipe.items():
            assert value != parent_values.get(key), (name, key)


def test_every_packaged_weight_file_was_trained_from_a_recipe():
    # The sidecars record the config each published weight file was trained with
    # (fields added since then at their defaults): every one is a packaged recipe,
    # resolved through its `extends`.
    sidecars = sorted(
        pathlib.Path(config_lib.__file__).parents[1].glob("zoo/weights/*.json")
    )
    recipes = [load_config(name) for name in list_recipes()]
    assert sidecars
    for path in sidecars:
        recipe = TrainConfig.from_dict(json.loads(path.read_text())["recipe"])
        assert recipe in recipes, path.name


def test_the_shared_base_is_not_a_recipe():
    assert "_base" not in list_recipes()
    with pytest.raises(ValueError, match=r"Received: path_or_recipe='_base'"):
        load_config("_base")


def _write(path, text):
    path.write_text(text)
    return path


def test_extends_merges_dict_fields_key_by_key(tmp_path):
    _write(
        tmp_path / "base.yaml",
        "model: unet_d2\n"
        "model_kwargs: {residual: true, base_filters: 16}\n"
        "psf: {kind: zernike, grid_shape: [8, 8], kernel_size: 31}\n"
        "noise: {photons_range: [100.0, 1000.0], clip: true}\n"
        "image_size: [64, 96]\n"
        "steps: 300\n"
        "seed: 3\n",
    )
    (tmp_path / "runs").mkdir()
    child = _write(
        tmp_path / "runs" / "child.yaml",
        "extends: ../base.yaml\n"
        "model_kwargs: {base_filters: 8}\n"
        "psf: {kernel_size: 15}\n"
        "image_size: [32]\n"
        "steps: 100\n",
    )
    cfg = load_config(str(child))
    # Dicts: the child's keys over the base's; the rest from the base.
    assert cfg.model_kwargs == {"residual": True, "base_filters": 8}
    assert cfg.psf == {"kind": "zernike", "grid_shape": [8, 8], "kernel_size": 15}
    assert cfg.noise == {"photons_range": [100.0, 1000.0], "clip": True}
    # Other values (lists too) replace the base's; unset ones come from the base.
    assert (cfg.image_size, cfg.steps, cfg.seed, cfg.model) == ([32], 100, 3, "unet_d2")
    # A grandchild in JSON, naming its base by a path relative to its own folder.
    grandchild = _write(
        tmp_path / "g.json",
        json.dumps(
            {
                "extends": "runs/child.yaml",
                "noise": None,
                "psf": {"kind": "gaussian", "grid_shape": [2, 2]},
            }
        ),
    )
    cfg = TrainConfig.from_file(grandchild)
    assert cfg.noise is None
    # Another `kind` starts the dict afresh (as `override` does).
    assert cfg.psf == {"kind": "gaussian", "grid_shape": [2, 2]}
    assert cfg.model_kwargs == {"residual": True, "base_filters": 8}


def test_a_config_file_extends_a_recipe_by_name(tmp_path):
    path = _write(tmp_path / "mine.yaml", "extends: unet_d3_w16\nsteps: 20\n")
    assert load_config(path) == load_config("unet_d3_w16").replace(steps=20)


def test_extends_cycle_and_unknown_base_are_refused(tmp_path):
    a = _write(tmp_path / "a.yaml", "extends: b.yaml\nsteps: 1\n")
    b = _write(tmp_path / "b.yaml", "extends: a.yaml\n")
    ra, rb = re.escape(str(a)), re.escape(str(b))
    with pytest.raises(
        ValueError,
        match=r"Invalid value for argument `extends`. Expected a base that does not "
        rf"extend this file in turn. Received: a cycle of `extends`: {ra} -> {rb} -> {ra}$",
    ):
        load_config(a)
    c = _write(tmp_path / "c.yaml", "extends: c.yml\n")
    _write(tmp_path / "c.yml", "extends: c.yaml\n")
    with pytest.raises(ValueError, match=r"a cycle of `extends`: .*c.yaml -> .*c.yml"):
        load_config(c)
    me = _write(tmp_path / "me.yaml", "extends: me.yaml\n")
    rme = re.escape(str(me))
    with pytest.raises(ValueError, match=rf"a cycle of `extends`: {rme} -> {rme}$"):
        load_config(me)
    for base in ("no_such_recipe", "missing.yaml", "_base", "null"):
        path = _write(tmp_path / "d.yaml", f"extends: {base}\n")
        with pytest.raises(
            ValueError,
            match=r"Invalid value for argument `extends`. Expected a recipe name \(one "
            r"of 'coordconv_unet_d2', .*\) or an existing .json/.yaml/.yml file "
            rf"\(relative to {re.escape(str(tmp_path))}\). Received: extends=.* "
            rf"in {re.escape(str(path))}$",
        ):
            load_config(path)
    with pytest.raises(ValueError, match=r"`extends` is read from config files"):
        TrainConfig.from_dict({"extends": "unet_d2"})
