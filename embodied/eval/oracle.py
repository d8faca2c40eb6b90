"""The privileged-state oracle: behaviour cloning with perfect perception and grounding.

A vision-language policy has to find the named objects in its camera images and then imitate
the expert's motion. This oracle is handed the first part: its input is the robot's state plus
the simulator's poses of the instruction's target and goal, and a small MLP regresses the
expert's action chunk (L1 on normalized actions), executed through the same `ChunkExecutor`
the policies use. Its success rate is the ceiling of the imitation setup (demonstrations,
chunking, execution horizon) for a robot x task; the gap between it and a policy is what
perception and language grounding cost.

Three inputs (`--inputs`): "named" hands over the named target's and goal's poses (perfect
perception and grounding); "scene" hands over every prop's pose and colour, ordered by colour
name (so the order tells nothing about the roles), plus the colours the instruction names: the
oracle must bind the words to the objects itself (perfect perception, learned grounding);
"pixels" hands over where the named target and goal are in each of the robot's camera images
(normalized image coordinates and a visible flag): exactly what a policy's grounded state
(`PolicyConfig.grounded_state`) reads when its keypoints are perfect, so the oracle's success is
the ceiling of that representation, without any camera calibration or depth. With
`--keypoints-from RUN` (inputs "pixels"), the oracle is evaluated a second time on the same new
seeds with those image positions read from that policy's keypoints 0 and 1 instead (camera
images rendered; the visible flags stay the simulator's): what an action pathway learned from
perfect positions reaches with the policy's perception.

    python -m embodied.eval.oracle --robot koch --task push --demos 50 --steps 3000 --execute 16

Prints one JSON object (success on the demonstration seeds and on new seeds from 100000,
with Wilson 95% intervals). Demonstrations come from the scripted expert at the seeds
0, 1, ... (failed ones skipped), as `embodied simgen` draws them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass

import numpy as np

from embodied.errors import ConfigError
from embodied.eval.stats import SuccessRate
from embodied.runtime.chunking import ChunkExecutor, Execution


@dataclass(frozen=True)
class OracleConfig:
    robot: str = "koch"
    task: str = "push"
    demos: int = 50
    steps: int = 3000  # optimizer steps
    batch: int = 256
    chunk: int = 16  # H
    execute: int = 0  # actions run per chunk (0: the whole chunk), as `embodied eval --execute`
    width: int = 512
    inputs: str = "named"  # "named" | "scene" (module docstring)
    keypoints_from: str = ""  # a policy run whose keypoints replace the true pixels in a second evaluation
    episodes: int = 50  # evaluation episodes on new seeds (and up to 20 on demonstration seeds)
    seed0: int = 100000
    workers: int = 2

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ConfigError(f"unknown oracle inputs {self.inputs!r}; use one of {INPUTS}")
        if self.keypoints_from and self.inputs != "pixels":
            raise ConfigError("--keypoints-from replaces the image positions of inputs 'pixels'; add --inputs pixels")


INPUTS = ("named", "scene", "pixels")
PIXELS_PER_CAMERA = 6  # inputs "pixels", per camera: x, y of the target and of the goal, then their visible flags


def _pose(scene, body: str) -> list:
    """Position [m] and yaw as sin/cos of 4 yaw (a cube looks the same every quarter turn)."""
    yaw = scene.body_yaw(body)
    return [scene.body_pos(body), [np.sin(4 * yaw), np.cos(4 * yaw)]]


def _one_hot(color: str) -> np.ndarray:
    from sim_scenes.props import COLORS

    return (np.array(list(COLORS)) == color).astype(np.float32)


def privileged_features(env, inputs: str = "named") -> np.ndarray:
    """Robot state, then (inputs "named") the target's pose and the goal's position when the
    task has one, or (inputs "scene") every prop's pose and colour, ordered by colour name, and
    the target's and goal's colours, or (inputs "pixels") per camera of the robot the target's
    and goal's normalized image coordinates (0 where not visible, or no goal) and their
    visible flags."""
    scene, inst = env.scene, env.instance
    parts: list = [scene.state()]
    if inputs == "named":
        parts += _pose(scene, inst.target)
        if inst.goal is not None:
            parts.append(scene.body_pos(inst.goal))
    elif inputs == "scene":
        for body in sorted(inst.colors, key=lambda b: (b.rstrip("0123456789"), inst.colors[b])):
            parts += [*_pose(scene, body), _one_hot(inst.colors[body])]
        parts += [_one_hot(inst.colors[b]) for b in (inst.target, inst.goal) if b is not None]
    elif inputs == "pixels":
        for xy in env.role_pixels().values():
            visible = np.isfinite(xy).all(-1)
            parts += [np.nan_to_num(xy), visible]
    else:
        raise ConfigError(f"unknown oracle inputs {inputs!r}; use one of {INPUTS}")
    return np.concatenate([np.asarray(p, np.float32).ravel() for p in parts])


def chunk_targets(actions: np.ndarray, chunk: int) -> np.ndarray:
    """[T, m] actions -> [T, chunk, m]: the chunk starting at each frame, padded with the last action."""
    padded = np.concatenate([actions, np.repeat(actions[-1:], chunk - 1, axis=0)])
    return np.stack([padded[t:t + chunk] for t in range(len(actions))])


def demonstration(robot: str, task: str, seed: int, inputs: str = "named") -> tuple[np.ndarray, np.ndarray] | None:
    """(features [T, d], actions [T, m]) of the expert at `seed`; None when it fails."""
    from sim_scenes import experts
    from sim_scenes.env import worker_env

    env = worker_env(task, robot, images=False)
    env.reset(seed=seed)
    expert = experts.make(env.task.name, env.scene, env.instance)
    features, actions = [], []
    while True:
        features.append(privileged_features(env, inputs))
        actions.append(expert.act().astype(np.float32))
        _, _, terminated, truncated, _ = env.step(actions[-1])
        if terminated:
            return np.stack(features), np.stack(actions)
        if truncated:
            return None


class Oracle:
    """An MLP from normalized privileged features to a normalized action chunk."""

    def __init__(self, features: np.ndarray, actions: np.ndarray, chunk: int, width: int):
        import torch

        self.chunk, self.m = chunk, actions.shape[1]
        self.mx, self.sx = features.mean(0), features.std(0) + 1e-3
        self.ma, self.sa = actions.mean(0), actions.std(0) + 1e-3
        d = features.shape[1]
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d, width), torch.nn.GELU(), torch.nn.Linear(width, width), torch.nn.GELU(),
            torch.nn.Linear(width, width), torch.nn.GELU(), torch.nn.Linear(width, chunk * self.m))

    def fit(self, features: np.ndarray, chunks: np.ndarray, steps: int, batch: int, seed: int = 0) -> float:
        """AdamW with a cosine schedule; returns the last batch's loss."""
        import torch

        torch.manual_seed(seed)
        x = torch.tensor((features - self.mx) / self.sx)
        y = torch.tensor(((chunks - self.ma) / self.sa).reshape(len(chunks), -1))
        opt = torch.optim.AdamW(self.net.parameters(), 1e-3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        loss = torch.tensor(float("nan"))
        for _ in range(steps):
            idx = torch.randint(0, len(x), (batch,))
            loss = (self.net(x[idx]) - y[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
        self.net.eval()
        return float(loss.detach())

    def act(self, features: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.net(torch.tensor((features - self.mx) / self.sx)[None]).numpy()
        return out.reshape(self.chunk, self.m) * self.sa + self.ma


def with_policy_keypoints(features: np.ndarray, env, obs: dict, policy) -> np.ndarray:
    """Pixel features (`privileged_features(env, "pixels")`) with each camera's image positions
    replaced by `policy`'s keypoints 0 and 1 in `obs`'s images, where the simulator sees them."""
    from embodied.policy.io import Observation

    located = policy.keypoints_by_camera(Observation(env.robot.name, obs["instruction"], obs["state"], obs["images"]))
    out, n = features.copy(), len(env.scene.state())
    for j, cam in enumerate(env.robot.cameras):
        block = out[n + PIXELS_PER_CAMERA * j: n + PIXELS_PER_CAMERA * (j + 1)]
        seen = block[4:].astype(bool)
        if cam.name in located:
            block[:4] = np.where(np.repeat(seen, 2), located[cam.name][:2].ravel(), 0.0)
    return out


def oracle_episode(args: tuple[OracleConfig, Oracle, int, bool]) -> bool:
    """Roll the oracle out at one seed (with `cfg.keypoints_from`'s keypoints when the last
    argument is True); True on success."""
    import torch

    from sim_scenes.env import worker_env

    cfg, oracle, seed, keypoints = args
    torch.set_num_threads(1)
    policy = None
    if keypoints:
        from embodied.eval.policy_rollout import PolicySpec, load_policy

        policy = load_policy(PolicySpec(cfg.keypoints_from, threads=1), cfg.robot).policy.eval()
    env = worker_env(cfg.task, cfg.robot, images=keypoints)
    obs, _ = env.reset(seed=seed)
    executor = ChunkExecutor(Execution(execute=cfg.execute), cfg.chunk)
    while True:
        if executor.needs_chunk():
            features = privileged_features(env, cfg.inputs)
            executor.push(oracle.act(features if policy is None else with_policy_keypoints(features, env, obs, policy)))
        obs, _, terminated, truncated, _ = env.step(executor.next())
        if terminated or truncated:
            return bool(terminated)


def _rate(outcomes: list[bool]) -> dict:
    r = SuccessRate(sum(outcomes), len(outcomes))
    return {"successes": r.successes, "episodes": r.episodes, "rate": r.rate, "ci95": list(r.interval)}


def run_oracle(cfg: OracleConfig) -> dict:
    """Collect demonstrations, fit the oracle, evaluate it; the JSON-ready report."""
    t0 = time.perf_counter()
    ctx = mp.get_context("forkserver")
    with ctx.Pool(cfg.workers) as pool:
        demos: list[tuple[np.ndarray, np.ndarray]] = []
        seed = 0
        while len(demos) < cfg.demos:  # the expert fails rarely; draw seeds until enough succeeded
            batch = range(seed, seed + cfg.demos - len(demos))
            demos += [d for d in pool.starmap(demonstration, [(cfg.robot, cfg.task, s, cfg.inputs) for s in batch]) if d is not None]
            seed = batch.stop
        features = np.concatenate([f for f, _ in demos])
        actions = np.concatenate([a for _, a in demos])
        chunks = np.concatenate([chunk_targets(a, cfg.chunk) for _, a in demos])
        oracle = Oracle(features, actions, cfg.chunk, cfg.width)
        t_fit = time.perf_counter()
        loss = oracle.fit(features, chunks, cfg.steps, cfg.batch)
        t_eval = time.perf_counter()
        own = pool.map(oracle_episode, [(cfg, oracle, s, False) for s in range(min(20, seed))])
        new = pool.map(oracle_episode, [(cfg, oracle, cfg.seed0 + i, False) for i in range(cfg.episodes)])
        located = (pool.map(oracle_episode, [(cfg, oracle, cfg.seed0 + i, True) for i in range(cfg.episodes)])
                   if cfg.keypoints_from else None)
    report = {**asdict(cfg), "frames": len(features), "final_loss": loss, "demo_seeds": _rate(own),
              "new_seeds": _rate(new), "seconds": {"demos": t_fit - t0, "fit": t_eval - t_fit,
                                                   "eval": time.perf_counter() - t_eval}}
    if located is not None:
        report["new_seeds_policy_keypoints"] = _rate(located)
    return report


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m embodied.eval.oracle", description=__doc__.split("\n\n")[0])
    for f, default in asdict(OracleConfig()).items():
        p.add_argument(f"--{f.replace('_', '-')}", type=type(default), default=default,
                       choices=INPUTS if f == "inputs" else None)
    report = run_oracle(OracleConfig(**vars(p.parse_args(argv))))
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
