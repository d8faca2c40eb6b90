"""The demo's report: `report.md` and `summary.json` from one summary dict (no number is
written that is not in summary.json), the terminal table, the commands of each stage."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from embodied.demo.config import DEPLOY_SEED0, DemoConfig

COLUMNS = ("robot", "demos (expert seeds)", "train steps", "eval success [95% CI]", "int8 gate fp32 / int8",
           "bundle", "emulated {profile} success", "faults", "limit violations", "loop period error p99 [ms]")
_FLAG_NAMES = {"language_cache": "--cache"}


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}%"


def _faults(counts: dict[str, int], top: int | None = None) -> str:
    """Total and per kind (alphabetical), or the `top` most frequent kinds."""
    if not counts:
        return "0"
    kinds = sorted(counts.items()) if top is None else sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    more = ", ..." if top is not None and len(counts) > top else ""
    return f"{sum(counts.values())} (" + ", ".join(f"{k} {v}" for k, v in kinds) + more + ")"


def rows(summary: dict[str, Any], top_faults: int | None = None) -> list[list[str]]:
    """One row per robot, cells in COLUMNS order, every number read from `summary` (faults by
    kind: all kinds, or the `top_faults` most frequent)."""
    out, steps = [], summary["train"]["steps"]
    for robot, r in summary["robots"].items():
        d, e, x, p = r["data"], r["eval"], r["export"], r["deploy"]
        lo, hi = e["ci95"]
        gate = f"{_pct(x['gate_fp32'])} / {_pct(x['gate_int8'])} ({x['gate_episodes']} ep.)"
        bundle = x["precision"] if x["int8_passed"] else f"{x['precision']} (int8 refused)"
        deploy = "refused" if p["refused"] else f"{p['successes']}/{p['episodes']}"
        p99 = "-" if p["period_error_p99_ms"] is None else f"{p['period_error_p99_ms']:.1f}"
        success = f"{100 * e['success_rate']:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] ({e['successes']}/{e['episodes']})"
        out.append([robot, f"{d['episodes']} ({d['episodes']}/{d['seeds_tried']})", str(steps), success, gate, bundle,
                    deploy, _faults(p["faults"], top_faults), str(p["limit_violations"]), p99])
    return out


def _headers(summary: dict[str, Any]) -> list[str]:
    return [c.format(profile=summary["config"]["fault_profile"]) for c in COLUMNS]


def markdown_table(summary: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(_headers(summary)) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows(summary)])


def terminal_table(summary: dict[str, Any]) -> str:
    """The summary table in aligned plain text (faults: the three most frequent kinds)."""
    table = [_headers(summary)] + rows(summary, top_faults=3)
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)


def demo_command(cfg: DemoConfig | dict[str, Any]) -> str:
    """`embodied demo` with the options that differ from the defaults."""
    values = cfg.to_dict() if isinstance(cfg, DemoConfig) else cfg
    args = ["embodied", "demo"]
    for f in fields(DemoConfig):
        value = values[f.name]
        if value == f.default or (f.name == "robots" and tuple(value) == f.default):
            continue
        if f.name == "progress":
            args.append("--no-progress")
            continue
        args.append(_FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-")))
        args += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return shlex.join(args)


def commands(summary: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(stage, command lines) that redo each stage on its own with the demo's settings."""
    c = summary["config"]
    cfg = DemoConfig(**c)
    cache = ["--cache", c["language_cache"]] if c["language_cache"] else []
    w, task = str(c["workers"]), c["task"]
    stores = [str(cfg.store(r)) for r in cfg.robots]
    out: list[tuple[str, list[str]]] = [
        ("1. simulated demonstrations", [shlex.join(["embodied", "simgen", "--robot", r, "--task", task, "--episodes",
                                                     str(c["demos"]), "--out", s, "--workers", w])
                                         for r, s in zip(cfg.robots, stores)]),
        ("2. pooled training", [shlex.join(["embodied", "train", "--data", *stores, "--preset", c["preset"],
                                            "--steps", str(c["steps"]), "--batch-size", str(c["batch_size"]),
                                            "--workers", w, "--preload", "--out", str(cfg.run), *cache])]),
        ("3. evaluation", [shlex.join(["embodied", "eval", "--policy", str(cfg.run), "--robot", r, "--task", task,
                                       "--episodes", str(c["eval_episodes"]), "--workers", w, "--video",
                                       str(cfg.video_dir), "--videos", "1", *cache]) for r in cfg.robots])]
    export, deploy = [], []
    for robot, store in zip(cfg.robots, stores):
        x, p = summary["robots"][robot]["export"], summary["robots"][robot]["deploy"]
        base = ["embodied", "export", "--policy", str(cfg.run), "--robot", robot, "--out", str(cfg.bundle(robot)),
                "--instructions", *x["instructions"], *cache]
        export.append(shlex.join(base + ["--quantize", "int8", "--calibration-data", store, "--gate-task", task,
                                         "--gate-episodes", str(c["gate_episodes"]), "--workers", w]))
        if not x["int8_passed"]:
            export.append(shlex.join(base) + "   # int8 refused: fp32 only")
        deploy.append(shlex.join(["embodied", "deploy", "--bundle", str(cfg.bundle(robot)), "--emulate", "--task",
                                  task, "--fault-profile", p["fault_profile"], "--episodes", str(c["deploy_episodes"]),
                                  "--seed", str(DEPLOY_SEED0), "--seconds", f"{p['seconds']:g}", "--scheduler",
                                  p["scheduler"], "--precision", p["precision"], "--json",
                                  str(cfg.root / "deploy" / f"{robot}_cli.json")]))
    out += [("4. int8 export through the gates", export), ("5. emulated deployment", deploy),
            ("all of it (resumes: finished stages are reused)", [demo_command(c)])]
    return out


def _markdown(summary: dict[str, Any], root: Path) -> str:
    c, t = summary["config"], summary["train"]
    rel = (lambda p: os.path.relpath(p, root))
    when = time.strftime("%Y-%m-%d %H:%M")
    reused = f"; reused from an earlier run: {', '.join(summary['reused'])}" if summary["reused"] else ""
    lines = [
        "# embodied demo", "",
        f"Task `{c['task']}` on {', '.join(c['robots'])}: {c['demos']} simulated demonstrations per robot, one "
        f"`{c['preset']}` policy trained on all of them, evaluated, exported to int8 through the gates and deployed "
        f"to emulated arms under the `{c['fault_profile']}` fault profile. Wall time {summary['wall_s']:.0f} s "
        f"({when}, {summary['machine']['cores']} cores, {summary['machine']['cpu']}{reused}).", "",
        "## Summary", "", markdown_table(summary), "",
        f"Demos: successful expert demonstrations (expert successes / seeds tried). Eval: {c['eval_episodes']} seeded "
        "episodes of the torch checkpoint, 95% Wilson interval. Gate: success of the fp32 and int8 ONNX models on the "
        "same seeded episodes; int8 is deployed only when it passes both the error bound and the success gate. "
        f"Emulated: the bundle over the real wire protocol to an emulated servo chain, asynchronous scheduler, "
        f"episodes of at most {next(iter(summary['robots'].values()))['deploy']['seconds']:g} s; faults are the "
        "fault monitor's events; the loop period error is |tick period - nominal|.", "",
        "## Training", "",
        f"{t['steps']} steps of batch {t['batch_size']} over {t['frames']} frames in {t['seconds']:.0f} s "
        f"({t['steps_per_s']:.2f} steps/s); final smoothed loss "
        + ("-" if t["loss_ema"] is None else f"{t['loss_ema']:.4f}") + f". Run folder: `{rel(t['path'])}`.", "",
        "![loss curve](loss.png)", "",
        "## Videos (first evaluation episode per robot)", ""]
    for robot, r in summary["robots"].items():
        video = r["eval"]["video"]
        lines.append(f"- {robot}: " + (f"[{rel(video)}]({rel(video)})" if video else "none"))
    lines += ["", "## Export decisions", ""]
    for robot, r in summary["robots"].items():
        x = r["export"]
        lines.append(f"- {robot}: {x['decision']}; int8 recipe {x['recipe']}, error {x['relative_error']:.3f} "
                     f"(bound {x['error_bound']:g}), gate drop {x['drop_points']:.1f} points (bar "
                     f"{x['max_drop_points']:g}). Bundle `{rel(x['bundle'])}`.")
    lines += ["", "## Stage times (this run; reused stages take seconds)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.0f} |" for name, sec in summary["stage_seconds"].items()]
    lines += ["", "## Reproduce", ""]
    for title, cmds in commands(summary):
        lines += [f"{title}:", "", "```bash", *cmds, "```", ""]
    lines += ["Numbers: `summary.json`. Per-stage records: `data/`, `run/demo_train.json`, `eval/*.json`, "
              "`bundles/*.json`, `deploy/*.json` (with each deployment's black box).", ""]
    return "\n".join(lines)


def write_report(summary: dict[str, Any], root: Path) -> tuple[Path, Path]:
    """Write summary.json, copy the loss curve, and write report.md into `root`."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    curve = Path(summary["train"]["loss_png"])
    if curve.is_file():
        shutil.copyfile(curve, root / "loss.png")
    (root / "report.md").write_text(_markdown(summary, root))
    return root / "report.md", root / "summary.json"
