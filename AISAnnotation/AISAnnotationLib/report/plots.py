"""Report figures (matplotlib, Agg via ``Figure`` — no pyplot, no GUI) returned as PNG bytes."""

from __future__ import annotations

import io
from typing import Optional, Sequence

import numpy as np

DPI = 110
_BLUE, _ORANGE, _GREY, _RED = "#1f5fa8", "#e07b00", "#888888", "#c0392b"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _figure(w: float = 5.2, h: float = 3.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h))
    return fig, fig.add_subplot(1, 1, 1)


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color=_GREY, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def metric_distribution(values: Sequence[float], title: str, xlabel: str, labels: Optional[Sequence[str]] = None,
                        threshold: Optional[float] = None) -> bytes:
    """One dot per case (≤ 30 cases, labelled rows) or a histogram (more), with the median."""
    pairs = [(x, (labels[i] if labels else str(i + 1))) for i, x in enumerate(values) if x is not None]
    n = len(pairs)
    fig, ax = _figure(5.4, max(2.4, 0.32 * n + 1.4) if 0 < n <= 30 else 3.2)
    if n == 0:
        _no_data(ax, "no cases with two annotations")
    else:
        v = np.asarray([p[0] for p in pairs], float)
        if n <= 30:
            order = np.argsort(v)
            y = np.arange(n)
            ax.hlines(y, 0, v[order], color="#c9d7ea", lw=2)
            ax.scatter(v[order], y, color=_BLUE, s=42, zorder=3)
            ax.set_yticks(y)
            ax.set_yticklabels([pairs[i][1] for i in order], fontsize=8)
            for yy, xx in zip(y, v[order]):
                ax.text(xx + 0.015, yy, f"{xx:.2f}", va="center", fontsize=8)
            ax.set_ylim(-0.7, n - 0.3)
        else:
            ax.hist(v, bins=np.linspace(0, 1, 21), color=_BLUE, alpha=0.6, edgecolor=_BLUE)
            ax.set_ylabel("cases")
        ax.axvline(float(np.median(v)), color=_ORANGE, ls="--", label=f"median {np.median(v):.2f}")
        if threshold is not None:
            ax.axvline(threshold, color=_RED, ls=":", label=f"auto-accept ≥ {threshold:g}")
        ax.set_xlim(0, 1.08)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _png(fig)


def bland_altman_stats(a_ml: Sequence[float], b_ml: Sequence[float]) -> dict[str, Optional[float]]:
    """Bias (mean A − B, ml) and 95 % limits of agreement; the limits need ≥ 2 cases (else None)."""
    d = np.asarray(a_ml, float) - np.asarray(b_ml, float)
    if d.size == 0:
        return {"n": 0, "bias": None, "sd": None, "loa_low": None, "loa_high": None}
    bias = float(d.mean())
    sd = float(d.std(ddof=1)) if d.size > 1 else None
    return {"n": int(d.size), "bias": bias, "sd": sd,
            "loa_low": bias - 1.96 * sd if sd is not None else None,
            "loa_high": bias + 1.96 * sd if sd is not None else None}


def _padded(lo: float, hi: float, min_half: float) -> tuple[float, float]:
    """An axis range around [lo, hi] with margins, never collapsed to a line (half-width ≥ min_half)."""
    mid, half = (lo + hi) / 2, max((hi - lo) / 2 * 1.25, min_half)
    return mid - half, mid + half


def draw_bland_altman(ax, a_ml: Sequence[float], b_ml: Sequence[float],
                      labels: Optional[Sequence[str]] = None) -> dict[str, Optional[float]]:
    """Draw the Bland–Altman points, bias and limits on ``ax``; returns :func:`bland_altman_stats`."""
    a, b = np.asarray(a_ml, float), np.asarray(b_ml, float)
    st = bland_altman_stats(a, b)
    if a.size == 0:
        _no_data(ax, "no cases with two annotations")
        return st
    mean, diff = (a + b) / 2, a - b
    ax.scatter(mean, diff, color=_BLUE, s=40, zorder=3)
    if labels:
        for x, y, lab in zip(mean, diff, labels):
            ax.annotate(lab, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.axhline(st["bias"], color=_ORANGE, label=f"bias {st['bias']:+.2f} ml")
    ys = [float(diff.min()), float(diff.max()), 0.0]
    if st["sd"] is not None:
        ax.axhline(st["loa_high"], color=_RED, ls="--", label=f"+1.96 SD {st['loa_high']:+.2f} ml")
        ax.axhline(st["loa_low"], color=_RED, ls="--", label=f"−1.96 SD {st['loa_low']:+.2f} ml")
        ys += [st["loa_low"], st["loa_high"]]
    else:
        ax.plot([], [], " ", label=f"limits of agreement need ≥ 2 cases (n = {st['n']})")
    ax.axhline(0, color=_GREY, lw=0.8)
    scale = max(float(np.abs(mean).max()), 0.1)
    ax.set_xlim(*_padded(float(mean.min()), float(mean.max()), 0.25 * scale))
    ax.set_ylim(*_padded(min(ys), max(ys), 0.25 * scale))
    ax.legend(fontsize=8, loc="best")
    return st


def bland_altman(a_ml: Sequence[float], b_ml: Sequence[float], labels: Optional[Sequence[str]] = None,
                 title: str = "Bland–Altman: lesion volume, annotator A vs B") -> bytes:
    """Mean vs difference of two annotators' volumes (ml) with bias and 95 % limits of agreement."""
    fig, ax = _figure(5.6, 3.6)
    draw_bland_altman(ax, a_ml, b_ml, labels)
    ax.set_xlabel("mean volume of A and B (ml)")
    ax.set_ylabel("A − B (ml)")
    ax.set_title(title)
    return _png(fig)


# above this many cases a figure shows a distribution, not one bar per case: its size (and the
# memory to draw it) stays fixed whatever the number of sessions
PER_CASE_MAX = 30


def volume_distribution(volumes_ml: Sequence[float], labels: Sequence[str],
                        title: str = "Final lesion volume per case") -> bytes:
    """Horizontal bars of final-mask volumes (ml), log axis when they span > 2 decades; more than
    :data:`PER_CASE_MAX` cases: a histogram (log bins when they span > 2 decades)."""
    v = np.asarray(volumes_ml, float)
    if v.size > PER_CASE_MAX:
        return _volume_histogram(v, title)
    fig, ax = _figure(5.6, max(2.2, 0.45 * len(volumes_ml) + 1.2))
    if v.size == 0:
        _no_data(ax, "no final masks")
    else:
        y = np.arange(v.size)
        ax.barh(y, v, color=_BLUE)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        for yy, vv in zip(y, v):
            ax.text(vv, yy, f" {vv:.2f} ml", va="center", fontsize=8)
        pos = v[v > 0]
        if pos.size and pos.max() / max(pos.min(), 1e-9) > 100:
            ax.set_xscale("log")
        ax.set_xlim(0, None if ax.get_xscale() == "log" else v.max() * 1.3 + 1e-9)
    ax.set_xlabel("volume (ml)")
    ax.set_title(title)
    return _png(fig)


def _volume_histogram(v: np.ndarray, title: str) -> bytes:
    fig, ax = _figure(5.6, 3.4)
    pos = v[v > 0]
    log = bool(pos.size and pos.max() / max(pos.min(), 1e-9) > 100)
    bins = np.geomspace(pos.min(), pos.max(), 21) if log else np.linspace(0, max(float(v.max()), 1e-9), 21)
    ax.hist(pos if log else v, bins=bins, color=_BLUE, alpha=0.6, edgecolor=_BLUE)
    if log:
        ax.set_xscale("log")
    ax.axvline(float(np.median(v)), color=_ORANGE, ls="--", label=f"median {np.median(v):.2f} ml")
    ax.legend(fontsize=8, frameon=False)
    ax.set_ylabel("cases")
    ax.set_xlabel("volume (ml)")
    ax.set_title(f"{title} ({v.size} cases" + (f", {v.size - pos.size} empty)" if log and pos.size < v.size else ")"))
    return _png(fig)


def snr_chart(rows: Sequence[tuple[str, str, Optional[float]]], threshold: float) -> bytes:
    """SNR per case and sequence (grouped bars) with the rejection threshold; more than
    :data:`PER_CASE_MAX` cases: one box per sequence (the distribution over cases)."""
    fig, ax = _figure(5.8, 3.4)
    rows = [r for r in rows if r[2] is not None]
    seqs = sorted({r[1] for r in rows})
    if len({r[0] for r in rows}) > PER_CASE_MAX:
        data = [[r[2] for r in rows if r[1] == s] for s in seqs]
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(seqs) + 1))
        ax.set_xticklabels([f"{s} ({len(d)} cases)" for s, d in zip(seqs, data)], fontsize=8)
        ax.axhline(threshold, color=_RED, ls="--", label=f"reject < {threshold:g}")
        ax.set_ylim(0, max(max(r[2] for r in rows), threshold) * 1.3)
        ax.legend(fontsize=8, loc="upper center")
    elif not rows:
        _no_data(ax, "SNR not measurable")
    else:
        cases = sorted({r[0] for r in rows})
        w = 0.8 / len(seqs)
        for i, s in enumerate(seqs):
            xs = [cases.index(r[0]) + i * w for r in rows if r[1] == s]
            ys = [r[2] for r in rows if r[1] == s]
            ax.bar(xs, ys, width=w, label=s)
        ax.set_xticks([i + 0.4 - w / 2 for i in range(len(cases))])
        ax.set_xticklabels(cases, fontsize=8, rotation=20, ha="right")
        ax.axhline(threshold, color=_RED, ls="--", label=f"reject < {threshold:g}")
        ax.set_ylim(0, max(max(r[2] for r in rows), threshold) * 1.3)
        ax.legend(fontsize=8, ncol=len(seqs) + 1, loc="upper center")
    ax.set_ylabel("SNR")
    ax.set_title("SNR (Rayleigh-corrected background noise)")
    return _png(fig)
