"""Language grounding in eval: which object a rollout manipulated, against the one the
instruction named. Driven through `run_policy` (the eval's gymnasium rollout) by the
scripted experts, by an expert sent to a distractor, and by a policy that holds still."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from embodied.eval import Execution, grounding
from embodied.eval.policy_rollout import run_policy
from embodied.eval.rollouts import RolloutJob, RolloutResult, run_jobs
from embodied.eval.stats import by_target_color
from embodied.policy.io import ActionChunk, Observation
from sim_scenes import experts
from sim_scenes.env import TaskEnv
from sim_scenes.tasks import Instance


class ExpertPolicy:
    """The task's scripted expert as a `RolloutPolicy` (chunks of one action); `target`
    sends it to another cube than the instruction names."""

    chunk = 1

    def __init__(self, env: TaskEnv, target: str | None = None):
        self.env, self.target, self.expert = env, target, None

    def reset(self, seed: int) -> None:
        instance = self.env.instance
        if self.target is not None:
            instance = dataclasses.replace(instance, target=self.target)
        self.expert = experts.make(self.env.task.name, self.env.scene, instance)

    def act(self, obs: Observation) -> ActionChunk:
        return ActionChunk(self.expert.act()[None].astype(np.float32))


class HoldPolicy:
    """Asks for the pose it sees: the arm stays where it is."""

    chunk = 4

    def reset(self, seed: int) -> None:
        pass

    def act(self, obs: Observation) -> ActionChunk:
        return ActionChunk(np.repeat(obs.state[None], self.chunk, axis=0))


@pytest.fixture(scope="module")
def env():
    env = TaskEnv("lift", "so100")
    yield env
    env.close()


@pytest.mark.parametrize("task", ["lift", "push", "place", "stack"])
def test_the_expert_manipulates_the_named_object(task):
    env = TaskEnv(task, "so100")
    ep = run_policy(env, ExpertPolicy(env), seed=3, execution=Execution())
    env.close()
    assert ep.success and ep.target == env.instance.target == "cube0"
    assert ep.manipulated == ep.target


def test_an_expert_sent_to_a_distractor_is_caught(env):
    ep = run_policy(env, ExpertPolicy(env, target="cube1"), seed=3, execution=Execution())
    assert not ep.success and ep.manipulated == "cube1" != ep.target


def test_a_policy_that_holds_still_manipulates_nothing(env):
    ep = run_policy(env, HoldPolicy(), seed=3, execution=Execution())
    assert ep.steps == env.max_steps and ep.manipulated is None


def test_named_object_rate_counts_moved_and_all_episodes():
    def result(manipulated):
        return RolloutResult("so100", "lift", 0, False, 1, "", 0.0, target="cube0", manipulated=manipulated)

    g = grounding([result("cube0"), result("cube0"), result("cube2"), result(None)])
    assert (g["named"], g["manipulated"], g["episodes"]) == (2, 3, 4)
    assert g["of_manipulated"] == pytest.approx(2 / 3) and g["of_all"] == 0.5
    assert 0 < g["ci95"][0] < 2 / 3 < g["ci95"][1] < 1
    assert grounding([result(None)])["of_manipulated"] is None


def test_the_target_shares_its_colour_only_when_another_prop_has_it():
    colors = {"cube0": "red", "cube1": "blue", "zone0": "green", "zone1": "yellow"}
    inst = Instance("push the red cube onto the green zone", "cube0", "zone0", colors)
    assert not inst.target_color_shared
    assert dataclasses.replace(inst, colors={**colors, "zone1": "red"}).target_color_shared
    assert not dataclasses.replace(inst, colors={}).target_color_shared


def test_rollouts_record_whether_the_target_shares_its_colour():
    """Colours are drawn per kind, so some push scenes hold a cube and a zone of one colour;
    each rollout records which kind of scene its seed drew, and the split counts them."""
    env = TaskEnv("push", "koch", images=False)
    first_seed = {}  # target_color_shared -> the first seed that draws such a scene
    for seed in range(40):
        env.reset(seed=seed)
        first_seed.setdefault(env.instance.target_color_shared, seed)
    env.close()
    assert set(first_seed) == {True, False}
    results = run_jobs([RolloutJob("koch", "push", seed) for seed in first_seed.values()], progress=False)
    assert [r.target_color_shared for r in results] == list(first_seed)
    split = by_target_color(results)
    for r in results:
        counts = split["shared" if r.target_color_shared else "distinct"]
        assert counts == {"successes": int(r.success), "episodes": 1}
    assert by_target_color([dataclasses.replace(r, target_color_shared=None) for r in results]) is None
