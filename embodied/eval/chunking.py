"""Executing action chunks: open loop for a number of steps, or temporally ensembled (numpy only).

The implementation lives in `embodied.runtime.chunking` (shared with the torch-free deploy
runtime); this module keeps the names `embodied.eval` has always used.

    open_loop  query the policy, execute the first `execute` actions of the chunk, query again
    ensemble   query every step; the action of step t averages every chunk that covers t with
               weights exp(-k i), i = 0 for the oldest (ACT's temporal ensembling)
"""

from __future__ import annotations

from embodied.runtime.chunking import MODES, ChunkExecutor, Execution

__all__ = ["MODES", "ChunkExecutor", "Execution"]
