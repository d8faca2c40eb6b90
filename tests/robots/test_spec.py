"""robots.spec: RobotSpec layout, hash, and robot.toml validation (SpecError naming file and field)."""

import dataclasses
import json
import re

import numpy as np
import pytest

import robots
from robots import GripperSpec, RobotsError, SpecError, WorkspaceSpec

NAMES = robots.available()


@pytest.mark.parametrize("name", NAMES)
def test_action_and_state_layout(name):
    spec = robots.load(name)
    n = len(spec.joints)
    assert spec.action_dim == n + 1
    assert spec.state_names == spec.action_names == [*spec.joint_names, "gripper"]
    assert len(set(spec.joint_names)) == n
    assert spec.home == [j.home for j in spec.joints]
    for j in spec.joints:
        assert j.range[0] < j.range[1] and j.range[0] <= j.home <= j.range[1]
        assert j.max_velocity > 0
    assert spec.sim_only == (spec.bus is None)
    if spec.bus:
        ids = [s.id for s in spec.bus.servos]
        assert len(set(ids)) == len(ids)
        assert {s.joint for s in spec.bus.servos} == {*spec.joint_names, spec.gripper.joint}
    for cam in spec.cameras:
        assert spec.camera(cam.name) is cam
    with pytest.raises(KeyError, match="no camera"):
        spec.camera("nope")
    json.dumps(spec.to_dict())  # plain data


@pytest.mark.parametrize("name", NAMES)
def test_workspace_corners_within_reach(name):
    spec = robots.load(name)
    corners = spec.workspace.corners
    assert len(corners) == 4
    assert max(abs(x * x + y * y) ** 0.5 for x, y in corners) <= spec.reach


def test_workspace_corners():
    w = WorkspaceSpec(center=(0.2, 0.1), size=(0.1, 0.4), object_size=0.02)
    np.testing.assert_allclose(sorted(w.corners), [(0.15, -0.1), (0.15, 0.3), (0.25, -0.1), (0.25, 0.3)])


def test_gripper_command_mapping():
    g = GripperSpec("gripper", closed=0.0, open=0.04)
    assert g.to_joint(0.0) == 0.0 and g.to_joint(1.0) == pytest.approx(0.04)
    assert g.to_joint(0.5) == pytest.approx(0.02)
    assert g.to_joint(2.0) == pytest.approx(0.04) and g.to_joint(-1.0) == 0.0  # clipped
    assert g.to_command(g.to_joint(0.3)) == pytest.approx(0.3)
    inverted = GripperSpec("gripper", closed=0.8, open=0.0)
    assert inverted.to_command(inverted.to_joint(0.25)) == pytest.approx(0.25)


def test_hash_stable_and_location_independent(make_robot):
    a, b = robots.load("so100"), robots.load("so100")
    assert a.hash == b.hash
    assert re.fullmatch(r"[0-9a-f]{16}", a.hash)
    copy = robots.load(make_robot("so100"))  # same content, other folder
    assert copy.root != a.root and copy.hash == a.hash
    described = robots.load(make_robot("so100b", toml_edit=lambda t: t.replace("SO-ARM100 follower arm", "another text")))
    renamed_back = dataclasses.replace(described, name="so100")
    assert renamed_back.hash == a.hash  # description does not change what actions mean


def test_hash_changes_with_joint_range(make_robot):
    base = robots.load("so100")
    j0 = dataclasses.replace(base.joints[0], range=(-1.5, 1.5))
    assert dataclasses.replace(base, joints=(j0, *base.joints[1:])).hash != base.hash
    edited = robots.load(make_robot("so100", toml_edit=lambda t: t.replace("range = [-1.92, 1.92]", "range = [-1.9, 1.92]")))
    assert edited.joints[0].range == (-1.9, 1.92)
    assert edited.hash != base.hash


def test_hashes_differ_between_robots():
    hashes = {robots.load(n).hash for n in NAMES}
    assert len(hashes) == len(NAMES)


def _drop_line(pattern):
    return lambda t: re.sub(pattern, "", t, count=1, flags=re.M)


BAD_TOMLS = {
    "missing_control_hz": (_drop_line(r"^control_hz = .*$"), "control_hz", "missing"),
    "missing_joint_field": (_drop_line(r"^max_velocity = 4\.7 .*$"), "joints[0].max_velocity", "missing"),
    "reversed_limits": (lambda t: t.replace("range = [-1.92, 1.92]", "range = [1.92, -1.92]"), "joints[0].range", "reversed"),
    "home_outside_range": (lambda t: t.replace("home = -0.35", "home = -2.0"), "joints[1].home", "outside"),
    "unreachable_workspace": (lambda t: t.replace("center = [0.155, 0.0]", "center = [1.5, 0.0]"), "workspace.center", "beyond the reach"),
    "duplicate_servo_ids": (lambda t: t.replace("id = 6", "id = 5"), "bus.servos", "duplicate servo ids"),
    "unknown_protocol": (lambda t: t.replace('protocol = "feetech_sts"', 'protocol = "feetech_xyz"'), "bus.protocol", "feetech_xyz"),
    "servo_unknown_joint": (lambda t: t.replace('joint = "wrist_roll"\nid = 5', 'joint = "wrist_twist"\nid = 5'), "bus.servos", "wrist_twist"),
    "wrong_type": (lambda t: t.replace("control_hz = 30.0", 'control_hz = "fast"'), "control_hz", "expected float"),
    "bad_joint_kind": (lambda t: t.replace('name = "shoulder_pan"\nrange', 'name = "shoulder_pan"\nkind = "ball"\nrange'), "joints[0].kind", "ball"),
    "missing_mjcf_file": (lambda t: t.replace('mjcf = "so100.xml"', 'mjcf = "nope.xml"'), "mjcf", "does not exist"),
    "gripper_open_equals_closed": (lambda t: t.replace("open = 0.03", "open = 0.0"), "gripper.open", "open equals closed"),
    "scene_camera_without_pos": (_drop_line(r"^pos = \[0\.48.*$"), "cameras[0].pos", "needs"),
    "invalid_toml": (lambda t: t + "\nthis is = = not toml\n", "<file>", "not valid TOML"),
    # validation gaps (expected to be refused; see the report)
    "bool_baudrate": (lambda t: t.replace("baudrate = 1_000_000", "baudrate = true"), "bus.baudrate", "expected int"),
    "zero_resolution": (lambda t: t.replace("resolution = [96, 96]", "resolution = [0, 96]", 1), "cameras[0].resolution", ""),
}


@pytest.mark.parametrize("case", sorted(BAD_TOMLS))
def test_bad_robot_toml_names_file_and_field(case, make_robot):
    edit, field, words = BAD_TOMLS[case]
    folder = make_robot("badarm", toml_edit=edit)
    with pytest.raises(SpecError) as exc:
        robots.load(folder)
    err = exc.value
    assert isinstance(err, RobotsError) and isinstance(err, ValueError)
    assert err.field == field
    assert err.path == str((folder / "robot.toml").resolve())
    msg = str(err)
    assert msg.startswith(err.path) and f"field '{field}'" in msg and "Fix:" in msg
    assert words in msg
