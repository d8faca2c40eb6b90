"""`run_demo(cfg)`: the six stages in order, a progress line per stage and robot, the report.

    >>> from embodied.demo import DemoConfig, run_demo
    >>> result = run_demo(DemoConfig(robots=("so100", "koch"), steps=500, out="out/demo"))
    >>> result.summary["robots"]["so100"]["eval"]["success_rate"]

A stage that fails with a library error stops the demo with a `DemoError` naming the stage
and the command that resumes it; everything finished before stays on disk and is reused.
"""

from __future__ import annotations

import functools
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from embodied.bench.machine import describe
from embodied.demo.config import STAGES, DemoConfig, DemoError
from embodied.demo.report import demo_command, write_report
from embodied.demo.ship import DeployResult, ExportResult, deploy_robot, export_robot
from embodied.demo.stages import DataResult, EvalResult, TrainResult, collect, evaluate_robot, train_pooled

T = TypeVar("T")
Log = Callable[[str], None]


@dataclass
class DemoResult:
    """Every stage's results; `summary` is what summary.json holds (and the report shows)."""

    config: DemoConfig
    data: list[DataResult] = field(default_factory=list)
    train: TrainResult | None = None
    evals: list[EvalResult] = field(default_factory=list)
    exports: list[ExportResult] = field(default_factory=list)
    deploys: list[DeployResult] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def reused(self) -> list[str]:
        """Stages whose every result was found done (reused from an earlier run)."""
        done = {"data": self.data, "train": [self.train] if self.train else [], "eval": self.evals,
                "export": self.exports, "deploy": self.deploys}
        return [name for name, results in done.items() if results and all(r.skipped for r in results)]

    @property
    def summary(self) -> dict[str, Any]:
        by_robot = {name: {} for name in self.config.robots}
        for kind, results in (("data", self.data), ("eval", self.evals), ("export", self.exports),
                              ("deploy", self.deploys)):
            for r in results:
                by_robot[r.robot][kind] = asdict(r)
        return {"config": self.config.to_dict(), "machine": describe(), "wall_s": round(self.wall_s, 1),
                "stage_seconds": self.stage_seconds, "reused": self.reused,
                "train": asdict(self.train) if self.train else None, "robots": by_robot}


def _check_names(cfg: DemoConfig) -> None:
    """Unknown robots or task fail here, before any work (with the names there are)."""
    import robots
    from sim_scenes import tasks

    for name in cfg.robots:
        robots.load(name)
    tasks.get(cfg.task)


def run_demo(cfg: DemoConfig, log: Log = print) -> DemoResult:
    """Run (or resume) the demo; writes report.md and summary.json under `cfg.out`."""
    from robots import RobotsError
    from sim_scenes import SimScenesError

    from embodied.errors import EmbodiedError

    _check_names(cfg)
    result, t_start = DemoResult(cfg), time.perf_counter()

    def stage(name: str, what: str, work: Callable[[], T]) -> T:
        number = f"[{STAGES.index(name) + 1}/{len(STAGES)}]"
        log(f"{number} {what}")
        t0 = time.perf_counter()
        try:
            out = work()
        except DemoError:
            raise
        except (EmbodiedError, RobotsError, SimScenesError) as e:
            raise DemoError(name, f"{type(e).__name__}: {e}", demo_command(cfg)) from e
        seconds = round(time.perf_counter() - t0, 1)
        if name != "report":  # the report holds the times of the stages before it
            result.stage_seconds[name] = seconds
        log(f"{number} {name} done in {seconds:.0f} s (total {time.perf_counter() - t_start:.0f} s)")
        return out

    def logged(robot: str, r: T, line: Callable[[T], str]) -> T:
        log(f"      {robot}: {line(r)}" + (" (reused)" if getattr(r, "skipped", False) else ""))
        return r

    def each(make: Callable[[str], T], line: Callable[[T], str]) -> list[T]:
        return [logged(robot, make(robot), line) for robot in cfg.robots]

    result.data = stage("data", f"simulated demonstrations: {cfg.demos} per robot, task {cfg.task!r}",
                        lambda: each(lambda robot: collect(cfg, robot), _data_line))
    result.train = stage("train", f"pooled training: preset {cfg.preset!r}, {cfg.steps} steps, batch "
                         f"{cfg.batch_size}, {len(cfg.robots)} robots",
                         lambda: logged("policy", train_pooled(cfg, result.data), _train_line))
    trained, stores = result.train, {d.robot: d for d in result.data}
    result.evals = stage("eval", f"evaluation: {cfg.eval_episodes} seeded episodes per robot",
                         lambda: each(lambda robot: evaluate_robot(cfg, robot, trained), _eval_line))
    policy = functools.cache(lambda: _load_policy(cfg))  # loaded once, only if some robot needs an export
    result.exports = stage(
        "export", f"int8 export through the gates ({cfg.gate_episodes} gate episodes per precision)",
        lambda: each(lambda robot: export_robot(cfg, robot, trained, stores[robot], policy), _export_line))
    bundles = {e.robot: e for e in result.exports}
    result.deploys = stage(
        "deploy", f"emulated deployment: {cfg.deploy_episodes} episodes per robot, fault profile {cfg.fault_profile!r}",
        lambda: each(lambda robot: deploy_robot(cfg, robot, bundles[robot]), _deploy_line))
    result.wall_s = time.perf_counter() - t_start
    stage("report", f"report: {cfg.root / 'report.md'}, {cfg.root / 'summary.json'}",
          lambda: write_report(result.summary, cfg.root))
    return result


def _data_line(r: DataResult) -> str:
    return f"{r.episodes} demos in {r.path} (the expert succeeded on {r.episodes}/{r.seeds_tried} seeds)"


def _train_line(r: TrainResult) -> str:
    loss = "-" if r.loss_ema is None else f"{r.loss_ema:.4f}"
    return f"{r.steps} steps, smoothed loss {loss}, {r.steps_per_s:.2f} steps/s -> {r.path}"


def _eval_line(r: EvalResult) -> str:
    return f"{r.successes}/{r.episodes} succeeded ({100 * r.success_rate:.0f}%), video {r.video}"


def _export_line(r: ExportResult) -> str:
    return f"{r.decision} -> {r.bundle}"


def _deploy_line(r: DeployResult) -> str:
    if r.refused:
        return r.refused
    return (f"{r.successes}/{r.episodes} succeeded, {sum(r.faults.values())} faults, {r.limit_violations} limit "
            f"violations, period error p99 {r.period_error_p99_ms} ms")


def _load_policy(cfg: DemoConfig) -> Any:
    from embodied.policy import LanguageEncoder, load_checkpoint
    from embodied.train.config import default_language_cache
    from embodied.train.rundir import resolve_policy

    language = LanguageEncoder(cache_dir=cfg.language_cache or default_language_cache())
    return load_checkpoint(resolve_policy(cfg.run), robots_needed=list(cfg.robots), language=language)
