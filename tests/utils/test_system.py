"""`utils.system.environment`: the one record benchmarks and sidecars store."""

import json
import os

import keras

from coordgate_keras.utils import system


def test_environment_is_json_ready_and_agrees_with_its_parts():
    env = system.environment()
    assert json.loads(json.dumps(env)) == env
    assert env["cpu_model"] == system.cpu_model()
    assert env["cpus_usable"] == system.usable_cpus() <= os.cpu_count()
    assert env["gpus"] == system.accelerators()
    assert env["backend"] == keras.backend.backend()
    assert env["keras"] == keras.__version__
    expected = ", ".join(env["gpus"]) or (
        f"CPU: {env['cpu_model']}, {env['cpus_usable']} cores"
    )
    assert env["hardware"] == expected
    assert len(env["load_average_at_start"]) == 3
