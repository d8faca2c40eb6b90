"""robots.registry: discovery, lookup by name and by path, EMBODIED_ROBOTS_PATH, errors."""

import os
from pathlib import Path

import pytest

import robots
from robots import RobotsError, SpecError, UnknownRobot

SHIPPED = ["koch", "panda", "so100", "ur5e", "vx300s"]
ROBOTS_DIR = Path(robots.__file__).resolve().parent


def test_available_lists_every_shipped_folder():
    folders = sorted(p.parent.name for p in ROBOTS_DIR.glob("*/robot.toml"))
    assert folders == SHIPPED
    assert robots.available() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_robot_loads(name):
    spec = robots.load(name)
    assert spec.name == name
    assert spec.root == ROBOTS_DIR / name
    assert spec.mjcf.is_file()
    assert (spec.root / "README.md").is_file()
    assert len(spec.joints) >= 5
    assert spec.control_hz > 0


def test_unknown_robot_suggests_near_match():
    with pytest.raises(UnknownRobot) as exc:
        robots.load("so10")
    msg = str(exc.value)
    assert "'so10'" in msg
    assert "Did you mean 'so100'?" in msg
    assert exc.value.available == SHIPPED
    assert isinstance(exc.value, KeyError) and isinstance(exc.value, RobotsError)


def test_unknown_robot_without_near_match_has_no_suggestion():
    with pytest.raises(UnknownRobot) as exc:
        robots.load("zzzzzz")
    assert "Did you mean" not in str(exc.value)
    assert "koch" in str(exc.value)


def test_load_by_folder_path_and_toml_path(make_robot):
    folder = make_robot("myarm")
    by_folder = robots.load(folder)
    by_str = robots.load(str(folder))
    by_toml = robots.load(folder / "robot.toml")
    assert by_folder.name == by_str.name == by_toml.name == "myarm"
    assert by_folder.root == folder.resolve()
    assert by_folder.mjcf == folder.resolve() / "so100.xml"
    assert "myarm" not in robots.available()  # a path does not register the robot


def test_embodied_robots_path_env_var(make_robot, monkeypatch, tmp_path):
    make_robot("myarm")
    other = tmp_path / "more"
    other.mkdir()
    make_robot("otherarm", parent=other)
    monkeypatch.setenv("EMBODIED_ROBOTS_PATH", os.pathsep.join([str(tmp_path), str(other)]))
    assert robots.available() == sorted([*SHIPPED, "myarm", "otherarm"])
    spec = robots.load("myarm")
    assert spec.root == (tmp_path / "myarm").resolve()
    assert robots.load("otherarm").name == "otherarm"
    monkeypatch.delenv("EMBODIED_ROBOTS_PATH")
    assert "myarm" not in robots.available()
    with pytest.raises(UnknownRobot):
        robots.load("myarm")


def test_duplicate_name_on_search_path_is_refused(make_robot, monkeypatch, tmp_path):
    make_robot("so100")
    monkeypatch.setenv("EMBODIED_ROBOTS_PATH", str(tmp_path))
    with pytest.raises(SpecError) as exc:
        robots.available()
    assert exc.value.field == "name"
    assert str(tmp_path / "so100" / "robot.toml") in str(exc.value)


def test_name_must_equal_folder_name(make_robot):
    folder = make_robot("myarm", toml_edit=lambda t: t.replace('name = "myarm"', 'name = "other"'))
    with pytest.raises(SpecError) as exc:
        robots.load(folder)
    assert exc.value.field == "name"
    assert "robot.toml" in str(exc.value) and "'other'" in str(exc.value)


def test_external_mjcf_by_absolute_path(tmp_path, make_robot):
    from robots.mjcf import check

    folder = make_robot("extarm", toml_edit=lambda t: t.replace('mjcf = "so100.xml"', f'mjcf = "{ROBOTS_DIR / "so100" / "so100.xml"}"'))
    (folder / "so100.xml").unlink()
    spec = robots.load(folder)
    assert spec.mjcf == ROBOTS_DIR / "so100" / "so100.xml"
    assert check(spec).njnt >= len(spec.joints)
