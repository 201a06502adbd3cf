import sys

import pytest

from coordgate_keras.utils import native_logs

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written "
    "to STDERR\n",
    "I0000 00:00:1795716995.728069    6114 port.cc:153] oneDNN custom operations "
    "are on.\n",
    "I0000 00:00:1795716995.728580    6114 cudart_stub.cc:31] Could not find cuda "
    "drivers on your machine, GPU will not be used.\n",
    "W0000 00:00:1795716995.865256    6114 tf_tfl_flatbuffer_helpers.cc:365] "
    "Ignored output_format.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.\n",
    "E0000 00:00:1795717051.063776    6616 cuda_platform.cc:52] failed call to "
    "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    "fully_quantize: 0, inference_type: 6, input_inference_type: INT8, "
    "output_inference_type: INT8\n",
]
KEPT = [
    "E0000 00:00:1795717051.063776    6616 some_op.cc:52] Out of memory\n",
    "/path/module.py:3: UserWarning: something the user should see\n",
    "Traceback (most recent call last):\n",
]


def test_is_noise():
    assert all(native_logs.is_noise(line) for line in NOISE)
    assert not any(native_logs.is_noise(line) for line in KEPT)


def _write(fd_text):
    import os

    os.write(2, fd_text.encode())


def test_filtered_stderr_drops_noise_and_keeps_the_rest(capfd, monkeypatch):
    monkeypatch.delenv("COORDGATE_KERAS_VERBOSE", raising=False)
    with native_logs.filtered_stderr():
        _write("".join(NOISE + KEPT))
        print("python-level warning", file=sys.stderr)
    err = capfd.readouterr().err
    # (Under capfd, Python's sys.stderr bypasses descriptor 2: order may differ.)
    assert sorted(err.splitlines(keepends=True)) == sorted(
        KEPT + ["python-level warning\n"]
    )
    assert native_logs.dropped_lines()[-len(NOISE) :] == NOISE


def test_everything_is_shown_when_the_block_fails(capfd, monkeypatch):
    monkeypatch.delenv("COORDGATE_KERAS_VERBOSE", raising=False)
    with pytest.raises(RuntimeError):
        with native_logs.filtered_stderr():
            _write("".join(NOISE))
            raise RuntimeError
    assert capfd.readouterr().err == "".join(NOISE)


def test_verbose_turns_the_filter_off(capfd, monkeypatch):
    monkeypatch.setenv("COORDGATE_KERAS_VERBOSE", "1")
    with native_logs.filtered_stderr():
        _write(NOISE[1])
    assert capfd.readouterr().err == NOISE[1]
