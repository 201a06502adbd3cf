"""The demo's report figure: panels, error maps, PSNR gain across the field, gates."""

import numpy as np

from coordgate_keras.utils import atomic_io


def gate_maps(model, size=(128, 128), channels=4):
    """Gates of the first CoordGate of `model`, `(channels, H, W)`, and its name."""
    import keras

    from coordgate_keras.layers import CoordGate

    for layer in _all_layers(model):
        if isinstance(layer, CoordGate):
            gate = keras.ops.convert_to_numpy(layer.compute_gate(size))
            gate = np.asarray(gate, "float32")
            # The channels whose gate varies most across the field.
            order = np.argsort(-gate.reshape(-1, gate.shape[-1]).std(axis=0))
            return layer.name, np.moveaxis(gate[..., order[:channels]], -1, 0)
    return None, None


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def draw(path, sharp, blurred, outputs, names, rows, gain, gates, field, title=""):
    """Writes the report PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plain, gated = names
    scores = {row["name"]: row for row in rows}
    i = 0
    fig = plt.figure(figsize=(15, 9.4), dpi=100)
    grid = fig.add_gridspec(3, 5, height_ratios=[1, 1, 0.95], hspace=0.35, wspace=0.15)

    def image(ax, img, label, cmap="gray", vmin=0, vmax=1):
        handle = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(label, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        return handle

    def label(name, key):
        row = scores[key]
        return f"{name}\n{row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}"

    panels = [
        (blurred[i, ..., 0], label("blurred input", "blurred input")),
        (outputs[plain][i, ..., 0], label(f"U-Net ({plain})", plain)),
        (outputs[gated][i, ..., 0], label(f"CoordGate U-Net ({gated})", gated)),
        (sharp[i, ..., 0], "ground truth"),
    ]
    for col, (img, text) in enumerate(panels):
        image(fig.add_subplot(grid[0, col]), img, text)

    errors = [
        (np.abs(blurred[i] - sharp[i])[..., 0], "|blurred - truth|"),
        (np.abs(outputs[plain][i] - sharp[i])[..., 0], f"|{plain} - truth|"),
        (np.abs(outputs[gated][i] - sharp[i])[..., 0], f"|{gated} - truth|"),
    ]
    vmax = float(np.percentile(errors[0][0], 99.5)) or 1.0
    for col, (err, text) in enumerate(errors):
        handle = image(
            fig.add_subplot(grid[1, col]), err, text, cmap="magma", vmin=0, vmax=vmax
        )
    fig.colorbar(
        handle, ax=fig.add_subplot(grid[1, 3]), fraction=0.5, label="absolute error"
    ).ax.tick_params(labelsize=8)
    fig.axes[-2].axis("off")

    # PSF spread across the field, to read the gain map against.
    ax = fig.add_subplot(grid[1, 4])
    psfs = field.psfs
    gh, gw, k, _ = psfs.shape
    mosaic = np.zeros((gh * k, gw * k))
    for r in range(gh):
        for c in range(gw):
            p = psfs[r, c]
            mosaic[r * k : (r + 1) * k, c * k : (c + 1) * k] = p / p.max()
    image(ax, mosaic**0.5, f"PSF field ({gh}x{gw}, {k} px; sqrt)", cmap="inferno")

    ax = fig.add_subplot(grid[2, 0:2])
    limit = float(np.abs(gain).max()) or 1.0
    handle = ax.imshow(gain, cmap="RdBu", vmin=-limit, vmax=limit)
    ax.set_title(f"PSNR gain per field tile (dB)\n{gated} minus {plain}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    for (r, c), value in np.ndenumerate(gain):
        ax.text(c, r, f"{value:+.1f}", ha="center", va="center", fontsize=6)
    fig.colorbar(handle, ax=ax, fraction=0.046)

    layer_name, maps = gates
    if maps is not None:
        for j, gate in enumerate(maps[:3]):
            ax = fig.add_subplot(grid[2, 2 + j])
            image(
                ax,
                gate,
                f"learned gate, channel #{j + 1}\n({layer_name.split('_', 3)[-1]})",
                cmap="viridis",
                vmin=float(gate.min()),
                vmax=float(gate.max()) or 1.0,
            )
    fig.suptitle(
        f"coordgate-keras demo: {len(sharp)} held-out images, "
        f"{sharp.shape[1]}x{sharp.shape[2]} — {title}",
        fontsize=12,
    )
    with atomic_io.atomic_file(path) as tmp:
        fig.savefig(tmp, bbox_inches="tight", format="png")
    plt.close(fig)
    return path
