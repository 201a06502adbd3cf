#!/usr/bin/env bash
# One prepared GPU session on the JAX backend (the GPU image has JAX, no TensorFlow).
# Run from the repository root with Keras wheels in .whl/ (see README, "GPU"):
#
#   bash benchmarks/gpu/session.sh smoke   # tiny sizes: checks the whole path (~1 min)
#   bash benchmarks/gpu/session.sh full    # owed weights, then the 2D study --full
#
# Results go to $OUT (or /tmp/out): the weights as split .tgz parts, the study's
# runs.jsonl / study.json / crops.npz, and log.txt. Phases have time budgets so the
# script ends inside one 10-minute call; what a budget cut is logged.
set -u
MODE=${1:-smoke}
OUT=${OUT:-/tmp/out}
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
mkdir -p "$OUT/d2"
LOG="$OUT/log.txt"
exec > >(tee -a "$LOG") 2>&1

python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# The publishing parent process must not hold 75 % of the GPU while its
# children train (seen: cuFFT plan failures, out-of-memory).
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# Seeds of one architecture compile to the same program: reuse it.
export JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
export COORDGATE_KERAS_CACHE=/tmp/cg_cache
nvidia-smi -L
python3 -c "import jax, keras, sys; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__, 'tf imported:', 'tensorflow' in sys.modules)"

if [ "$MODE" = smoke ]; then
  python3 -m benchmarks.published_weights --out /tmp/w --models coordgate_unet_d1 unet_d2 \
      --set steps=20 image_size=64 train_images=64 eval_images=8 checkpoint_every=10
  python3 -m benchmarks.deblur2d --full --out "$OUT/d2" --workroot /tmp/d2work --steps 20 \
      --seeds 1 --models coordgate_unet_d1 multiwienernet unet_d5 cg_d2/encoding=map --budget-seconds 120 \
      --no-analyze
  ls -la /tmp/w "$OUT/d2"
  echo "smoke done in $(elapsed) s"
  exit 0
fi

# === Published weights still owed: unet_d3 (the deeper plain U-Net, ~90 s) ===
python3 -m benchmarks.published_weights --out /tmp/w --models unet_d3 --budget-seconds 200
tar czf /tmp/w.tgz --exclude=work -C /tmp/w .
split -b 15M /tmp/w.tgz "$OUT/w.tgz.part-"
echo "weights done at $(elapsed) s"

# === 2D study, GPU scale: resumes the committed runs (what is missing: the
# ablations, MultiWienerNet from the field's PSFs without batch norm, seeds) ===
cp benchmarks/results/deblur2d/full_h100/{runs.jsonl,study.json,crops.npz} "$OUT/d2/"
LEFT=$(( 540 - $(elapsed) ))
if [ $LEFT -gt 30 ]; then
  python3 -m benchmarks.deblur2d --full --out "$OUT/d2" --workroot /tmp/d2work \
      --budget-seconds $LEFT --no-analyze
fi
echo "session done in $(elapsed) s"
