"""The report's plots: label precision and recall per stage, held-out accuracy per training set."""

from __future__ import annotations

from synpref.record import storage

GROUPS = ("overall", "learnable", "hard")
COLOURS = {"overall": "#4c72b0", "learnable": "#55a868", "hard": "#c44e52"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def precision_recall(truth: dict, path: str) -> None:
    plt = _pyplot()
    names = list(truth["stages"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    width = 0.8 / len(GROUPS)
    for ax, figure in zip(axes, ("precision", "recall")):
        for i, group in enumerate(GROUPS):
            values = [truth["stages"][n][group][figure] or 0.0 for n in names]
            ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=group, color=COLOURS[group])
        ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"label {figure} by stage")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def heldout_accuracy(heldout: dict, path: str) -> None:
    plt = _pyplot()
    names = list(heldout)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / len(GROUPS)
    for i, group in enumerate(GROUPS):
        values = [heldout[n][group]["accuracy"] or 0.0 for n in names]
        low = [v - (heldout[n][group]["accuracy_95ci"] or (v, v))[0] for v, n in zip(values, names)]
        high = [(heldout[n][group]["accuracy_95ci"] or (v, v))[1] - v for v, n in zip(values, names)]
        ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, yerr=[low, high], capsize=3,
               label=group, color=COLOURS[group])
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("held-out accuracy (95% CI)")
    ax.set_title("Final RMs by training set")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot(report: dict, folder: str) -> list[str]:
    written = []
    truth = report.get("truth")
    if truth:
        path = storage.join(folder, "precision_recall_by_stage.png")
        precision_recall(truth, path)
        written.append(path)
        if truth.get("heldout"):
            path = storage.join(folder, "heldout_accuracy_by_training_set.png")
            heldout_accuracy(truth["heldout"], path)
            written.append(path)
    return written
