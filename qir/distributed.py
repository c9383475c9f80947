"""Observer statistics across processes: calibration (or QAT) split over torch.distributed ranks.

Each rank runs its calibration module (or trains its model) on its share of
the data; `synchronize_observers` then gives every rank's observers the
statistics one observer would have gathered on all of it (`merge_stats`:
min/max exactly, histograms merged), so every rank converts to the same
program — the one a single process would give on all the data, for min/max
observers. It is one `all_gather_object` of plain Python data, so it runs on
any backend torch.distributed has (gloo on CPU), with whatever launcher
started the ranks (torchrun, SLURM, `torch.multiprocessing.spawn`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from qir.errors import QirError
from qir.observers import Observer, merge_stats

__all__ = ["synchronize_observers"]


def synchronize_observers(module: torch.nn.Module, group=None) -> int:
    """Merge the statistics of every `Observer` submodule of `module` over the ranks of `group`
    (the default group when None), and load the merged statistics on every rank.

    Call it on every rank of `group`, after calibration (or training) ends and before
    `qir.convert`: a collective call, so a rank that skips it leaves the others waiting.
    Observers are matched by their name in `named_modules()` (the calibration module of
    `qir.prepare` holds them as `observers.<id>`; anywhere in the tree works, and a
    `DistributedDataParallel` wrapper is looked through). Every rank merges the same
    gathered list in rank order, so all ranks end with the same statistics. Min/max statistics
    may be synchronised as often as wanted (during QAT, say): merging equal statistics changes
    nothing. Histograms should be synchronised once, at the end: merging already merged
    histograms counts the data once per rank again.

    Returns the number of observers synchronised. Raises QirError when torch.distributed is not
    initialised, or when the ranks do not hold the same observers (names and specs, the first
    difference named): they were not prepared from the same model and quantizer."""
    if not (dist.is_available() and dist.is_initialized()):
        raise QirError("synchronize_observers needs torch.distributed: call "
                       "torch.distributed.init_process_group (the 'gloo' backend works on CPU) on every rank first")
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        module = module.module
    observers = [(name, m) for name, m in module.named_modules() if isinstance(m, Observer)]
    local = [(name, m.spec, m.stats()) for name, m in observers]
    gathered: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, local, group=group)  # pickles: the ranks must trust each other
    _check_same_observers(gathered)
    for index, (_, observer) in enumerate(observers):
        observer.load_stats(merge_stats(observer.spec, [entries[index][2] for entries in gathered]))
    return len(observers)


def _check_same_observers(gathered: list) -> None:
    """Raise QirError naming the first observer where a rank differs from the first rank (by
    position in the group): every rank checks the same list, so all raise the same error."""
    first = [(name, spec) for name, spec, _ in gathered[0]]
    for rank, entries in enumerate(gathered[1:], start=1):
        other = [(name, spec) for name, spec, _ in entries]
        for index, (want, got) in enumerate(zip(first, other)):
            if want[0] != got[0]:
                raise QirError(f"synchronize_observers: observer {index} is {got[0]!r} on rank {rank} but "
                               f"{want[0]!r} on rank 0: the ranks must prepare the same model with the same quantizer")
            if want[1] != got[1]:
                raise QirError(f"synchronize_observers: observer {want[0]!r} has another spec on rank {rank} "
                               f"({got[1]}) than on rank 0 ({want[1]})")
        if len(first) != len(other):
            extra = (f"{first[len(other)][0]!r} is missing on rank {rank}" if len(first) > len(other)
                     else f"rank {rank} has {other[len(first)][0]!r}, rank 0 does not")
            raise QirError(f"synchronize_observers: rank 0 has {len(first)} observers, rank {rank} has "
                           f"{len(other)}: {extra}")
