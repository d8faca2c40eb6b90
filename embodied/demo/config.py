"""DemoConfig: what `embodied demo` runs, and where each stage keeps its results.

    OUT/ (default out/demo)
      data/<robot>_<task>.zarr   simulated demonstrations (stage 1)
      run/                       the pooled training run: last/, best/, loss.csv, loss.png, and
                                 demo_train.json, the stage's result (stage 2)
      eval/<robot>.json          evaluation report; eval/videos/*.mp4 (stage 3)
      bundles/<robot>/           export bundle (int8 when the gate passed it, else fp32) (stage 4)
      bundles/<robot>.json       the export's result: both gate rates and the decision
      deploy/<robot>.json        emulated deployment summary; deploy/<robot>.blackbox.jsonl (stage 5)
      report.md, summary.json, loss.png                                            (stage 6)

Every `<...>.json` stage record carries the key it was computed under (the policy's weights
hash, episode counts ...): a rerun reuses a record whose key still holds and redoes the rest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError, EmbodiedError

DEFAULT_ROBOTS = ("so100", "koch", "vx300s")
DEMO_SEED0 = 0  # simulated demonstrations use seeds 0, 1, ... (failed expert seeds are skipped)
DEPLOY_SEED0 = 200_000  # emulated deployments: away from demo seeds and eval seeds (100000 ...)
STAGES = ("data", "train", "eval", "export", "deploy", "report")


class DemoError(EmbodiedError):
    """A stage of the demo failed; names the stage and how to resume."""

    def __init__(self, stage: str, problem: str, resume: str):
        self.stage = stage
        number = STAGES.index(stage) + 1
        super().__init__(f"stage {number}/{len(STAGES)} ({stage}) failed: {problem}\n"
                         f"Finished stages are kept; after fixing this, run `{resume}` again to continue.")


@dataclass(frozen=True)
class DemoConfig:
    """Args:
        robots: arms whose demonstrations are pooled (each gets an eval, export and deployment).
        task: the simulated task every robot learns.
        demos: successful expert demonstrations per robot.
        preset: policy preset; steps: training steps; batch_size: samples per step.
        eval_episodes: seeded evaluation episodes per robot (torch checkpoint).
        gate_episodes: episodes per precision of the int8 export's simulated-success gate.
        deploy_episodes: emulated deployment episodes per robot under `fault_profile`.
        deploy_seconds: longest deployment episode [s] (None: the task's time limit).
        workers: rollout and simgen processes; DataLoader workers of training.
        out: folder of everything (see the module docstring).
        language_cache: instruction-embedding cache (None: the training default).
        progress: tqdm bars inside stages.
    """

    robots: tuple[str, ...] = DEFAULT_ROBOTS
    task: str = "push"
    demos: int = 50
    preset: str = "small"
    steps: int = 1500
    batch_size: int = 32
    eval_episodes: int = 20
    gate_episodes: int = 10
    deploy_episodes: int = 3
    fault_profile: str = "flaky"
    deploy_seconds: float | None = None
    workers: int = 2
    out: str = "out/demo"
    language_cache: str | None = None
    progress: bool = True

    def __post_init__(self):
        object.__setattr__(self, "robots", tuple(self.robots))
        object.__setattr__(self, "out", str(self.out))
        counts = {k: getattr(self, k) for k in ("demos", "steps", "batch_size", "eval_episodes", "gate_episodes",
                                                "deploy_episodes", "workers")}
        bad = {k: v for k, v in counts.items() if not isinstance(v, int) or v < 1}
        if bad:
            raise ConfigError(f"demo: {bad} must be integers >= 1")
        if not self.robots or len(set(self.robots)) != len(self.robots):
            raise ConfigError(f"demo: --robots needs at least one robot, each once; found {list(self.robots)}")
        if self.deploy_seconds is not None and self.deploy_seconds <= 0:
            raise ConfigError(f"demo: --deploy-seconds must be > 0, found {self.deploy_seconds}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # --- where things go ---------------------------------------------------------------
    @property
    def root(self) -> Path:
        return Path(self.out)

    def store(self, robot: str) -> Path:
        return self.root / "data" / f"{robot}_{self.task}.zarr"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def train_record(self) -> Path:
        return self.root / "run" / "demo_train.json"

    def eval_record(self, robot: str) -> Path:
        return self.root / "eval" / f"{robot}.json"

    @property
    def video_dir(self) -> Path:
        return self.root / "eval" / "videos"

    def bundle(self, robot: str) -> Path:
        return self.root / "bundles" / robot

    def export_record(self, robot: str) -> Path:
        return self.root / "bundles" / f"{robot}.json"

    def deploy_record(self, robot: str) -> Path:
        return self.root / "deploy" / f"{robot}.json"

    def blackbox(self, robot: str) -> Path:
        return self.root / "deploy" / f"{robot}.blackbox.jsonl"
