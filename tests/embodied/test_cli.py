"""The `embodied` command line, run in-process through its entry point."""

import av
import pytest

from embodied.cli.main import SUBCOMMANDS, main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in SUBCOMMANDS)


def test_robots_list_and_show(capsys):
    assert main(["robots"]) == 0
    out = capsys.readouterr().out
    assert all(r in out for r in ("so100", "koch", "vx300s", "ur5e", "panda"))
    assert main(["robots", "show", "so100"]) == 0
    out = capsys.readouterr().out
    assert "feetech_sts" in out and "shoulder_pan" in out and "id 6" in out


def test_unknown_robot_is_a_clean_error(capsys):
    assert main(["robots", "show", "so101"]) == 2
    err = capsys.readouterr().err
    assert "unknown robot 'so101'" in err and "so100" in err


def test_sim_rollout_writes_a_video(tmp_path, capsys):
    video = tmp_path / "koch_lift.mp4"
    assert main(["sim", "rollout", "--robot", "koch", "--task", "lift", "--seed", "2", "--video", str(video)]) == 0
    out = capsys.readouterr().out
    assert "instruction: " in out and "success: true" in out
    with av.open(str(video)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) > 30 and frames[0].shape == (360, 480, 3)
    assert abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1  # the arm moved
