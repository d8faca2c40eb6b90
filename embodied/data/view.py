"""A video of one episode: its cameras side by side above plots of state and action, with a
cursor at the current frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embodied.data.store import EpisodeStore
from embodied.media import write_mp4

SCALE = 3  # camera images are small; upscale for people


def _plots(state: np.ndarray, action: np.ndarray, names: list[str], width: int, fps: float) -> tuple[np.ndarray, callable]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(state)) / fps
    fig, axes = plt.subplots(1, 2, figsize=(width / 100, 2.6), dpi=100, sharex=True)
    for ax, data, title in ((axes[0], state, "observation.state"), (axes[1], action, "action")):
        for d in range(data.shape[1]):
            ax.plot(t, data[:, d], lw=1, label=names[d] if d < len(names) else str(d))
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("time [s]", fontsize=7)
    axes[1].legend(fontsize=5, loc="upper right", ncol=2)
    fig.tight_layout()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    x0 = [ax.transData.transform((0, 0))[0] for ax in axes]
    x1 = [ax.transData.transform((t[-1] if len(t) > 1 else 1.0, 0))[0] for ax in axes]
    plt.close(fig)

    def cursor_columns(frame: int) -> list[int]:
        a = frame / max(len(t) - 1, 1)
        return [int(round(lo + a * (hi - lo))) for lo, hi in zip(x0, x1)]

    return img, cursor_columns


def render_episode(store: EpisodeStore, index: int, out: str | Path) -> Path:
    """Write an mp4 of episode `index`; returns its path."""
    ep = store.episode(index)
    cams = [np.repeat(np.repeat(ep.images[c], SCALE, 1), SCALE, 2) for c in store.cameras]
    top = np.concatenate(cams, axis=2) if cams else np.zeros((len(ep), 2, 640, 3), np.uint8)
    width = top.shape[2] + top.shape[2] % 2
    names = list((store.attrs.get("spec") or {}).get("joints", []))
    names = [j["name"] for j in names] + ["gripper"]
    plot, cursor = _plots(ep.state, ep.action, names, width, store.fps)
    plot = plot[:, :width] if plot.shape[1] >= width else np.pad(plot, ((0, 0), (0, width - plot.shape[1]), (0, 0)))

    def frames():
        for i in range(len(ep)):
            canvas = np.full((top.shape[1] + plot.shape[0] + (top.shape[1] + plot.shape[0]) % 2, width, 3), 255, np.uint8)
            canvas[: top.shape[1], : top.shape[2]] = top[i]
            p = plot.copy()
            for col in cursor(i):
                p[:, max(col - 1, 0): col + 1] = (220, 30, 30)
            canvas[top.shape[1]: top.shape[1] + p.shape[0]] = p
            yield canvas

    return write_mp4(out, frames(), store.fps)
