"""The report's figures, drawn with matplotlib's object API on the Agg canvas.

Every function draws one figure from arrays and writes it as a PNG; none keeps
global pyplot state, so reports can be written from threads and servers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics as skm

from ..reading._perturb import KINDS

__all__ = ["curves", "score_histograms", "spectra", "residual_spectrum", "embedding",
           "coefficients", "permutation", "image_maps", "distributions", "robustness",
           "training_curves", "reliability"]

COLOURS = {0: "#1f77b4", 1: "#e8710a"}
NAMES = {0: "real", 1: "fake"}
_DPI = 100


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=_DPI, metadata={"Software": None})


def curves(y: np.ndarray, scores: np.ndarray, path: Path) -> None:
    """ROC curve (with the equal-error point) and precision-recall curve."""
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    fpr, tpr, _ = skm.roc_curve(y, scores)
    auc = skm.roc_auc_score(y, scores)
    ax1.plot(fpr, tpr, color="#333", lw=2, label=f"ROC (AUC {auc:.3f})")
    ax1.plot([0, 1], [0, 1], ls=":", color="grey", label="chance")
    i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    ax1.plot(fpr[i], tpr[i], "o", color="#c00", label=f"EER point ({fpr[i]:.3f})")
    ax1.set(xlabel="false positive rate (real called fake)", ylabel="true positive rate",
            title="ROC curve", xlim=(0, 1), ylim=(0, 1.01))
    ax1.legend(loc="lower right")
    prec, rec, _ = skm.precision_recall_curve(y, scores)
    ap = skm.average_precision_score(y, scores)
    ax2.plot(rec, prec, color="#333", lw=2, label=f"PR (AP {ap:.3f})")
    ax2.axhline(y.mean(), ls=":", color="grey", label=f"prevalence {y.mean():.2f}")
    ax2.set(xlabel="recall (fake)", ylabel="precision (fake)", title="Precision-recall curve",
            xlim=(0, 1), ylim=(0, 1.01))
    ax2.legend(loc="lower left")
    _save(fig, path)


def reliability(y: np.ndarray, proba: np.ndarray, path: Path) -> None:
    """Reliability diagram: share of fakes against mean probability of fake per bin of
    :func:`ffeat.evaluation.reliability` (marker area by image count), with the diagonal
    of perfect calibration, and the images per bin below."""
    from ..evaluation import ECE_BINS, calibration_metrics
    from ..evaluation import reliability as bins

    points = bins(y, proba)
    fig = Figure(figsize=(6, 6.2), layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    ax1.plot([0, 1], [0, 1], ls=":", color="grey", label="perfectly calibrated")
    mean = [b["mean_proba"] for b in points]
    share = [b["fake_share"] for b in points]
    n = np.array([b["n"] for b in points])
    ax1.plot(mean, share, "-", color="#333", lw=1)
    ax1.scatter(mean, share, s=20 + 200 * n / max(n.max(), 1), color="#c00", zorder=3,
                label="bins (area: images)")
    m = calibration_metrics(y, proba)
    ax1.set(ylabel="share of fakes", xlim=(0, 1), ylim=(-0.02, 1.02),
            title=f"Reliability (ECE {m['ece']:.3f}, Brier {m['brier']:.3f}, "
                  f"{ECE_BINS} bins)")
    ax1.legend(loc="upper left", fontsize="small")
    ax2.bar([(b["lo"] + b["hi"]) / 2 for b in points], n, width=1 / ECE_BINS * 0.9,
            color="#888")
    ax2.set(xlabel="probability of fake", ylabel="images")
    _save(fig, path)


def score_histograms(y: np.ndarray, scores: np.ndarray, thresholds: dict[str, float],
                     path: Path) -> None:
    """Histograms of the log-odds of fake per class, with vertical threshold lines."""
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    lo, hi = np.percentile(scores, [0.5, 99.5])
    lo, hi = min(lo, *thresholds.values()) - 0.5, max(hi, *thresholds.values()) + 0.5
    bins = np.linspace(lo, hi, 50)
    for c in (0, 1):
        ax.hist(np.clip(scores[y == c], lo, hi), bins=bins, alpha=0.55, color=COLOURS[c],
                label=f"{NAMES[c]} (n={int((y == c).sum())})")
    styles = ["-", "--", ":", "-."]
    for (name, t), ls in zip(thresholds.items(), styles):
        ax.axvline(t, color="black", ls=ls, lw=1.5, label=f"{name} ({t:+.2f})")
    ax.set(xlabel="log-odds of fake (clipped to the 0.5-99.5 % range)", ylabel="images",
           title="Scores per class")
    ax.legend(fontsize="small")
    _save(fig, path)


def spectra(spectrum: np.ndarray, y: np.ndarray, path: Path) -> None:
    """Mean azimuthal log power spectrum per class with +-1 std bands, and the difference."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    r = (np.arange(spectrum.shape[1]) + 0.5) / spectrum.shape[1] * np.sqrt(0.5)
    means = {}
    for c in (0, 1):
        s = spectrum[(y == c) & np.isfinite(spectrum).all(axis=1)]
        if not len(s):
            continue
        m, sd = s.mean(0), s.std(0)
        means[c] = (m, sd, len(s))
        ax1.plot(r, m, color=COLOURS[c], label=f"{NAMES[c]} mean (n={len(s)})")
        ax1.fill_between(r, m - sd, m + sd, color=COLOURS[c], alpha=0.2, label="+-1 std")
    ax1.set(xlabel="normalised frequency (cycles/pixel)", ylabel="log power",
            title="Azimuthal spectrum")
    ax1.legend(fontsize="small")
    if len(means) == 2:
        (m0, s0, n0), (m1, s1, n1) = means[0], means[1]
        d, se = m1 - m0, np.sqrt(s0**2 / n0 + s1**2 / n1)
        ax2.plot(r, d, color="black")
        ax2.fill_between(r, d - 2 * se, d + 2 * se, color="grey", alpha=0.3,
                         label="+-2 standard errors")
        ax2.axhline(0, color="grey", lw=0.8)
        ax2.legend(fontsize="small")
    ax2.set(xlabel="normalised frequency (cycles/pixel)", ylabel="log power difference",
            title="fake minus real")
    _save(fig, path)


def residual_spectrum(power: dict, crop: int, path: Path) -> None:
    """Mean 2-D power spectra of the high-pass residual: real, fake and their log ratio."""
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    logs = {c: np.log10(power[c] + 1e-12) for c in (0, 1) if power.get(c) is not None}
    ext = (-0.5, 0.5, 0.5, -0.5)
    vals = np.concatenate([v.ravel() for v in logs.values()]) if logs else np.zeros(1)
    vmin, vmax = np.percentile(vals, [1, 99.5])
    for ax, c in zip(axes[:2], (0, 1)):
        if c in logs:
            im = ax.imshow(logs[c], cmap="magma", vmin=vmin, vmax=vmax, extent=ext)
            fig.colorbar(im, ax=ax, shrink=0.8, label="log10 power")
        ax.set(title=f"{NAMES[c]}: mean residual spectrum", xlabel="fx (cycles/px)",
               ylabel="fy (cycles/px)")
    if len(logs) == 2:
        d = logs[1] - logs[0]
        lim = max(float(np.percentile(np.abs(d), 99.5)), 1e-6)
        im = axes[2].imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim, extent=ext)
        fig.colorbar(im, ax=axes[2], shrink=0.8, label="log10 fake / real")
    axes[2].set(title="fake vs real (log10 ratio)", xlabel="fx (cycles/px)")
    fig.suptitle(f"3x3 high-pass residual of the luma, Hann-windowed {crop}x{crop} "
                 "centre crops, DC at the centre")
    _save(fig, path)


def _scatter(ax, P, colour_of, groups, title):
    for key, (colour, label) in groups.items():
        m = colour_of == key
        if m.any():
            ax.scatter(P[m, 0], P[m, 1], s=9, c=colour, alpha=0.7, label=f"{label} ({m.sum()})",
                       linewidths=0)
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize="small", markerscale=2)


def embedding(emb: dict, y: np.ndarray, correct: np.ndarray, path: Path) -> None:
    """PCA and t-SNE maps, coloured by label and by correctness."""
    rows = [("PCA", emb["pca"], np.arange(len(y)))]
    if emb["tsne"] is not None:
        rows.append(("t-SNE", emb["tsne"], emb["tsne_index"]))
    fig = Figure(figsize=(10, 4.2 * len(rows)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rows), 2))
    by_label = {0: (COLOURS[0], "real"), 1: (COLOURS[1], "fake")}
    by_ok = {1: ("#9a9a9a", "correct"), 0: ("#d00000", "wrong")}
    for (name, P, index), (a1, a2) in zip(rows, axes):
        extra = ""
        if name == "PCA":
            extra = " ({:.0%} + {:.0%} of variance)".format(*(emb["pca_variance"] + [0, 0])[:2])
        _scatter(a1, P, y[index], by_label, f"{name}{extra}: true label")
        _scatter(a2, P, correct[index].astype(int), by_ok, f"{name}: correct at the threshold")
    _save(fig, path)


def coefficients(info: dict, path: Path) -> None:
    """Sum of |standardised coefficient| per group, and the spectrum coefficient profile."""
    has_spec = info["spectrum"] is not None
    fig = Figure(figsize=(12, 0.28 * len(info["groups"]) + 1.6), layout="constrained")
    axes = fig.subplots(1, 2 if has_spec else 1, width_ratios=[1.3, 1] if has_spec else None)
    axes = np.atleast_1d(axes)
    names = [f"{g} ({n})" for g, _, n in info["groups"]][::-1]
    vals = [v for _, v, _ in info["groups"]][::-1]
    axes[0].barh(names, vals, color="#555")
    axes[0].set(xlabel="sum of |standardised coefficient| (columns in brackets)",
                title="Weight per feature group")
    axes[0].tick_params(axis="y", labelsize="small")
    if has_spec:
        c = info["spectrum"]
        r = (np.arange(len(c)) + 0.5) / len(c) * np.sqrt(0.5)
        axes[1].bar(r, c, width=r[1] - r[0] if len(r) > 1 else 0.01,
                    color=np.where(c > 0, COLOURS[1], COLOURS[0]))
        axes[1].axhline(0, color="grey", lw=0.8)
        axes[1].set(xlabel="normalised frequency (cycles/pixel)",
                    ylabel="coefficient (+ pushes towards fake)",
                    title="Spectrum coefficients by frequency")
    _save(fig, path)


def permutation(perm: list, path: Path) -> None:
    """ROC AUC lost when each group is shuffled, largest first."""
    perm = sorted(perm, key=lambda t: t[1])[-30:]  # the 30 largest drops
    fig = Figure(figsize=(9, 0.28 * len(perm) + 1.4), layout="constrained")
    ax = fig.subplots()
    ax.barh([p[0] for p in perm], [p[1] for p in perm], xerr=[p[2] for p in perm],
            color="#555", ecolor="#c00")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(xlabel="ROC AUC lost when the group is shuffled (mean +- std of repeats)",
           title="Permutation importance on the evaluated data")
    ax.tick_params(axis="y", labelsize="small")
    _save(fig, path)


def image_maps(rgb: np.ndarray, pmap: np.ndarray, emap: np.ndarray, title: str,
               centre: float, path: Path) -> None:
    """The image, its patch-score heat map over it, and its residual energy map."""
    fig = Figure(figsize=(10.5, 3.6), layout="constrained")
    a0, a1, a2 = fig.subplots(1, 3)
    a0.imshow(rgb)
    a0.set_title(title, fontsize="small")
    a1.imshow(rgb)
    lim = max(float(np.nanpercentile(np.abs(pmap - centre), 98)), 1.0)  # robust to outliers
    im = a1.imshow(pmap, cmap="RdBu_r", vmin=centre - lim, vmax=centre + lim, alpha=0.6)
    fig.colorbar(im, ax=a1, shrink=0.85, label="patch log-odds of fake")
    a1.set_title("patch scores (red: fake-looking)", fontsize="small")
    im = a2.imshow(emap, cmap="magma")
    fig.colorbar(im, ax=a2, shrink=0.85, label="residual RMS (levels)")
    a2.set_title("high-pass residual energy", fontsize="small")
    for a in (a0, a1, a2):
        a.set(xticks=[], yticks=[])
    _save(fig, path)


def distributions(brightness, saturation, sharpness, y: np.ndarray, path: Path) -> None:
    """Histograms of brightness, saturation and log sharpness per class."""
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    sharp = np.log10(np.maximum(sharpness, 1e-3))
    for ax, v, label in zip(axes, (brightness, saturation, sharp),
                            ("brightness (mean luma, 0-1)", "saturation (mean HSV S, 0-1)",
                             "sharpness (log10 variance of Laplacian)")):
        ok = np.isfinite(v)
        bins = np.linspace(np.min(v[ok]), np.max(v[ok]) + 1e-9, 30) if ok.any() else 10
        for c in (0, 1):
            ax.hist(v[ok & (y == c)], bins=bins, alpha=0.55, color=COLOURS[c], label=NAMES[c])
        ax.set(xlabel=label, ylabel="images")
        ax.legend(fontsize="small")
    _save(fig, path)


def robustness(rows: list[dict], path: Path) -> None:
    """ROC AUC against perturbation strength, one panel per kind."""
    clean = rows[0]["roc_auc"]
    kinds = list(dict.fromkeys(r["perturbation"] for r in rows[1:]))
    fig = Figure(figsize=(3.4 * max(1, len(kinds)) + 0.6, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(kinds)), sharey=True))
    for ax, kind in zip(axes, kinds):
        pts = [(r["strength"], r["roc_auc"]) for r in rows[1:] if r["perturbation"] == kind]
        spec = KINDS[kind]
        if pts[0][0] is None:  # no strength (flip)
            ax.bar([kind], [pts[0][1] or 0], color="#555")
        else:
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color="#333")
            if spec.stronger == "lower":
                ax.invert_xaxis()
            ax.set_xlabel(f"{spec.unit} (stronger to the right)")
        if clean is not None:
            ax.axhline(clean, ls="--", color=COLOURS[1], label=f"clean {clean:.3f}")
            ax.legend(fontsize="small")
        ax.axhline(0.5, ls=":", color="grey")
        ax.set_title(kind)
    axes[0].set_ylabel("ROC AUC")
    _save(fig, path)


def training_curves(history: list[dict], best_epoch: int | None, path: Path) -> None:
    """Per-epoch loss and accuracy of a CNN, training and validation, best epoch marked."""
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    epochs = [h["epoch"] for h in history]
    for ax, key, title in zip(fig.subplots(1, 2), ("loss", "accuracy"),
                              ("loss (binary cross-entropy)", "accuracy")):
        ax.plot(epochs, [h[key] for h in history], "o-", color="#555",
                label="training (augmented)")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "o-", color=COLOURS[1],
                label="validation")
        if best_epoch:
            ax.axvline(best_epoch, ls=":", color="grey", label=f"best epoch ({best_epoch})")
        ax.set(xlabel="epoch", title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize="small")
    _save(fig, path)
