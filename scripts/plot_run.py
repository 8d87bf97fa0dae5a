#!/usr/bin/env python3
"""PNG plots of one CoCo training run: loss/validation curves, codebook usage and decision matrix
from RUN_DIR/metrics.jsonl, and a PCA projection of RUN_DIR/knowledge_{before,after}.json.
usage: python3 scripts/plot_run.py RUN_DIR [--out DIR]   (default DIR: RUN_DIR/plots)"""
import argparse
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, MaxNLocator  # noqa: E402


class InputError(Exception):
    pass


def note(msg):
    print(f"plot_run.py: {msg}", file=sys.stderr)


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text")


def read_metrics(path):
    rows = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise InputError(f"{path}: line {n} is not JSON")
            if not isinstance(rows[-1], dict):
                raise InputError(f"{path}: line {n} is not a JSON object")
    if not rows:
        raise InputError(f"{path}: no epochs")
    return rows


def series(rows, get):
    """(epochs, values) for the rows where get(row) yields a number."""
    xs, ys = [], []
    for i, row in enumerate(rows):
        try:
            v = get(row)
        except (KeyError, TypeError, IndexError):
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs.append(row.get("epoch", i + 1))
            ys.append(v)
    return xs, ys


def per_code(rows, key):
    """(epoch, vector) for the epochs whose knowledge module was active and reported `key`."""
    return [(r.get("epoch", i + 1), r["diagnostics"][key]) for i, r in enumerate(rows)
            if isinstance(r.get("diagnostics"), dict) and r["diagnostics"].get("knowledge_active")
            and r["diagnostics"].get(key)]


def line(ax, xs, ys, title, **kw):
    ax.plot(xs, ys, marker="o", ms=3, **kw)
    ax.set(title=title, xlabel="epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def heatmap(ax, fig, pairs, title, vmax=None):
    """Epochs x codes image of the (epoch, vector) pairs."""
    epochs, vectors = [e for e, _ in pairs], [v for _, v in pairs]
    k = max(len(v) for v in vectors)
    grid = np.full((len(vectors), k), np.nan)
    for i, v in enumerate(vectors):
        grid[i, :len(v)] = v
    im = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=vmax,
                   extent=(-0.5, k - 0.5, len(vectors) - 0.5, -0.5))
    ax.set_yticks(range(len(epochs)), [str(e) for e in epochs])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(title=title, xlabel="code", ylabel="epoch")
    fig.colorbar(im, ax=ax)


def save(fig, out, name):
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(path)


def plot_training_curves(rows, out):
    keys = list(dict.fromkeys(k for r in rows if isinstance(r.get("train"), dict) for k in r["train"]))
    panels = [(f"train {k}", series(rows, lambda r, k=k: r["train"][k])) for k in keys]
    panels += [(f"valid {m}", series(rows, lambda r, m=m: r["valid"][m])) for m in ("NDCG@10", "HR@10")]
    panels = [(t, s) for t, s in panels if s[0]]
    if not panels:
        return note("no train or valid values in metrics.jsonl; skipping training_curves.png")
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.5 * cols, 3.2 * nrows), squeeze=False)
    for ax, (title, (xs, ys)) in zip(axes.flat, panels):
        line(ax, xs, ys, title)
        metric = title.removeprefix("valid ")
        alone = series(rows, lambda r: r["valid_backbone"][metric])  # CoCo's own backbone
        if metric != title and alone[0]:
            ax.lines[0].set_label("CoCo")
            line(ax, *alone, title, ls="--", label="backbone alone")
            ax.legend()
        if title.startswith("train") and all(y > 0 for y in ys):
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    save(fig, out, "training_curves.png")


def plot_code_usage(rows, out):
    usage = per_code(rows, "code_usage")
    if not usage:
        return note("no code_usage diagnostics in metrics.jsonl; skipping code_usage.png")
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    heatmap(a, fig, usage, "code usage")
    line(b, *series(rows, lambda r: r["diagnostics"]["codebook_perplexity"]), "codebook perplexity")
    save(fig, out, "code_usage.png")


def plot_decision_matrix(rows, out):
    rates = per_code(rows, "decision_rate_per_code")
    rate = series(rows, lambda r: r["diagnostics"]["decision_rate"])
    if not rates and not rate[0]:
        return note("no decision diagnostics in metrics.jsonl; skipping decision_matrix.png")
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4))
    line(a, *rate, "decision rate")
    a.set_ylim(-0.02, 1.02)
    # Alignment cosine (left axis) and utility (right axis) differ in scale by orders of magnitude.
    line(b, *series(rows, lambda r: r["diagnostics"]["mean_alignment_cos"]), "alignment and utility",
         label="mean alignment cos")
    b2 = b.twinx()
    b2.plot(*series(rows, lambda r: r["diagnostics"]["mean_utility"]), marker="s", ms=3, ls="--",
            color="tab:orange", label="mean utility")
    b.set_ylabel("mean alignment cos")
    b2.set_ylabel("mean utility")
    b.legend(handles=b.get_lines() + b2.get_lines(), fontsize=8)
    if rates:
        heatmap(c, fig, rates, "decision rate per code", vmax=1)
    else:
        c.axis("off")
    save(fig, out, "decision_matrix.png")


def mean_cos(a, b):
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    return float(np.mean((a * b).sum(1) / np.maximum(na * nb, 1e-12)))


def plot_projection(run, out):
    paths = [os.path.join(run, f"knowledge_{w}.json") for w in ("before", "after")]
    if not all(os.path.exists(p) for p in paths):
        return note("knowledge_before.json or knowledge_after.json missing; skipping projection.png")
    sets = []
    for p in paths:
        try:
            k = json.loads(read_text(p))
            rs, al = np.asarray(k["h_rs"], float), np.asarray(k["h_aligned"], float)
        except json.JSONDecodeError:
            raise InputError(f"{p}: not JSON")
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{p}: h_rs and h_aligned must be lists of float vectors")
        if rs.ndim != 2 or rs.shape != al.shape or rs.shape[0] < 1 or rs.shape[1] < 2:
            raise InputError(f"{p}: h_rs and h_aligned must be non-empty n x d matrices, d >= 2")
        sets.append((rs, al))
    if sets[0][0].shape[1] != sets[1][0].shape[1]:
        raise InputError("knowledge_before.json and knowledge_after.json differ in dimension")
    # One PCA fit on every vector of both files, so the two panels share their axes.
    allv = np.concatenate([v for s in sets for v in s])
    mean = allv.mean(0)
    basis = np.linalg.svd(allv - mean, full_matrices=False)[2][:2].T  # top two principal axes
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    for ax, name, (rs, al) in zip(axes, ("before", "after"), sets):
        prs, pal = (rs - mean) @ basis, (al - mean) @ basis
        n = min(100, len(prs))  # a thin line from h_rs to h_aligned for the first 100 users
        ax.plot([prs[:n, 0], pal[:n, 0]], [prs[:n, 1], pal[:n, 1]], color="grey", lw=0.4, alpha=0.5)
        ax.scatter(prs[:, 0], prs[:, 1], s=8, color="tab:blue", label="h_rs")
        ax.scatter(pal[:, 0], pal[:, 1], s=8, color="tab:red", label="h_aligned")
        ax.set(title=f"{name}: mean cos(h_aligned, h_rs) = {mean_cos(al, rs):.3f}",
               xlabel="PC 1", ylabel="PC 2")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save(fig, out, "projection.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", help="output folder (default: RUN_DIR/plots)")
    args = ap.parse_args()
    try:
        rows = read_metrics(os.path.join(args.run_dir, "metrics.jsonl"))
        out = args.out or os.path.join(args.run_dir, "plots")
        os.makedirs(out, exist_ok=True)
        plot_training_curves(rows, out)
        plot_code_usage(rows, out)
        plot_decision_matrix(rows, out)
        plot_projection(args.run_dir, out)
    except (InputError, OSError) as e:
        note(str(e))
        sys.exit(2)


if __name__ == "__main__":
    main()
