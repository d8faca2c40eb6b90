"""Loss curves of a run: a CSV appended as training goes and a PNG plot (matplotlib Agg)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Mapping

COLUMNS = ("step", "loss", "loss_ema", "lr", "skipped", "seconds")
TERMS = ("grounding",)  # loss terms besides the actions' (`VLAPolicy.forward`); empty when a run has none


class LossLog:
    """Rows {step, loss, loss_ema, lr, skipped, seconds, grounding, loss/<robot>...} in `path` (CSV).

    Resuming at step s drops rows past s, so the file always describes one history.
    """

    def __init__(self, path: Path, robots: list[str], resume_step: int | None = None):
        self.path, self.columns = Path(path), [*COLUMNS, *TERMS, *(f"loss/{r}" for r in robots)]
        self.rows: list[dict[str, str]] = []
        if resume_step is not None and self.path.is_file():
            with open(self.path, newline="") as f:
                self.rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        self._rewrite()

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, self.columns, extrasaction="ignore")
            w.writeheader()
            w.writerows(self.rows)

    def append(self, row: Mapping[str, float]) -> None:
        text = {k: (f"{v:.6g}" if isinstance(v, float) else str(v)) for k, v in row.items()}
        self.rows.append(text)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns, extrasaction="ignore").writerow(text)

    def plot(self, png: Path, title: str = "") -> Path:
        """Loss (raw and smoothed), the other terms a run has, and per-robot losses against
        step, log scale."""
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        steps = [int(r["step"]) for r in self.rows]
        for key, style in [("loss", dict(alpha=0.35, label="loss")), ("loss_ema", dict(lw=2, label="loss (EMA)"))] + \
                [(c, dict(lw=1, ls="--", label=c)) for c in self.columns[len(COLUMNS):]]:
            values = [float(r[key]) if r.get(key) not in (None, "") else float("nan") for r in self.rows]
            if key in TERMS and all(v != v for v in values):
                continue  # a term this run does not have
            ax.plot(steps, values, **style)
        if self.rows:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(png, dpi=100)
        plt.close(fig)
        return png
