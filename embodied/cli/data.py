"""`embodied data ACTION ...`: inspect and transform episode stores; LeRobot v3.0 export and import.

Actions are a table name -> (arguments, function), so a new action is one entry.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess


def _info(args: argparse.Namespace) -> int:
    from embodied.data import EpisodeStore

    s = EpisodeStore.open(args.store)
    metas = [s.episode_meta(i) for i in range(s.num_episodes)]
    print(f"{s.path}: robot {s.robot}, {s.fps:g} fps, {s.num_episodes} episodes, {s.num_frames} frames "
          f"({s.num_frames / s.fps / 60:.1f} min)")
    print(f"  cameras   {', '.join(f'{c} {w}x{h}' for c, (h, w) in s.cameras.items())}")
    print(f"  success   {sum(m['success'] for m in metas)}/{len(metas)}")
    print(f"  sources   {dict(sorted({m['source']: sum(x['source'] == m['source'] for x in metas) for m in metas}.items()))}")
    print(f"  tasks     {len(s.tasks)} distinct instructions, e.g. {s.tasks[:3]}")
    if args.episodes:
        for m in metas:
            print(f"  #{m['index']:<4} {m['length']:>5} frames  success={m['success']!s:<5} seed={m['seed']:<6} {m['source']:<7} {m['task']}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from embodied.data import EpisodeStore

    print(json.dumps(EpisodeStore.open(args.store).stats(), indent=1))
    return 0


def _view(args: argparse.Namespace) -> int:
    from embodied.data import EpisodeStore
    from embodied.data.view import render_episode

    out = render_episode(EpisodeStore.open(args.store), args.episode, args.out or f"out/view_episode{args.episode}.mp4")
    print(f"video: {out}")
    if args.show and os.environ.get("DISPLAY") and shutil.which("xdg-open"):
        subprocess.Popen(["xdg-open", str(out)])
    return 0


def _merge(args: argparse.Namespace) -> int:
    from embodied.data.tools import merge

    s = merge(args.out, args.stores)
    print(f"{s.path}: {s.num_episodes} episodes, {s.num_frames} frames")
    return 0


def _filter(args: argparse.Namespace) -> int:
    from embodied.data.tools import filter_episodes

    drop = {int(i) for i in args.delete.split(",")} if args.delete else set()
    s = filter_episodes(args.store, args.out, lambda m: m["index"] not in drop and (m["success"] or not args.success_only))
    print(f"{s.path}: {s.num_episodes} episodes kept, {s.num_frames} frames")
    return 0


def _export_lerobot(args: argparse.Namespace) -> int:
    from embodied.data import EpisodeStore
    from embodied.data.lerobot import export_lerobot

    r = export_lerobot(EpisodeStore.open(args.store), args.out, crf=args.crf, gop=args.gop, progress=True)
    print(f"{r.path}: LeRobot v3.0, {r.episodes} episodes, {r.frames} frames, cameras {r.cameras}")
    return 0


def _import_lerobot(args: argparse.Namespace) -> int:
    from embodied.data.lerobot import import_lerobot

    r = import_lerobot(args.lerobot_dir, args.store, robot=args.robot, progress=True)
    skipped = f", {len(r.skipped)} skipped for NaN/inf (episodes {r.skipped})" if r.skipped else ""
    print(f"{r.path}: {r.episodes} episodes, {r.frames} frames imported{skipped}")
    return 0


def _blackbox(args: argparse.Namespace) -> int:
    from collections import Counter

    from firmware_bridge.monitor import format_entry, read_blackbox

    entries = read_blackbox(args.log)
    t0 = entries[0]["t"] if entries else 0.0
    shown = [e for e in entries if not args.kind or e.get("kind") in args.kind.split(",")]
    for entry in shown:
        print(format_entry(entry, t0))
    counts = Counter(f"{e.get('kind')} {e.get('what')}" for e in entries if e.get("kind") != "run")
    print(f"{args.log}: {len(entries)} entries, {len(shown)} shown; " + ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())))
    return 0


ACTIONS = {
    "info": ("summary of a store (add --episodes for one line per episode)", _info,
             [("store", {}), ("--episodes", {"action": "store_true"})]),
    "stats": ("normalization statistics of state and action (JSON)", _stats, [("store", {})]),
    "view": ("video of one episode with its state and action plotted", _view,
             [("store", {}), ("--episode", {"type": int, "default": 0}), ("--out", {}),
              ("--show", {"action": "store_true", "help": "open the video on a desktop"})]),
    "merge": ("concatenate stores of one robot into a new store", _merge, [("out", {}), ("stores", {"nargs": "+"})]),
    "filter": ("copy a store without some episodes (the source is kept)", _filter,
               [("store", {}), ("out", {}), ("--delete", {"help": "episode indices, e.g. 3,5"}),
                ("--success-only", {"action": "store_true"})]),
    "export-lerobot": ("write a store as a LeRobot v3.0 dataset (parquet + H.264 mp4)", _export_lerobot,
                       [("store", {}), ("out", {"help": "new dataset folder"}),
                        ("--crf", {"type": int, "default": 18, "help": "H.264 quality, lower is better"}),
                        ("--gop", {"type": int, "default": 2, "help": "keyframe interval [frames]"})]),
    "import-lerobot": ("read a LeRobot v3.0 dataset (video or image features) into a new store", _import_lerobot,
                       [("lerobot_dir", {"help": "folder holding meta/info.json"}), ("store", {"help": "new store"}),
                        ("--robot", {"help": "robot name (default: the dataset's robot_type)"})]),
    "blackbox": ("print a fault monitor black-box log (JSON lines)", _blackbox,
                 [("log", {"help": "a .jsonl file written by the monitor"}),
                  ("--kind", {"help": "only these event kinds, e.g. overheat,bus_timeout"})]),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="episode stores: " + "|".join(ACTIONS))
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    for name, (help_text, fn, arguments) in ACTIONS.items():
        a = actions.add_parser(name, help=help_text)
        for flag, kwargs in arguments:
            a.add_argument(flag, **kwargs)
        a.set_defaults(run=fn)
