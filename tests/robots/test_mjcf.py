"""robots.mjcf: every shipped model compiles, agrees with its robot.toml, and follows the
folder conventions; mismatches raise ModelMismatch naming robot.toml and the field."""

import mujoco
import numpy as np
import pytest

import robots
from robots import ModelMismatch
from robots.mjcf import check

NAMES = robots.available()


@pytest.fixture(scope="module")
def models():
    return {n: (robots.load(n), check(robots.load(n))) for n in NAMES}


@pytest.mark.parametrize("name", NAMES)
def test_model_matches_toml(models, name):
    spec, m = models[name]
    assert isinstance(m, mujoco.MjModel)
    key = m.key("home").id
    for j in spec.joints:
        jid = m.joint(j.name).id
        assert m.jnt_type[jid] == (mujoco.mjtJoint.mjJNT_HINGE if j.kind == "hinge" else mujoco.mjtJoint.mjJNT_SLIDE)
        np.testing.assert_allclose(m.jnt_range[jid], j.range, atol=1e-9)
        assert m.jnt_limited[jid]
        assert m.key_qpos[key, m.jnt_qposadr[jid]] == pytest.approx(j.home, abs=1e-6)
        act = m.actuator(j.name)
        assert act.trntype[0] == mujoco.mjtTrn.mjTRN_JOINT and act.trnid[0] == jid  # actuator drives its joint
        np.testing.assert_allclose(act.ctrlrange, j.range, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_gripper_ee_and_cameras(models, name):
    spec, m = models[name]
    g = m.joint(spec.gripper.joint)
    lo, hi = m.jnt_range[g.id]
    assert lo <= min(spec.gripper.open, spec.gripper.closed) and max(spec.gripper.open, spec.gripper.closed) <= hi
    assert m.actuator(spec.gripper.joint).trnid[0] == g.id
    key = m.key("home").id
    assert m.key_qpos[key, m.jnt_qposadr[g.id]] == pytest.approx(spec.gripper.open)  # home: gripper open
    assert m.site(spec.ee_site).id >= 0
    for cam in spec.cameras:
        if cam.mount == "wrist":
            assert m.camera(cam.name).bodyid[0] > 0  # on a moving body
    assert m.nmesh == 0
    assert set(np.unique(m.geom_conaffinity)) == {0}
    assert set(np.unique(m.geom_contype)) <= {0, 2}


@pytest.mark.parametrize("name", NAMES)
def test_base_body_exists(models, name):
    """sim_scenes.scene identifies the robot's bodies as descendants of the body 'base'."""
    _, m = models[name]
    assert mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "base") >= 0


@pytest.mark.parametrize("name", NAMES)
def test_home_ee_in_front_of_base(models, name):
    spec, m = models[name]
    d = mujoco.MjData(m)
    mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
    mujoco.mj_kinematics(m, d)
    ee = d.site(spec.ee_site).xpos
    assert ee[2] > 0  # above the table
    assert np.hypot(ee[0], ee[1]) <= spec.reach


MISMATCHES = {
    "joint_not_in_mjcf": (lambda t: t.replace('"wrist_roll"', '"wrist_twist"'), None, "joints[4].name", "wrist_twist"),
    "range_differs": (lambda t: t.replace("range = [-2.9, 2.9]", "range = [-2.5, 2.5]"), None, "joints[4].range", "range"),
    "home_differs_from_keyframe": (lambda t: t.replace("home = 0.25", "home = 0.3"), None, "joints[2].home", "keyframe"),
    "kind_differs": (lambda t: t.replace('name = "shoulder_pan"\nrange', 'name = "shoulder_pan"\nkind = "slide"\nrange'), None, "joints[0].kind", "slide"),
    "missing_ee_site": (lambda t: t.replace("control_hz = 30.0", 'control_hz = 30.0\nee_site = "tcp"'), None, "ee_site", "'tcp'"),
    "missing_wrist_camera": (None, lambda x: x.replace('<camera name="wrist"', '<camera name="hand"'), "cameras[1].name", "wrist camera"),
    "missing_actuator": (None, lambda x: x.replace('name="elbow_flex" joint="elbow_flex"', 'name="elbow" joint="elbow_flex"'), "joints[2].name", "actuator"),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_model_mismatch_names_toml_and_field(case, make_robot):
    toml_edit, xml_edit, field, words = MISMATCHES[case]
    folder = make_robot("badarm", toml_edit=toml_edit, xml_edit=xml_edit)
    spec = robots.load(folder)  # robot.toml alone is consistent
    with pytest.raises(ModelMismatch) as exc:
        check(spec)
    assert exc.value.field == field
    assert exc.value.path == str(folder.resolve() / "robot.toml")
    assert f"field '{field}'" in str(exc.value) and words in str(exc.value)


def test_unparseable_mjcf(make_robot):
    folder = make_robot("badarm", xml_edit=lambda x: x.replace("</mujoco>", ""))
    with pytest.raises(ModelMismatch) as exc:
        check(robots.load(folder))
    assert exc.value.field == "<file>" and "so100.xml" in str(exc.value)


def test_model_without_base_body_is_refused(make_robot):
    folder = make_robot("nobase", xml_edit=lambda x: x.replace('<body name="base"', '<body name="root"'))
    with pytest.raises(ModelMismatch, match="no body named 'base'"):
        check(robots.load(str(folder)))
