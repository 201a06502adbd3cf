"""Callbacks of `train()`: held-out evaluation, checkpoints, history, progress."""

import csv
import io
import json
import math
import os
import sys
import time

import keras

from coordgate_keras.utils import atomic_io

HISTORY_FIELDS = (
    "step",
    "loss",
    "psnr",
    "learning_rate",
    "val_psnr",
    "val_ssim",
    "seconds",
)


class StepClock:
    """Maps Keras (epoch, batch) to the global step; holds elapsed time."""

    def __init__(self, steps_per_epoch, total_steps, start_step, seconds_before):
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.start_step = start_step
        self.seconds_before = seconds_before
        self.started = time.perf_counter()
        self.epoch = start_step // steps_per_epoch

    def step(self, batch=None):
        """Global steps done at the end of `batch` of the current epoch (or the
        end of the epoch)."""
        done = self.steps_per_epoch if batch is None else batch + 1
        return self.epoch * self.steps_per_epoch + done

    def seconds(self):
        return self.seconds_before + time.perf_counter() - self.started


def read_history(path):
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class Trainer(keras.callbacks.Callback):
    """Evaluation, `last.keras` / `best.keras`, `history.csv`, NaN guard, logs.

    Runs at the end of every Keras epoch (`steps_per_epoch` steps), first among
    the callbacks, so the held-out metrics it adds to the logs reach the
    backup, TensorBoard and the progress bar.
    """

    def __init__(
        self,
        cfg,
        workdir,
        network,
        clock,
        evaluate_fn,
        best,
        history,
        log,
        line_progress,
    ):
        super().__init__()
        self.cfg = cfg
        self.workdir = workdir
        self.network = network
        self.clock = clock
        self.evaluate_fn = evaluate_fn
        self.best = best  # {"psnr": float, "step": int}
        self.rows = history
        self.log = log
        self.line_progress = line_progress
        self.nan_step = None
        self._window = []
        self._last_line = time.perf_counter()
        self._last_line_step = clock.start_step

    # === Per batch: NaN check and progress lines every `log_every` steps ===

    def on_epoch_begin(self, epoch, logs=None):
        self.clock.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.clock.step(batch)
        if step % self.cfg.log_every and step != self.clock.total_steps:
            return
        loss = float((logs or {}).get("loss", math.nan))
        if not math.isfinite(loss):
            self.nan_step = step
            self.model.stop_training = True
            return
        if self.line_progress:
            now = time.perf_counter()
            rate = (step - self._last_line_step) / max(now - self._last_line, 1e-9)
            self._last_line, self._last_line_step = now, step
            psnr = float((logs or {}).get("psnr", math.nan))
            self.log(
                f"step {step}/{self.clock.total_steps}  loss {loss:.5g}  "
                f"psnr {psnr:.2f} dB  {rate:.2f} steps/s"
            )

    # === Per epoch: evaluation, checkpoints, history ===

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        step = self.clock.step()
        loss = float(logs.get("loss", math.nan))
        if not math.isfinite(loss):
            self.nan_step = self.nan_step or step
            self.model.stop_training = True
            return
        final = step >= self.clock.total_steps
        row = {
            "step": step,
            "loss": loss,
            "psnr": float(logs.get("psnr", math.nan)),
            "learning_rate": _learning_rate(self.model.optimizer),
            "val_psnr": "",
            "val_ssim": "",
        }
        every = self.cfg.eval_every
        if final or (every and step % every == 0):
            metrics = self.evaluate_fn(self.network)
            logs["val_psnr"], logs["val_ssim"] = metrics["psnr"], metrics["ssim"]
            row["val_psnr"], row["val_ssim"] = metrics["psnr"], metrics["ssim"]
            if self.line_progress:
                self.log(
                    f"step {step}: held-out PSNR {metrics['psnr']:.2f} dB, "
                    f"SSIM {metrics['ssim']:.4f}"
                )
            if metrics["psnr"] > self.best.get("psnr", -math.inf):
                self.best.update(psnr=metrics["psnr"], ssim=metrics["ssim"], step=step)
                atomic_io.atomic_save(
                    os.path.join(self.workdir, "best.keras"), self.network.save
                )
                atomic_io.atomic_write_json(
                    os.path.join(self.workdir, "best.json"), self.best
                )
        if final or step % self.cfg.checkpoint_every == 0:
            atomic_io.atomic_save(
                os.path.join(self.workdir, "last.keras"), self.network.save
            )
        row["seconds"] = round(self.clock.seconds(), 3)
        self.rows.append(row)
        write_history(os.path.join(self.workdir, "history.csv"), self.rows)


def write_history(path, rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in HISTORY_FIELDS})
    atomic_io.atomic_write_text(path, buffer.getvalue())


def _learning_rate(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    try:
        return float(keras.ops.convert_to_numpy(inner.learning_rate))
    except Exception:  # noqa: BLE001 - schedules without a value: leave blank
        return ""


class StepBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` at epoch ends that fall on `checkpoint_every` steps.

    Keras epochs are `steps_per_epoch` steps long and end on every multiple of
    `checkpoint_every` (see `train`), so a restored run starts at an epoch
    boundary with the weights, optimizer state (including its step count, so
    the schedule continues) and simulator seed of that step.
    """

    def __init__(self, backup_dir, clock, checkpoint_every):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)
        self.clock = clock
        self.checkpoint_every = checkpoint_every

    def on_epoch_end(self, epoch, logs=None):
        step = (epoch + 1) * self.clock.steps_per_epoch
        self._current_epoch = epoch + 1
        if step % self.checkpoint_every == 0 or step >= self.clock.total_steps:
            if not self.model.stop_training:
                self._save_model()

    def _save_model(self):
        # Keras writes both files in place, so a kill mid-write leaves a torn
        # `latest.weights.h5` that no later run can load. Here they are built
        # in a fresh folder that replaces `backup_dir` in one rename: a kill
        # at any instant leaves the previous backup or the new one, whole.
        with atomic_io.atomic_directory(self.backup_dir, overwrite=True) as tmp:
            weights = os.path.join(tmp, os.path.basename(self._weights_path))
            self.model.save_weights(weights, overwrite=True)
            metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            name = os.path.basename(self._training_metadata_path)
            with open(os.path.join(tmp, name), "w") as f:
                json.dump(metadata, f)

    def _load_model(self):
        try:
            super()._load_model()
        except OSError as error:
            # Only a backup written by an older version (in place) can be torn.
            raise OSError(
                f"The backup {self._weights_path} cannot be read ({error}). "
                f"Delete {self.backup_dir} to restart this run from step 0."
            ) from error


def terminal():
    return sys.stdout.isatty()
