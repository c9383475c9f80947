"""Observer statistics and module state across processes: calibration or QAT split over
torch.distributed ranks.

Each rank runs its calibration module (or trains its model) on its share of
the data; `synchronize_observers` then gives every rank's observers the
statistics one observer would have gathered on all of it (`merge_stats`:
min/max exactly, histograms merged), so every rank converts to the same
program — the one a single process would give on all the data, for min/max
observers. It is one `all_gather_object` of plain Python data, so it runs on
any backend torch.distributed has (gloo on CPU), with whatever launcher
started the ranks (torchrun, SLURM, `torch.multiprocessing.spawn`).

`synchronize` is what to call before `qir.convert` on every rank: the observers
as above, and the module's buffers too. Under `DistributedDataParallel` the
parameters agree (gradients are all-reduced) but the buffers do not: DDP copies
rank 0's into the others at the start of each forward, and each rank's last
forward then moves its batch norm running statistics with its own batch. The
converted program folds those statistics in, so without `synchronize` the ranks
convert to different programs.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import torch
import torch.distributed as dist

from qir.errors import QirError
from qir.observers import Observer, merge_stats

__all__ = ["Synchronized", "synchronize", "synchronize_observers"]


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
    histograms counts the data once per rank again. Batch norm running statistics (buffers,
    not observers) are left as they are: `synchronize` does both, before `qir.convert`.

    Returns the number of observers synchronised. Raises QirError when torch.distributed is not
    initialised, or when the ranks do not hold the same observers (names and specs, the first
    difference named): they were not prepared from the same model and quantizer."""
    module = _distributed_module(module, "synchronize_observers")
    observers = [(name, m) for name, m in module.named_modules() if isinstance(m, Observer)]
    local = [(name, m.spec, m.stats()) for name, m in observers]
    gathered: list = [None] * dist.get_world_size(group)
    dist.all_gather_object(gathered, local, group=group)  # pickles: the ranks must trust each other
    _check_same_observers(gathered)
    for index, (_, observer) in enumerate(observers):
        observer.load_stats(merge_stats(observer.spec, [entries[index][2] for entries in gathered]))
    return len(observers)


class Synchronized(NamedTuple):
    """What `synchronize` made equal on the ranks."""

    observers: int
    """Observers whose statistics were merged (`synchronize_observers`)."""
    averaged: int
    """Floating-point buffers that differed between the ranks, now their mean over the ranks."""
    copied: int
    """Other buffers (integer, boolean, complex) that differed, now the first rank's."""


def synchronize(module: torch.nn.Module, group=None) -> Synchronized:
    """Make the state `qir.convert` reads identical on every rank of `group` (the default group
    when None): observer statistics merged (`synchronize_observers`), floating-point buffers
    averaged over the ranks, other buffers taken from the first rank; parameters checked equal.

    Call it on every rank after training (or calibration) ends and before `qir.convert`; each
    rank then converts to the same program, byte for byte. It is a collective call, as
    `synchronize_observers` is, and looks through a `DistributedDataParallel` wrapper.

    * Floating-point buffers — batch norm `running_mean` and `running_var` — become the mean
      of the ranks' values (timm's `distribute_bn` does the same; the mean of the running
      variances, not the variance of all the data: each rank's is an estimate of the same
      one). The values are gathered (`all_gather`), not all-reduced, and every rank adds them
      in rank order in float64 and rounds once to the buffer's dtype: all ranks compute the
      same operations on the same bytes, whatever algorithm the backend's all-reduce uses
      (gloo's gave identical ranks in a test, but it sums chunks in an order of its own).
      A buffer equal on every rank is left untouched, so constants stay exact.
    * Other buffers — `num_batches_tracked` — take the first rank's value: a count cannot be
      averaged, and under `DistributedDataParallel` the ranks' counts agree anyway (rank 0's
      is broadcast before each forward, which then adds one on every rank).
    * Observer buffers (histograms, per-channel ranges) are not averaged: they are statistics,
      merged with the rest of their observer's by `synchronize_observers`.
    * Parameters are not changed: averaging them would be another training algorithm (DDP's
      gradient all-reduce keeps them equal). Ranks whose parameters differ raise QirError
      naming the first one: their programs would differ whatever the statistics.

    Raises QirError when torch.distributed is not initialised, or the ranks do not hold the
    same observers, buffers (names, dtypes, shapes) and parameters."""
    module = _distributed_module(module, "synchronize")
    buffers = _buffers(module)
    local = {"buffers": [(name, str(tensor.dtype), tuple(tensor.shape)) for name, tensor in buffers],
             "parameters": [(name, _digest(tensor)) for name, tensor in module.named_parameters()]}
    world = dist.get_world_size(group)
    gathered: list = [None] * world
    dist.all_gather_object(gathered, local, group=group)
    _check_same_state(gathered)  # before anything changes: a refused module is left as it was
    observers = synchronize_observers(module, group)
    averaged = copied = 0
    if not buffers:
        return Synchronized(observers, averaged, copied)
    mine = torch.cat([_as_bytes(tensor) for _, tensor in buffers])
    # Buffers travel as their bytes, in one collective whatever their dtypes.
    parts = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(parts, mine, group=group)
    offset = 0
    for _, tensor in buffers:
        size = tensor.numel() * tensor.element_size()
        chunks = [part[offset:offset + size] for part in parts]
        offset += size
        if all(torch.equal(chunks[0], chunk) for chunk in chunks[1:]):  # the same bytes everywhere
            continue
        values = [_from_bytes(chunk, tensor) for chunk in chunks]
        with torch.no_grad():
            if tensor.is_floating_point():
                total = values[0].to(torch.float64)
                for other in values[1:]:
                    total += other.to(torch.float64)
                tensor.copy_((total / world).to(tensor.dtype))
                averaged += 1
            else:
                tensor.copy_(values[0])
                copied += 1
    return Synchronized(observers, averaged, copied)


def _distributed_module(module: torch.nn.Module, caller: str) -> torch.nn.Module:
    """`module` (the one a `DistributedDataParallel` wraps), once torch.distributed is known
    to be initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        raise QirError(f"{caller} needs torch.distributed: call torch.distributed.init_process_group "
                       "(the 'gloo' backend works on CPU) on every rank first")
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        module = module.module
    return module


def _buffers(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The buffers of `module` outside its observers, each once (shared ones by their first
    name), in `named_modules` order: the same on every rank that built the same module."""
    seen: set[int] = set()
    buffers = []
    for prefix, sub in module.named_modules():
        if isinstance(sub, Observer):
            continue
        for name, tensor in sub.named_buffers(prefix=prefix, recurse=False):
            if id(tensor) not in seen:
                seen.add(id(tensor))
                buffers.append((name, tensor))
    return buffers


def _as_bytes(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8)


def _from_bytes(data: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return data.clone().view(like.dtype).reshape(like.shape)  # a copy: aligned for the dtype


def _digest(tensor: torch.Tensor) -> str:
    return hashlib.sha256(_as_bytes(tensor).cpu().numpy().tobytes()).hexdigest()


def _check_same_state(gathered: list) -> None:
    """Raise QirError naming the first buffer or parameter where a rank differs from the
    first rank: every rank checks the same list, so all raise the same error."""
    first = gathered[0]
    for rank, other in enumerate(gathered[1:], start=1):
        if other["buffers"] != first["buffers"]:
            mine, theirs = first["buffers"], other["buffers"]
            index = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
            want = mine[index] if index < len(mine) else "nothing"
            got = theirs[index] if index < len(theirs) else "nothing"
            raise QirError(f"synchronize: buffer {index} is {got} on rank {rank} but {want} on rank 0 "
                           "(name, dtype, shape): the ranks must prepare the same model")
        if [name for name, _ in other["parameters"]] != [name for name, _ in first["parameters"]]:
            raise QirError(f"synchronize: rank {rank} has other parameters than rank 0: the ranks must "
                           "prepare the same model")
        for (name, want), (_, got) in zip(first["parameters"], other["parameters"]):
            if want != got:
                raise QirError(f"synchronize: parameter {name!r} differs between rank 0 and rank {rank}: "
                               "synchronize makes statistics agree, parameters must agree already "
                               "(train under DistributedDataParallel, which all-reduces the gradients)")


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
