"""Benchmarks and studies that write the result tables and plots of coordgate-keras.

Each module is a script run from the repository root as `python -m
benchmarks.NAME` (`--help` lists its options); it writes its results under
`benchmarks/results/`. The modules whose names start with `_` are the shared
machinery (`_environment`: the machine record and worker processes, `_study`:
what the paper-reproduction studies record, `_torch_peer`: the PyTorch peer
model). The package is part of the source checkout only, not of the wheel.
"""
