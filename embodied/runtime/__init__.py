"""Torch-free inference on the robot's computer: load an export bundle (`embodied export`)
with numpy + onnxruntime, run it as `infer(obs) -> ActionChunk`, and schedule action chunks
(synchronous, temporal ensembling, asynchronous). Never imports torch (see DESIGN.md).

    >>> from embodied.runtime import PolicyEngine, AsyncScheduler
    >>> engine = PolicyEngine("bundles/so100", precision="int8", threads=2)
    >>> with AsyncScheduler(engine.infer, horizon=engine.chunk) as sched:
    ...     action = sched.step(obs)          # once per control tick
"""

from embodied.runtime.bundle import Bundle, load_bundle
from embodied.runtime.chunking import (AsyncScheduler, ChunkExecutor, EnsembleScheduler, Execution, Scheduler,
                                       SyncScheduler)
from embodied.runtime.engine import PolicyEngine
from embodied.runtime.errors import BundleMismatch, CorruptBundle, ObservationRefused, RuntimeFault

__all__ = ["AsyncScheduler", "Bundle", "BundleMismatch", "ChunkExecutor", "CorruptBundle", "EnsembleScheduler",
           "Execution", "ObservationRefused", "PolicyEngine", "RuntimeFault", "Scheduler", "SyncScheduler",
           "load_bundle"]
