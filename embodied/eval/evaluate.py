"""`evaluate(cfg)`: success rate of a trained policy on one robot x task, over seeded episodes.

Episodes use seeds seed0, seed0 + 1, ...; far from the seeds simulated demonstrations use
(0, 1, ...) by default, so the evaluation scenes are not training scenes. The policy is a
torch checkpoint, or an export bundle run by the torch-free `PolicyEngine` (fp32 or int8,
one ONNX Runtime thread per worker): the same seeds give the same scenes and instructions
either way, so the two are directly comparable.

Before the workers start, the parent checks the policy and the instructions of every seed:
a checkpoint's are embedded into the disk cache, so the sentence encoder loads at most once
(here) instead of once per worker; a bundle must hold embeddings for all of them.

With `emulate`, a bundle's episodes run through the deploy path instead (one after another
in this process, in real time: `embodied.eval.emulated`), optionally under a fault profile;
the report adds the deployment's faults, limit violations, loop timing and fault audit.

Every report also says which object the policy manipulated in each episode and how often it
was the one the instruction named (`named_object_rate`, `embodied.eval.stats.grounding`), and
the success rate split by whether another prop had the named object's colour
(`by_target_color`: scenes where only the noun, "cube" or "bin", singles it out; gymnasium
rollouts only).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embodied.errors import ConfigError
from embodied.runtime.chunking import Execution
from embodied.eval.policy_rollout import PolicySpec
from embodied.eval.rollouts import RolloutJob, RolloutResult, run_jobs
from embodied.eval.stats import by_target_color, grounding, success_table, wilson_interval
from sim_scenes.errors import InvalidCameraJitter

DEFAULT_SEED0 = 100_000
PRECISIONS = ("auto", "fp32", "int8")


@dataclass(frozen=True)
class EvalConfig:
    """Args:
        policy: checkpoint or run folder; with `bundle`, an export bundle folder.
        robot, task: what to evaluate; episodes: how many (seeds seed0 ...).
        workers: rollout processes; instructions: "train" or "heldout" phrasings.
        video_dir: folder for mp4s of the first `videos` episodes (None: no videos).
        execution: open-loop steps per chunk or temporal ensembling.
        language_cache: cached instruction embeddings (None: embodied.train default).
        bundle: `policy` is an export bundle, run with ONNX Runtime at `precision`
            ("auto": int8 when the bundle has it).
        emulate: run the bundle's episodes through the deploy path (emulated servo chain,
            rendered cameras, asynchronous chunking; `execution` ensemble: temporal ensembling).
        fault_profile: the emulated chain's faults (none, flaky, harsh or a .toml path).
        seconds: longest emulated episode [s] (None: the task's time limit, as in simulation).
        camera_jitter: in [0, 1], how far each episode's scene cameras stray from the robot's
            poses (`sim_scenes.camera.jittered_view`; 0: not at all): how much a bumped or
            re-mounted camera costs. Simulated rollouts only.
    """

    policy: str
    robot: str
    task: str
    episodes: int = 50
    workers: int = 2
    instructions: str = "train"
    seed0: int = DEFAULT_SEED0
    video_dir: str | None = None
    videos: int = 2
    execution: Execution = field(default_factory=Execution)
    language_cache: str | None = None
    progress: bool = True
    bundle: bool = False
    precision: str = "auto"
    emulate: bool = False
    fault_profile: str | None = None
    seconds: float | None = None
    camera_jitter: float = 0.0

    def __post_init__(self):
        if self.episodes < 1 or self.workers < 1 or self.videos < 0:
            raise ConfigError(f"episodes and workers must be >= 1, videos >= 0; found {self.episodes}, "
                             f"{self.workers}, {self.videos}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {PRECISIONS}, found {self.precision!r}")
        if self.precision != "auto" and not self.bundle:
            raise ConfigError(f"precision {self.precision!r} applies to export bundles (--bundle); a torch "
                              "checkpoint runs in fp32")
        InvalidCameraJitter.check(self.camera_jitter)
        self._check_emulation()

    def _check_emulation(self) -> None:
        if self.emulate and self.camera_jitter:
            raise ConfigError("--camera-jitter moves simulated scene cameras; the emulated deploy path renders the "
                              "robot's own poses: drop one of --emulate and --camera-jitter")
        if not self.emulate:
            if self.fault_profile is not None or self.seconds is not None:
                raise ConfigError("--fault-profile and --seconds apply to emulated episodes: add --emulate")
            return
        if not self.bundle:
            raise ConfigError("--emulate runs the deploy path, which runs export bundles: give --bundle bundles/R "
                              "(`embodied export`) instead of --policy")
        if self.video_dir is not None:
            raise ConfigError("--emulate records no videos (the deploy path renders only the robot's cameras); "
                              "drop --video, or record the episodes with `embodied deploy --emulate --record DIR`")
        if self.execution.mode == "open_loop" and self.execution.execute:
            raise ConfigError(f"--execute {self.execution.execute}: the deploy path chunks asynchronously (the next "
                              "chunk is inferred while the current one runs) or ensembles (--ensemble); drop --execute")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError(f"--seconds must be > 0, found {self.seconds}")


def episode_instructions(robot: str, task: str, seed0: int, episodes: int, instruction_set: str = "train") -> list[str]:
    """The instruction of each evaluation episode (seeds seed0 ... seed0 + episodes - 1), in order."""
    from sim_scenes.env import TaskEnv

    env = TaskEnv(task, robot, images=False, instruction_set=instruction_set)
    texts = [env.reset(seed=seed0 + i)[0]["instruction"] for i in range(episodes)]
    env.close()
    return texts


def eval_dir(ckpt: Path) -> Path:
    """Where a checkpoint's evaluation reports go: RUN/eval for a run's last checkpoint, else
    CHECKPOINT/eval."""
    return ckpt.parent / "eval" if ckpt.name == "last" else ckpt / "eval"


def jitter_suffix(camera_jitter: float) -> str:
    """The part of a report's file name that says its scene cameras were jittered ("" if not)."""
    return f"_camjitter{camera_jitter:g}" if camera_jitter else ""


def report_path(ckpt: Path, robot: str, task: str, instructions: str, camera_jitter: float = 0.0) -> Path:
    """The report of `embodied eval --policy` for one robot x task, by default."""
    return eval_dir(ckpt) / f"{robot}_{task}_{instructions}{jitter_suffix(camera_jitter)}.json"


def weights_sha256(ckpt: Path) -> str:
    """The checkpoint's weights hash, from its manifest: which weights a report evaluated."""
    from embodied.train.rundir import MANIFEST

    return json.loads((ckpt / MANIFEST).read_text())["weights_sha256"]


def adapter_sha256(ckpt: Path, robot: str) -> str | None:
    """The hash of `robot`'s adapter-only finetune kept next to the checkpoint (None: it has none),
    which loading the checkpoint adds to the base weights: a new finetune is other weights."""
    from embodied.policy.checkpoint import ADAPTERS

    meta = ckpt / ADAPTERS / f"{robot}.json"
    return json.loads(meta.read_text())["weights_sha256"] if meta.is_file() else None


def _checkpoint_spec(cfg: EvalConfig, texts: list[str]) -> tuple[str, PolicySpec]:
    """Load the checkpoint once here (fail fast) and embed every instruction into the disk cache."""
    from embodied.policy import LanguageEncoder, load_checkpoint
    from embodied.train.config import default_language_cache
    from embodied.train.rundir import resolve_policy

    ckpt = resolve_policy(cfg.policy)
    cache = str(cfg.language_cache or default_language_cache())
    language = LanguageEncoder(cache_dir=cache)
    load_checkpoint(ckpt, robots_needed=[cfg.robot], language=language)
    language(texts)
    threads = max(1, (os.cpu_count() or 1) // cfg.workers)
    return str(ckpt), PolicySpec(str(ckpt), cfg.execution, cache, threads)


def _bundle_spec(cfg: EvalConfig, texts: list[str]) -> tuple[str, PolicySpec]:
    """Validate the bundle here (robot, files, precision, instructions); one ONNX Runtime thread per
    worker, so that workers do not compete for cores."""
    from embodied.runtime import BundleMismatch, load_bundle

    bundle = load_bundle(cfg.policy, cfg.robot)
    precision = ("int8" if "int8" in bundle.precisions else "fp32") if cfg.precision == "auto" else cfg.precision
    bundle.model_path(precision)  # refuses a precision the bundle does not have
    missing = sorted(set(texts) - set(bundle.instructions))
    if missing:
        raise BundleMismatch(f"bundle {bundle.path} holds no embedding for {len(missing)} instruction(s) of the "
                             f"{cfg.task} episodes (seeds {cfg.seed0}..{cfg.seed0 + cfg.episodes - 1}): {missing}; "
                             "export it with these --instructions, or with --gate-task "
                             f"{cfg.task} (which adds the instructions of its seeds)")
    return str(bundle.path), PolicySpec(str(bundle.path), cfg.execution, threads=1, precision=precision)


def _rollouts(cfg: EvalConfig, spec: PolicySpec) -> list[RolloutResult]:
    """The episodes as gymnasium rollouts in worker processes."""
    video = Path(cfg.video_dir) if cfg.video_dir else None
    jobs = [RolloutJob(cfg.robot, cfg.task, cfg.seed0 + i,
                       str(video / f"{cfg.robot}_{cfg.task}_{cfg.seed0 + i}.mp4") if video and i < cfg.videos else None,
                       cfg.instructions, spec, cfg.camera_jitter) for i in range(cfg.episodes)]
    return run_jobs(jobs, workers=min(cfg.workers, cfg.episodes), progress=cfg.progress,
                    desc=f"eval {cfg.robot}/{cfg.task}" + (f" ({spec.precision})" if spec.precision else ""))


def _emulated(cfg: EvalConfig, spec: PolicySpec) -> tuple[list[RolloutResult], list[dict[str, Any]], dict[str, Any]]:
    """The episodes through the deploy path: rollouts, per-episode deploy fields, deploy totals."""
    from tqdm import tqdm

    from embodied.deploy import DeployConfig
    from embodied.eval.emulated import run_emulated
    from sim_scenes import tasks

    seconds = cfg.seconds or tasks.get(cfg.task).time_limit
    config = DeployConfig(spec.path, seconds=seconds, precision=spec.precision,
                          scheduler="ensemble" if cfg.execution.mode == "ensemble" else "async")
    profile = cfg.fault_profile or "none"
    with tqdm(total=cfg.episodes, desc=f"eval {cfg.robot}/{cfg.task} (emulated, {profile})", unit="ep",
              disable=not cfg.progress) as bar:
        run = run_emulated(spec.path, cfg.task, range(cfg.seed0, cfg.seed0 + cfg.episodes), cfg.fault_profile,
                           config, cfg.instructions, on_episode=lambda _: bar.update())
    extra = [{"stopped": r.stopped, "faults": r.faults, "injected": r.injected,
              "limit_violations": r.limit_violations} for r in run.episodes]
    return run.rollouts(), extra, run.summary() | {"scheduler": config.scheduler, "seconds": seconds}


def _episode(r: RolloutResult) -> dict[str, Any]:
    return {"seed": r.seed, "success": r.success, "steps": r.steps, "instruction": r.instruction,
            "seconds": round(r.seconds, 2), "chunks": r.chunks, "infer_ms": r.infer_ms, "video": r.video,
            "target": r.target, "manipulated": r.manipulated, "named_object": r.named_object,
            "target_color_shared": r.target_color_shared}


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run the episodes; returns the JSON-ready report (rate, 95% Wilson interval, episodes,
    grounding; with `emulate`, the deploy path's faults and timing)."""
    texts = episode_instructions(cfg.robot, cfg.task, cfg.seed0, cfg.episodes, cfg.instructions)
    path, spec = (_bundle_spec if cfg.bundle else _checkpoint_spec)(cfg, texts)
    t0 = time.perf_counter()
    if cfg.emulate:
        results, extra, deploy = _emulated(cfg, spec)
    else:
        results, extra, deploy = _rollouts(cfg, spec), [{}] * cfg.episodes, None
    wall = time.perf_counter() - t0
    rate = success_table(results)[(cfg.robot, cfg.task)]
    lo, hi = wilson_interval(rate.successes, rate.episodes)
    report = {
        "policy": path, "runtime": "onnxruntime" if spec.precision else "torch", "precision": spec.precision or "fp32",
        "weights_sha256": None if cfg.bundle else weights_sha256(Path(path)),
        "adapter_sha256": None if cfg.bundle else adapter_sha256(Path(path), cfg.robot),
        "robot": cfg.robot, "task": cfg.task, "instructions": cfg.instructions, "camera_jitter": cfg.camera_jitter,
        "episodes": rate.episodes, "successes": rate.successes, "success_rate": rate.rate, "ci95": [lo, hi],
        "named_object_rate": grounding(results), "by_target_color": by_target_color(results),
        "seed0": cfg.seed0, "execution": asdict(cfg.execution), "workers": 1 if cfg.emulate else cfg.workers,
        "wall_s": round(wall, 1), "infer_ms_mean": round(sum(r.infer_ms for r in results) / len(results), 3),
        "videos": [r.video for r in results if r.video],
        "results": [_episode(r) | e for r, e in zip(results, extra)],
    }
    if deploy is not None:
        report["emulated"] = deploy
    return report


def evaluate_or_read(cfg: EvalConfig, out: Path, **extra: Any) -> dict[str, Any]:
    """The report at `out` when it evaluated the same checkpoint weights (and the robot's adapter
    next to them) on the same episodes (robot, task, instructions, seeds, execution, cameras);
    else `evaluate(cfg)` with `extra` fields added, written to `out`. A report cut short by a
    killed process is run again.
    Checkpoints only (a bundle's report carries no weights hash)."""
    from embodied.train.rundir import resolve_policy

    if cfg.bundle or cfg.emulate:
        raise ConfigError("evaluate_or_read reuses reports of torch checkpoints; evaluate a bundle with evaluate()")
    keys = ("weights_sha256", "adapter_sha256", "robot", "task", "instructions", "episodes", "seed0", "execution",
            "camera_jitter")
    ckpt = resolve_policy(cfg.policy)
    want = (weights_sha256(ckpt), adapter_sha256(ckpt, cfg.robot), cfg.robot, cfg.task, cfg.instructions, cfg.episodes,
            cfg.seed0, asdict(cfg.execution), cfg.camera_jitter)
    try:
        old = json.loads(out.read_text())
    except (OSError, ValueError):  # none yet, or cut short: run it
        old = {}
    if tuple(old.get(k) for k in keys) == want:
        return old
    report = evaluate(cfg) | extra
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report
