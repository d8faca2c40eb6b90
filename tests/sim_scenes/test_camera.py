"""Projection of world points into camera images, checked against MuJoCo's own renderings."""

import mujoco
import numpy as np
import pytest

from sim_scenes.camera import DISTANCE_FACTOR, ELEVATION_LIMITS, jittered_view, project
from sim_scenes.env import ROLES, TaskEnv
from sim_scenes.errors import InvalidCameraJitter


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


@pytest.mark.parametrize("robot,task,jitter", [("koch", "push", 0.0), ("so100", "lift", 0.0), ("koch", "push", 1.0),
                                               ("ur5e", "lift", 1.0)])
def test_role_pixels_land_on_the_named_objects(robot, task, jitter):
    """In every camera, the target's and the goal's projected centres lie inside the object's
    silhouette (MuJoCo's segmentation rendering) within a pixel, over several layouts; with
    jittered scene cameras too (the labels follow the moved cameras)."""
    env = TaskEnv(task, robot, images=False, camera_jitter=jitter)
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


def test_jittered_views_orbit_the_workspace_within_their_ranges():
    pos, lookat, fovy = np.array([0.48, 0.0, 0.32]), np.array([0.16, 0.0, 0.0]), 50.0
    same = jittered_view(pos, lookat, fovy, np.random.default_rng(0), 0.0)
    np.testing.assert_array_equal(same[0], pos)
    np.testing.assert_array_equal(same[1], lookat)
    assert same[2] == fovy
    rng, base = np.random.default_rng(1), np.linalg.norm(pos - lookat)
    views = [jittered_view(pos, lookat, fovy, rng, 1.0) for _ in range(200)]
    ratios = np.array([np.linalg.norm(p - a) / base for p, a, _ in views])
    assert DISTANCE_FACTOR[0] - 1e-9 <= ratios.min() < 0.8 and 1.6 < ratios.max() <= DISTANCE_FACTOR[1] + 1e-9
    elevations = np.degrees([np.arcsin((p - a)[2] / np.linalg.norm(p - a)) for p, a, _ in views])
    assert ELEVATION_LIMITS[0] - 1e-6 <= elevations.min() and elevations.max() <= ELEVATION_LIMITS[1] + 1e-6
    assert np.all([a[2] == lookat[2] for _, a, _ in views])  # the point looked at stays on the table plane
    assert len({round(f, 6) for *_, f in views}) == 200
    with pytest.raises(InvalidCameraJitter, match="outside \\[0, 1\\]"):
        jittered_view(pos, lookat, fovy, rng, 1.5)


def test_camera_jitter_moves_scene_cameras_not_the_layout():
    """A seed's layout is the same at any jitter; its scene cameras move (the wrist camera does
    not), differently per seed; jitter 0 on the same env puts them back exactly."""
    env = TaskEnv("lift", "so100", images=False)
    model = env.scene.model
    front, wrist = model.camera("front").id, model.camera("wrist").id
    nominal = model.cam_pos.copy(), model.cam_quat.copy(), model.cam_fovy.copy()
    env.reset(seed=5)
    layout = {p: env.scene.body_pos(p).copy() for p in env.scene.props}
    moved = []
    for seed in (5, 6):
        env.reset(seed=seed, options={"camera_jitter": 1.0})
        if seed == 5:
            assert all(np.array_equal(env.scene.body_pos(p), xyz) for p, xyz in layout.items())
        assert not np.allclose(model.cam_pos[front], nominal[0][front])
        np.testing.assert_array_equal(model.cam_pos[wrist], nominal[0][wrist])
        moved.append(model.cam_pos[front].copy())
    assert not np.allclose(*moved)
    env.reset(seed=5)
    for now, before in zip((model.cam_pos, model.cam_quat, model.cam_fovy), nominal):
        np.testing.assert_allclose(now, before, atol=1e-12)
    with pytest.raises(InvalidCameraJitter):
        env.reset(seed=5, options={"camera_jitter": -0.1})
    env.close()
