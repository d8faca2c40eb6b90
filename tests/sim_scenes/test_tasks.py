"""Task success predicates on directly set simulator state, colours and distractors."""

import mujoco
import numpy as np
import pytest

from sim_scenes import SimScenesError, tasks
from sim_scenes.env import TaskEnv
from sim_scenes.props import BIN_WALL, COLORS
from sim_scenes.tasks import Lift


@pytest.fixture(scope="module")
def envs():
    return {t: TaskEnv(t, robot="so100", images=False) for t in tasks.available()}


def teleport(env, body, pos, yaw=0.0):
    env.scene.set_pose(body, pos, yaw)
    mujoco.mj_forward(env.scene.model, env.scene.data)


def success(env):
    return env.task.success(env.scene, env.instance)


def others(env, kind):
    inst = env.instance
    return [p for p, prop in env.scene.props.items() if prop.kind == kind and p not in (inst.target, inst.goal)]


def test_registry():
    assert tasks.available() == ["lift", "push", "place", "stack"]
    with pytest.raises(SimScenesError, match="already registered"):
        tasks.register(Lift)
    assert tasks.get("lift") is Lift


@pytest.mark.parametrize("seed", [0, 1])
def test_lift_success(envs, seed):
    env = envs["lift"]
    env.reset(seed=seed)
    s = env.task.s
    inst = env.instance
    assert not success(env)
    xy = env.scene.body_pos(inst.target)[:2]
    teleport(env, inst.target, [*xy, s / 2 + 2.5 * s])
    assert success(env)
    teleport(env, inst.target, [*xy, s / 2 + 1.5 * s])  # not high enough
    assert not success(env)
    env.reset(seed=seed)
    for d in others(env, "cube"):
        xy = env.scene.body_pos(d)[:2]
        teleport(env, d, [*xy, s / 2 + 3 * s])
        assert not success(env)


@pytest.mark.parametrize("seed", [0, 1])
def test_stack_success(envs, seed):
    env = envs["stack"]
    env.reset(seed=seed)
    s, inst = env.task.s, env.instance
    assert not success(env)
    base = env.scene.body_pos(inst.goal)
    teleport(env, inst.target, base + [0, 0, s], env.scene.body_yaw(inst.goal))
    assert success(env)
    teleport(env, inst.target, base + [0.8 * s, 0, s])  # overhanging: off centre
    assert not success(env)
    teleport(env, inst.target, base + [0, 0, 2 * s])  # floating above
    assert not success(env)
    env.reset(seed=seed)
    (d,) = others(env, "cube")
    teleport(env, inst.target, env.scene.body_pos(d) + [0, 0, s], env.scene.body_yaw(d))  # on the distractor
    assert not success(env)
    env.reset(seed=seed)
    teleport(env, d, base + [0, 0, s], env.scene.body_yaw(inst.goal))  # distractor on the base
    assert not success(env)


@pytest.mark.parametrize("seed", [0, 1])
def test_place_success(envs, seed):
    env = envs["place"]
    env.reset(seed=seed)
    s, inst = env.task.s, env.instance
    assert not success(env)
    bin_pos = env.scene.body_pos(inst.goal)
    inside = bin_pos + [0, 0, BIN_WALL * s + s / 2]
    teleport(env, inst.target, inside, env.scene.body_yaw(inst.goal))
    assert success(env)
    teleport(env, inst.target, inside + [0, 0, 2 * s])  # above the rim
    assert not success(env)
    (other_bin,) = others(env, "bin")
    teleport(env, inst.target, env.scene.body_pos(other_bin) + [0, 0, BIN_WALL * s + s / 2])
    assert not success(env)
    env.reset(seed=seed)
    (d,) = others(env, "cube")
    teleport(env, d, inside)  # the distractor in the right bin
    assert not success(env)


@pytest.mark.parametrize("seed", [0, 1])
def test_push_success(envs, seed):
    env = envs["push"]
    env.reset(seed=seed)
    s, inst = env.task.s, env.instance
    assert not success(env)
    zone = env.scene.body_pos(inst.goal)
    teleport(env, inst.target, [zone[0], zone[1], s / 2])
    assert success(env)
    teleport(env, inst.target, [zone[0], zone[1], 3 * s])  # lifted over the zone
    assert not success(env)
    (other_zone,) = others(env, "zone")
    oz = env.scene.body_pos(other_zone)
    teleport(env, inst.target, [oz[0], oz[1], s / 2])
    assert not success(env)


def test_success_ends_episode(envs):
    env = envs["push"]
    env.reset(seed=4)
    zone = env.scene.body_pos(env.instance.goal)
    teleport(env, env.instance.target, [zone[0], zone[1], env.task.s / 2])
    _, reward, terminated, truncated, info = env.step(np.append(env.scene.arm_q(), 1.0))
    assert info["success"] is True and terminated is True and reward == 1.0 and truncated is False


@pytest.mark.parametrize("task", tasks.available())
def test_colours_distinct_and_instruction_unambiguous(envs, task):
    env = envs[task]
    for seed in range(8):
        env.reset(seed=seed)
        inst = env.instance
        assert set(inst.colors) == set(env.scene.props)
        for kind in ("cube", "bin", "zone"):
            names = [p for p, prop in env.scene.props.items() if prop.kind == kind]
            assert len({inst.colors[p] for p in names}) == len(names)
        nouns = [inst.noun(p) for p in env.scene.props]
        assert nouns.count(inst.noun(inst.target)) == 1
        assert inst.noun(inst.target) in inst.instruction
        if inst.goal is not None:
            assert nouns.count(inst.noun(inst.goal)) == 1
            assert inst.noun(inst.goal) in inst.instruction
        # what the camera sees is the colour the instruction names
        m = env.scene.model
        for p in env.scene.props:
            rgba = m.geom_rgba[m.geom_bodyid == m.body(p).id]
            np.testing.assert_allclose(rgba, np.tile(COLORS[inst.colors[p]], (len(rgba), 1)), atol=1e-6)


def test_push_layout_feasible(envs):
    env = envs["push"]
    w = env.robot.workspace
    for seed in range(5):
        env.reset(seed=seed)
        xy = {p: env.scene.body_pos(p)[:2] for p in env.scene.props}
        assert env.task.feasible(xy, env.instance.target, env.instance.goal)
        d = xy["zone0"] - xy["cube0"]
        start = xy["cube0"] - d / np.linalg.norm(d) * 1.6 * w.object_size
        assert np.all(np.abs(start - w.center) <= np.divide(w.size, 2) + 1e-9)


def test_role_variants_cover_every_role_pair(envs):
    assert envs["lift"].task.role_variants() == [("cube0", None), ("cube1", None), ("cube2", None)]
    # variant 1 swaps every role where it can: the other cube and the other zone
    assert envs["push"].task.role_variants() == [("cube0", "zone0"), ("cube1", "zone1"), ("cube0", "zone1"),
                                                 ("cube1", "zone0")]
    assert envs["place"].task.role_variants()[:2] == [("cube0", "bin0"), ("cube1", "bin1")]
    stack = envs["stack"].task.role_variants()
    assert stack[0] == ("cube0", "cube1") and len(stack) == 6 and all(t != g for t, g in stack)


@pytest.mark.parametrize("task", ["lift", "push"])
def test_variants_are_one_scene_with_another_instruction(envs, task):
    """Same seed, another variant: every prop where it was, in its colour; another target
    named in the instruction, phrased with the same template."""
    env = envs[task]
    for seed in range(4):
        env.reset(seed=seed)
        base = env.instance
        poses = {p: env.scene.body_pos(p).copy() for p in env.scene.props}
        env.reset(seed=seed, options={"variant": 1})
        inst = env.instance
        assert inst.colors == base.colors and inst.target != base.target
        for p, pos in poses.items():
            np.testing.assert_allclose(env.scene.body_pos(p), pos, atol=1e-9)
        assert inst.noun(inst.target) in inst.instruction and inst.instruction != base.instruction
        assert inst.instruction.split()[0] == base.instruction.split()[0]


def test_out_of_range_variant(envs):
    with pytest.raises(SimScenesError, match="role variants 0..2, found 3"):
        envs["lift"].reset(seed=0, options={"variant": 3})
