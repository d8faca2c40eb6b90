"""`embodied demo`: the whole pipeline on built-in defaults, resumable.

    1. data     scripted-expert demonstrations per robot (`embodied.collect.simgen`)
    2. train    one policy on all robots' demonstrations, frames preloaded (`embodied.train`)
    3. eval     seeded episodes per robot: success rate, 95% interval, a video (`embodied.eval`)
    4. export   int8 through the error bound and the simulated-success gate, else fp32 (`embodied.export`)
    5. deploy   emulated arms under a fault profile, async scheduler (`embodied.deploy.emulated`)
    6. report   report.md, summary.json, the loss curve

    >>> from embodied.demo import DemoConfig, run_demo
    >>> result = run_demo(DemoConfig(robots=("so100", "koch"), out="out/demo"))

Every stage returns a result dataclass (`skipped` when its work was found done); the layout
of the output folder is in `embodied.demo.config`.
"""

from embodied.demo.config import DEFAULT_ROBOTS, DEPLOY_SEED0, STAGES, DemoConfig, DemoError
from embodied.demo.pipeline import DemoResult, run_demo
from embodied.demo.report import commands, demo_command, terminal_table, write_report
from embodied.demo.ship import DeployResult, ExportResult, deploy_robot, export_robot
from embodied.demo.stages import DataResult, EvalResult, TrainResult, collect, evaluate_robot, train_pooled

__all__ = ["DEFAULT_ROBOTS", "DEPLOY_SEED0", "STAGES", "DataResult", "DemoConfig", "DemoError", "DemoResult",
           "DeployResult", "EvalResult", "ExportResult", "TrainResult", "collect", "commands", "demo_command",
           "deploy_robot", "evaluate_robot", "export_robot", "run_demo", "terminal_table", "train_pooled",
           "write_report"]
