"""Projection of world points into camera images, checked against MuJoCo's own renderings."""

import mujoco
import numpy as np
import pytest

from sim_scenes.camera import project
from sim_scenes.env import ROLES, TaskEnv


HIDDEN = 5  # a geom group nothing else uses


def _visible_box(env: TaskEnv, camera: str, body: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(min, max) normalized image coordinates of `body`'s pixels in `camera`, from MuJoCo's
    segmentation rendering with the robot hidden (it may stand in front of the object; the
    projection knows nothing of occlusion); None when fewer than 4 pixels show."""
    spec = next(c for c in env.robot.cameras if c.name == camera)
    model = env.scene.model
    robot_geoms = np.isin(model.geom_bodyid, list(env.scene._robot_bodies))
    saved = model.geom_group.copy()
    model.geom_group[robot_geoms] = HIDDEN
    option = mujoco.MjvOption()
    option.geomgroup[HIDDEN] = 0
    renderer = mujoco.Renderer(model, spec.height, spec.width)
    renderer.enable_segmentation_rendering()
    renderer.update_scene(env.scene.data, camera, scene_option=option)
    model.geom_group[:] = saved
    seg = renderer.render()
    renderer.close()
    geoms = np.flatnonzero(model.geom_bodyid == model.body(body).id)
    rows, cols = np.nonzero(np.isin(seg[..., 0], geoms) & (seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)))
    if len(rows) < 4:
        return None
    xy = np.stack([(cols + 0.5) / spec.width, (rows + 0.5) / spec.height], axis=-1) * 2 - 1
    return xy.min(0), xy.max(0)


@pytest.mark.parametrize("robot,task", [("koch", "push"), ("so100", "lift")])
def test_role_pixels_land_on_the_named_objects(robot, task):
    """In every camera, the target's and the goal's projected centres lie inside the object's
    silhouette (MuJoCo's segmentation rendering) within a pixel, over several layouts."""
    env = TaskEnv(task, robot, images=False)
    checked = 0
    for seed in range(4):
        env.reset(seed=seed)
        inst = env.instance
        roles = env.role_pixels()
        assert set(roles) == {c.name for c in env.robot.cameras}
        for cam, xy in roles.items():
            assert xy.shape == (len(ROLES), 2) and xy.dtype == np.float32
            pixel = 2.0 / next(c.width for c in env.robot.cameras if c.name == cam)
            for row, body in enumerate((inst.target, inst.goal)):
                if body is None:
                    assert np.isnan(xy[row]).all()
                    continue
                box = _visible_box(env, cam, body)
                if box is None or np.isnan(xy[row]).any():
                    continue
                assert np.all(xy[row] >= box[0] - pixel) and np.all(xy[row] <= box[1] + pixel), (seed, cam, body)
                checked += 1
    assert checked >= 6
    env.close()


def test_points_behind_or_beside_the_camera_are_nan():
    env = TaskEnv("lift", "so100")
    env.reset(seed=0)
    model, data = env.scene.model, env.scene.data
    cam = model.camera("front")
    pos, rot = data.cam_xpos[cam.id], data.cam_xmat[cam.id].reshape(3, 3)
    ahead, behind = pos - rot[:, 2] * 0.5, pos + rot[:, 2] * 0.5  # the camera looks along -z
    beside = ahead + rot[:, 0] * 5.0
    xy = project(model, data, "front", np.stack([ahead, behind, beside]), 96, 96)
    np.testing.assert_allclose(xy[0], [0.0, 0.0], atol=1e-6)  # on the optical axis: the image centre
    assert np.isnan(xy[1]).all() and np.isnan(xy[2]).all()
    up = project(model, data, "front", (ahead + rot[:, 1] * 0.05)[None], 96, 96)[0]
    assert up[1] < 0 and abs(up[0]) < 1e-6  # camera +y is up: towards the top row, y < 0
    env.close()
