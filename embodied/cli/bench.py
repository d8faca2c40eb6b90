"""`embodied bench SUBJECT`: run a benchmark, print its JSON and save it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _sim(args: argparse.Namespace) -> dict:
    from embodied.bench import sim

    return sim.run(seeds=args.seeds, workers=args.workers)


SUBJECTS = {"sim": _sim}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks (JSON out): sim")
    p.add_argument("subject", choices=sorted(SUBJECTS))
    p.add_argument("--seeds", type=int, default=50, help="seeded expert episodes per robot x task")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", help="JSON file (default: out/bench/SUBJECT.json)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    result = SUBJECTS[args.subject](args)
    text = json.dumps(result, indent=2)
    print(text)
    out = Path(args.out or f"out/bench/{args.subject}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"saved {out}")
    return 0
