"""`coordgate-keras weights list | download | verify` (from `coordgate_keras.cli`)."""

from coordgate_keras.zoo import _weights


def run(args):
    """Runs one `weights` action from parsed arguments; returns the exit code."""
    if args.action == "list":
        print(format_weights_table(_weights.entries()))
        return 0
    if args.action == "download":
        path = _weights.resolve(
            args.name, args.tag, base_url=args.base_url, cache_dir=args.cache_dir
        )
        print(path)
        return 0
    return verify(args.name, args.tag, base_url=args.base_url, cache_dir=args.cache_dir)


def format_weights_table(entries):
    # Columns as wide as their longest entry (registered names can be long).
    mw = max([20] + [len(e.model) for e in entries])
    tw = max([12] + [len(e.tag) for e in entries])
    header = (
        f"{'model':{mw}s} {'tag':{tw}s} {'params':>10s} {'MiB':>6s} {'PSNR':>6s} "
        f"{'blurred':>7s} {'SSIM':>6s} {'steps':>6s}  where"
    )
    lines = [header]
    for e in entries:
        meta = e.metadata
        metrics = meta.get("metrics", {})
        where = "packaged" if e.packaged_path else (e.url or "download")
        lines.append(
            f"{e.model:{mw}s} {e.tag:{tw}s} {meta.get('num_params', 0):>10,} "
            f"{meta.get('size_bytes', 0) / 2**20:6.1f} "
            f"{metrics.get('psnr', float('nan')):6.2f} "
            f"{metrics.get('psnr_blurred', float('nan')):7.2f} "
            f"{metrics.get('ssim', float('nan')):6.3f} "
            f"{meta.get('steps', 0):>6}  {where}"
        )
    if len(lines) == 1:
        lines.append("(no published weights)")
    return "\n".join(lines)


def verify(name=None, tag=None, base_url=None, cache_dir=None):
    """Checks each weight file's hash and that it loads into its model."""
    from coordgate_keras.zoo import create_model

    selected = [
        e
        for e in _weights.entries()
        if (name is None or e.model == name) and (tag is None or e.tag == tag)
    ]
    if not selected:
        raise ValueError(
            f"No published weights match model={name!r} tag={tag!r}. Run "
            "`coordgate-keras weights list`."
        )
    failures = 0
    for e in selected:
        try:
            path = _weights.resolve(
                e.model, e.tag, base_url=base_url, cache_dir=cache_dir
            )
            create_model(e.model, weights=e.tag)
            print(f"ok      {e.model} {e.tag} sha256 {e.sha256[:12]}… {path}")
        except (ValueError, OSError) as error:
            failures += 1
            print(f"FAILED  {e.model} {e.tag}: {error}")
    return 1 if failures else 0
