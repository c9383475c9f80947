"""Calibration and QAT split over processes: `merge_stats`, `qir.synchronize_observers`
and `qir.synchronize`.

The reference is always one observer (or one process) fed all the data: merged
min/max statistics must equal it exactly, merged histograms give parameters
close to it. The distributed tests start two CPU processes on gloo, once for
the module (`torch.multiprocessing.start_processes`, the spawn method; the
rendezvous is a file in a tmp dir, so no port is needed); the ranks write what
they computed to files. QAT runs under DistributedDataParallel in the same
processes: each rank trains on its own batches, and the programs the ranks convert
to must be byte-identical once synchronised (and differ before: the test can fail).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import qir
from qir.errors import QirError
from qir.observers import ObserverSpec, make_observer, merge_stats, qparams
from qir.quantizer import X86Quantizer
from qir.quantizer.x86 import x86_config
from peers import sqnr

WORLD = 2
HANG_SECONDS = 300  # a safety net against a hanging collective, far above the few seconds a run takes


def _spec(observer: str) -> ObserverSpec:
    if observer == "per_channel_minmax":
        return ObserverSpec(observer=observer, qmin=-128, qmax=127, symmetric=True, signed=True, axis=1)
    return ObserverSpec(observer=observer, qmin=0, qmax=255, symmetric=False, signed=False)


def _tensors() -> list[torch.Tensor]:
    """Tensors whose ranges differ from one to the next, so each part's range is not the whole's."""
    g = torch.Generator().manual_seed(0)
    return [torch.randn(64, 4, generator=g) * (1 + i % 3) + 0.3 * i for i in range(8)]


def _observed(spec: ObserverSpec, tensors) -> dict:
    observer = make_observer(spec)
    for x in tensors:
        observer(x)
    return observer.stats()


# -- merge_stats ------------------------------------------------------------------------------


@pytest.mark.parametrize("observer", ["minmax", "per_channel_minmax"])
def test_merged_minmax_is_one_observer_on_all_the_data(observer):
    spec, xs = _spec(observer), _tensors()
    parts = [_observed(spec, xs[:3]), {}, _observed(spec, xs[3:])]
    assert merge_stats(spec, parts) == _observed(spec, xs)
    assert merge_stats(spec, parts[:1]) == parts[0]


def test_merged_moving_minmax_is_the_mean():
    spec = _spec("moving_minmax")
    merged = merge_stats(spec, [{"min": -1.0, "max": 2.0}, {}, {"min": -3.0, "max": 5.0}])
    assert merged == {"min": -2.0, "max": 3.5}


def test_merged_histogram_is_close_to_one_observer_on_all_the_data():
    spec, xs = _spec("histogram"), _tensors()
    merged = merge_stats(spec, [_observed(spec, xs[0::2]), _observed(spec, xs[1::2])])
    whole = _observed(spec, xs)
    assert (merged["min"], merged["max"]) == (whole["min"], whole["max"])
    assert sum(merged["bins"]) == pytest.approx(sum(whole["bins"]), rel=1e-12)
    (scale, zero_point), (want_scale, want_zero_point) = qparams(spec, merged), qparams(spec, whole)
    assert scale == pytest.approx(want_scale, rel=0.01)
    assert abs(zero_point - want_zero_point) <= 1


def test_merging_a_histogram_with_itself_doubles_its_counts_exactly():
    spec = _spec("histogram")
    stats = _observed(spec, _tensors()[:1])
    merged = merge_stats(spec, [stats, stats])
    assert merged == {"min": stats["min"], "max": stats["max"], "bins": [2 * c for c in stats["bins"]]}
    assert qparams(spec, merged) == qparams(spec, stats)


def test_merge_stats_edge_cases():
    assert merge_stats(_spec("histogram"), [{}, {}]) == {}
    assert merge_stats(_spec("minmax"), []) == {}
    with pytest.raises(ValueError, match="channels"):
        merge_stats(_spec("per_channel_minmax"), [{"min": [0.0], "max": [1.0]}, {"min": [0.0] * 2, "max": [1.0] * 2}])
    with pytest.raises(ValueError, match="above"):
        merge_stats(_spec("minmax"), [{"min": 1.0, "max": 0.0}])


# -- synchronize_observers --------------------------------------------------------------------


def _spawn(worker, tmp_path) -> None:
    """Run `worker(rank, tmp_path)` on WORLD gloo ranks; fails if one raises or they hang."""
    init_method = f"file://{tmp_path / 'rendezvous'}"
    context = mp.start_processes(_run, args=(worker, init_method, tmp_path), nprocs=WORLD, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + HANG_SECONDS
    while not context.join(timeout=1):  # raises ProcessRaisedException with the rank's traceback
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish in {HANG_SECONDS} s: a collective call is hanging")


def _run(rank: int, worker, init_method: str, tmp_path) -> None:
    torch.set_num_threads(1)  # two ranks on a small machine; and the reference computes with one thread too
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=WORLD)
    try:
        worker(rank, tmp_path)
    finally:
        dist.destroy_process_group()
    # The rank's work is written: leave without running C++ static destructors. One CI run lost a
    # rank to "terminate called without an active exception" (SIGABRT), what C++ does when a
    # thread is still joinable at exit; the likeliest place is the interpreter's exit, skipped here.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.fc = nn.Linear(8 * 6 * 6, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _model_and_batches():
    torch.manual_seed(0)
    model = _Net().eval()
    batches = [(torch.randn(2, 3, 8, 8) * (1 + i % 3) + 0.2 * i,) for i in range(6)]
    return model, batches


def _quantizers() -> dict[str, X86Quantizer]:
    config = x86_config()
    minmax = dataclasses.replace(config.input_activation, observer="minmax")
    return {"minmax": X86Quantizer(dataclasses.replace(config, input_activation=minmax, output_activation=minmax)),
            "histogram": X86Quantizer()}


def _program_text(model, batches, quantizer, rank: int | None = None) -> str:
    """The converted program of `model` calibrated on `batches` (on rank `rank`'s half of
    them, then synchronised, when `rank` is given)."""
    prepared = qir.prepare(model, batches[0], quantizer)
    with torch.no_grad():
        for batch in batches if rank is None else batches[rank::WORLD]:
            prepared(*batch)
    if rank is not None:
        assert qir.synchronize_observers(prepared) == len(list(prepared.observers.children()))
    return qir.convert(prepared).qir_program.text()


def _observer_tree(rank: int) -> dict:
    """Observers nested in a module wrapped in DistributedDataParallel: their synchronised stats."""
    model = nn.Sequential(nn.Linear(4, 4), nn.ModuleDict({"a": make_observer(_spec("minmax")),
                                                          "b": make_observer(_spec("moving_minmax"))}))
    model[1]["a"](torch.tensor([float(rank), 10.0 * rank - 5]))
    model[1]["b"](torch.tensor([-1.0 - rank, 2.0 * rank]))
    # The wrapper lives only in this function: a DDP reducer still alive at destroy_process_group
    # holds the last reference to the gloo process group, whose destructor then joins gloo's
    # threads with the GIL held, and can deadlock (pytorch/pytorch#56297).
    count = qir.synchronize_observers(nn.parallel.DistributedDataParallel(model))
    return {"count": count, "a": model[1]["a"].stats(), "b": model[1]["b"].stats()}


class _ConvBN(nn.Module):
    """conv + BN + ReLU + linear: the batch norm's running statistics are buffers DDP does not
    reduce, its activations have fake quantizations that learn their ranges."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 6 * 6, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


QAT_STEPS = 3


def _batch_norm_state(prepared) -> dict:
    return {"mean": prepared.bn.running_mean.tolist(), "var": prepared.bn.running_var.tolist(),
            "count": int(prepared.bn.num_batches_tracked)}


def _qat_under_ddp(rank: int) -> dict:
    """prepare_qat (the same model, seeded, on every rank), a few SGD steps under DDP on this
    rank's own batches, then the program converted with no synchronisation, with the observers
    synchronised, and with `qir.synchronize`; the batch norm state before and after it; the
    SQNR of the synchronised program against the module in eval mode."""
    torch.manual_seed(0)
    prepared = qir.prepare_qat(_ConvBN(), (torch.randn(8, 3, 8, 8),))
    ddp = nn.parallel.DistributedDataParallel(prepared)  # lives only here, as in _observer_tree
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(1 + rank)
    ddp.train()
    for _ in range(QAT_STEPS):
        x = torch.randn(8, 3, 8, 8, generator=generator) * (1 + rank)  # each rank its own range
        y = torch.randint(0, 5, (8,), generator=generator)
        nn.functional.cross_entropy(ddp(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
    prepared.eval()
    result = {"unsynchronized": qir.convert(ddp).qir_program.text(), "before": _batch_norm_state(prepared)}
    qir.synchronize_observers(ddp)
    result["observers_only"] = qir.convert(ddp).qir_program.text()
    result["counts"] = list(qir.synchronize(ddp))
    result["observers"] = sum(isinstance(m, qir.observers.Observer) for m in prepared.modules())
    quantized = qir.convert(ddp)
    result["synchronized"] = quantized.qir_program.text()
    result["after"] = _batch_norm_state(prepared)
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(99)) * 1.5
    with torch.no_grad():
        result["sqnr"] = float(sqnr(prepared(x), quantized(x)))
    return result


def _rank_worker(rank: int, tmp_path) -> None:
    """One rank: split calibration with each quantizer, observers under DDP, mismatched observers."""
    model, batches = _model_and_batches()
    exported = torch.export.export(model, batches[0])
    result = {name: _program_text(exported, batches, quantizer, rank) for name, quantizer in _quantizers().items()}
    result["tree"] = _observer_tree(rank)
    try:
        qir.synchronize_observers(nn.ModuleDict({f"rank{rank}": make_observer(_spec("minmax"))}))
    except QirError as err:
        result["mismatch"] = str(err)
    result["qat"] = _qat_under_ddp(rank)
    gc.collect()  # no DDP reducer left alive at destroy_process_group (see _observer_tree)
    torch.manual_seed(rank)
    try:
        qir.synchronize(nn.Linear(2, 2))
    except QirError as err:
        result["parameter_mismatch"] = str(err)
    (tmp_path / f"rank{rank}.json").write_text(json.dumps(result))


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    """What each rank wrote (`_rank_worker`), and under "single" what one process calibrated on all
    the batches converts to, for each quantizer."""
    tmp_path = tmp_path_factory.mktemp("ranks")
    _spawn(_rank_worker, tmp_path)
    model, batches = _model_and_batches()
    exported = torch.export.export(model, batches[0])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks: the activations, hence min/max, computed the same way
    try:
        single = {name: _program_text(exported, batches, q) for name, q in _quantizers().items()}
    finally:
        torch.set_num_threads(threads)
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(WORLD)]
    return [{**result, "single": single} for result in results]


_SCALE = re.compile(r"!quant\.uniform<u8:f32, ([^:>]+)(?::(\d+))?>")


def _activation_qparams(text: str) -> list[tuple[float, int]]:
    return [(float(scale), int(zp or 0)) for scale, zp in _SCALE.findall(text)]


def test_split_minmax_calibration_gives_the_single_process_program(ranks):  # the fast tier's run of the ranks
    assert ranks[0]["minmax"] == ranks[1]["minmax"]
    assert ranks[0]["minmax"] == ranks[0]["single"]["minmax"]


@pytest.mark.slow  # the ranks are processes
def test_split_histogram_calibration_is_identical_on_the_ranks_and_close_to_one_process(ranks):
    assert ranks[0]["histogram"] == ranks[1]["histogram"]
    got, want = _activation_qparams(ranks[0]["histogram"]), _activation_qparams(ranks[0]["single"]["histogram"])
    assert len(got) == len(want) > 0
    for (scale, zero_point), (want_scale, want_zero_point) in zip(got, want):
        assert scale == pytest.approx(want_scale, rel=0.02)
        assert abs(zero_point - want_zero_point) <= 2


@pytest.mark.slow  # the ranks are processes
def test_synchronize_observers_looks_through_ddp(ranks):
    assert ranks[0]["tree"] == ranks[1]["tree"]
    assert ranks[0]["tree"]["count"] == 2
    assert ranks[0]["tree"]["a"] == {"min": -5.0, "max": 5.0}  # rank 0 saw [0, -5], rank 1 [1, 5]
    assert ranks[0]["tree"]["b"] == {"min": -1.5, "max": 1.0}  # the means of [-1, 0] and [-2, 2]


@pytest.mark.slow  # the ranks are processes
def test_ranks_with_other_observers_raise_the_same_error(ranks):
    assert ranks[0]["mismatch"] == ranks[1]["mismatch"]
    assert "'rank1' on rank 1 but 'rank0' on rank 0" in ranks[0]["mismatch"]


def test_synchronize_observers_needs_torch_distributed():
    assert not dist.is_initialized()
    with pytest.raises(QirError, match="init_process_group"):
        qir.synchronize_observers(nn.Sequential(make_observer(_spec("minmax"))))


def test_the_first_difference_between_ranks_is_named():
    from qir.distributed import _check_same_observers

    minmax, histogram = _spec("minmax"), _spec("histogram")
    rank0 = [("observers.obs0", minmax, {}), ("observers.obs2", minmax, {})]
    with pytest.raises(QirError, match="'observers.obs2' is missing on rank 1"):
        _check_same_observers([rank0, rank0[:1]])
    with pytest.raises(QirError, match="rank 2 has 'observers.obs3', rank 0 does not"):
        _check_same_observers([rank0, rank0, [*rank0, ("observers.obs3", minmax, {})]])
    with pytest.raises(QirError, match="'observers.obs2' has another spec on rank 1"):
        _check_same_observers([rank0, [rank0[0], ("observers.obs2", histogram, {})]])
    _check_same_observers([rank0, [(name, spec, {"min": 0.0, "max": 1.0}) for name, spec, _ in rank0]])


# -- QAT under DistributedDataParallel ----------------------------------------------------------


@pytest.mark.slow  # the ranks are processes
def test_qat_under_ddp_converts_to_the_same_program_on_every_rank(ranks):
    first, second = ranks[0]["qat"], ranks[1]["qat"]
    assert first["synchronized"] == second["synchronized"]
    # Without synchronising the ranks convert to other programs (each rank's batches moved its
    # activation ranges and batch norm statistics); the observers alone are not enough.
    assert first["unsynchronized"] != second["unsynchronized"]
    assert first["observers_only"] != second["observers_only"]
    assert first["synchronized"] not in (first["unsynchronized"], first["observers_only"])


@pytest.mark.slow  # the ranks are processes
def test_synchronize_averages_batch_norm_statistics_over_the_ranks(ranks):
    first, second = ranks[0]["qat"], ranks[1]["qat"]
    for key in ("mean", "var"):
        before = [torch.tensor(rank["qat"]["before"][key], dtype=torch.float64) for rank in ranks]
        assert not torch.equal(before[0], before[1])
        want = ((before[0] + before[1]) / 2).float().tolist()  # the float32 nearest the mean
        assert first["after"][key] == second["after"][key] == want
    # DDP broadcasts rank 0's buffers before each forward: the batch counts already agree.
    assert first["before"]["count"] == second["before"]["count"] == first["after"]["count"] == QAT_STEPS
    assert first["counts"] == second["counts"] == [first["observers"], 2, 0]  # running mean and var
    assert first["observers"] > 0


@pytest.mark.slow  # the ranks are processes
def test_the_program_synchronized_under_ddp_computes_what_the_eval_module_does(ranks):
    for rank in ranks:
        assert rank["qat"]["sqnr"] > 35


@pytest.mark.slow  # the ranks are processes
def test_synchronize_refuses_ranks_whose_parameters_differ(ranks):
    assert ranks[0]["parameter_mismatch"] == ranks[1]["parameter_mismatch"]
    assert "parameter 'weight' differs between rank 0 and rank 1" in ranks[0]["parameter_mismatch"]


def test_synchronize_needs_torch_distributed():
    with pytest.raises(QirError, match="synchronize needs torch.distributed"):
        qir.synchronize(nn.BatchNorm1d(2))


def test_the_first_buffer_that_differs_between_ranks_is_named():
    from qir.distributed import _check_same_state

    rank0 = {"buffers": [("bn.running_mean", "torch.float32", (8,)), ("bn.running_var", "torch.float32", (8,))],
             "parameters": [("conv.weight", "ab")]}
    _check_same_state([rank0, rank0])
    other = {**rank0, "buffers": [rank0["buffers"][0], ("bn.running_var", "torch.float64", (8,))]}
    with pytest.raises(QirError, match=r"buffer 1 is \('bn.running_var', 'torch.float64', \(8,\)\) on rank 1"):
        _check_same_state([rank0, other])
    with pytest.raises(QirError, match="buffer 1 is nothing on rank 2"):
        _check_same_state([rank0, rank0, {**rank0, "buffers": rank0["buffers"][:1]}])
    with pytest.raises(QirError, match="rank 1 has other parameters"):
        _check_same_state([rank0, {**rank0, "parameters": []}])
