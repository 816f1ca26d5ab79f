"""Learner throughput: one gradient update of DreamerV2 (and optionally Vid2Act) per second; prints JSON.

For each world-model preset and replay-batch shape ``B x T`` it builds a :class:`DreamerAgent` and a
synthetic batch ``[B, T]`` of Dreamer rows (the keys, dtypes and shapes of
``vid2act.components.data.rows.row_schema``: ``pixels`` uint8 ``[3, 64, 64]``, ``prev_action`` in
``[-1, 1]``, ``reward``, ``is_first`` (True at ``t = 0``), ``is_last``, ``is_terminal``, ``success``,
``episode``), already on the learner device, and times ``agent.update(batch)``: the world-model,
actor and critic losses, their backward passes and the three optimiser steps.

Per ``(preset, shape)`` it reports:

- ``updates_per_s`` / ``seconds_per_update``: median over ``--repeats`` individually timed updates
  after ``--warmup`` untimed ones (CUDA: synchronised before and after each update).
- ``flops_per_update``: FLOPs of one update counted once, outside the timing, with
  ``torch.utils.flop_counter.FlopCounterMode`` (forward + backward of every loss; it counts the
  matmul / convolution / attention ops only, not element-wise ops or optimiser steps), and
  ``flop_per_s`` = ``flops_per_update / seconds_per_update``.
- ``peak_memory_mib``: CUDA: ``torch.cuda.max_memory_allocated`` from just before the agent is built
  to the end of the timed updates (parameters, optimiser state, batch, activations). CPU: peak
  resident set size over the same span minus the RSS before the agent was built, so the batch (built
  earlier) is left out; the method used is named in ``memory_method`` of the JSON (psutil has no peak
  RSS on Linux, ``ru_maxrss`` is a lifetime high-water mark and is only the fallback).
- ``params`` (world model), ``params_trainable`` (everything the agent's optimisers train).
- ``share_of_matmul_peak``: ``flop_per_s`` over this machine's fp32 matmul peak, measured in the
  same process before the updates (``machine.matmul_peak_flop_per_s``: best of ``--peak-repeats``
  ``2048 x 2048`` fp32 matmuls with the same thread count).

Presets: ``--presets official`` is the size of Vid2Act's released Meta-World code (Gaussian RSSM
of 50 dims, belief/hidden 200, cnn depth 32, MLP 4x400); use ``--action-dim 4`` for Meta-World.

``--vid2act N [N ...]`` also times :class:`Vid2ActAgent` with a mixture :class:`TeacherBank` of
``N`` teachers at every ``(preset, shape)`` and reports its ``ratio_vs_dreamerv2`` (seconds per
update relative to DreamerV2 at the same preset and shape). Its action-replay update draws
``[N, replay_batch, replay_seq_len]`` source rows from ``source_data.sample``; here that is
:class:`SyntheticSourceData`, which hands back random rows held on the learner device, so the
figures measure compute only, on purpose: the real ``MultiTaskOfflineData`` gathers sequences from
in-memory rows (no disk I/O per update), a cost this benchmark leaves out.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/update_throughput.py --presets tiny --shapes 16x50 \\
        --repeats 3 --warmup 1 --vid2act 4 6 --threads 1
    python benchmarks/update_throughput.py --device cuda --out update_throughput.json
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from tensordict import TensorDict
from torch.utils.flop_counter import FlopCounterMode

from vid2act.agents.dreamer import DreamerAgent
from vid2act.agents.runtime import tune_allocator
from vid2act.agents.vid2act import Vid2ActAgent
from vid2act.components.data.rows import row_schema
from vid2act.components.transfer.teacher_bank import TeacherBank
from vid2act.components.world_model import PRESETS, WorldModelConfig, make_world_model

IMAGE_SIZE = 64


# ---------------------------------------------------------------------------------------------- data
def synthetic_rows(batch_shape: tuple[int, ...], action_dim: int, device: torch.device,
                   generator: torch.Generator) -> TensorDict:
    """Random Dreamer rows ``[*batch_shape]`` (last dim = time) with the stored keys and dtypes.

    ``is_first`` is True at ``t = 0`` only (where ``prev_action`` is 0), ``is_last``/``is_terminal``
    and ``success`` are False (a window inside an episode).
    """
    lead = tuple(batch_shape[:-1])
    schema = row_schema(action_dim, IMAGE_SIZE)
    shape = tuple(batch_shape)
    pixels = torch.randint(0, 256, shape + schema["pixels"][1], dtype=torch.uint8, generator=generator)
    prev_action = torch.rand(shape + schema["prev_action"][1], generator=generator) * 2 - 1
    prev_action[..., 0, :] = 0
    is_first = torch.zeros(shape + (1,), dtype=torch.bool)
    is_first[..., 0, :] = True
    false = torch.zeros(shape + (1,), dtype=torch.bool)
    rows = TensorDict(
        {
            "pixels": pixels,
            "prev_action": prev_action.to(schema["prev_action"][0]),
            "reward": torch.randn(shape + schema["reward"][1], generator=generator).to(schema["reward"][0]),
            "is_first": is_first,
            "is_last": false,
            "is_terminal": false.clone(),
            "success": false.clone(),
            "episode": torch.arange(math.prod(lead)).reshape(*lead, 1).expand(shape).clone(),  # one per sequence
        },
        batch_size=shape,
    )
    for key, (dtype, _) in schema.items():
        assert rows[key].dtype == dtype, (key, rows[key].dtype, dtype)
    return rows.to(device)


class SyntheticSourceData:
    """Stand-in for ``MultiTaskOfflineData`` in the action-replay update: random rows, no dataset.

    ``sample(B, T)`` returns ``[N, B, T]`` Dreamer rows with ``task_index = i`` on slice ``i``, as the
    real class does. The rows are generated once per shape on the learner device and handed back
    (shallow copies) on every call: the benchmark replaces dataset loading and sequence gathering on
    purpose, so the timings are the learner's compute only.
    """

    def __init__(self, num_tasks: int, action_dim: int, device: torch.device, seed: int = 0) -> None:
        self.num_tasks = num_tasks
        self.action_dim = action_dim
        self.image_size = IMAGE_SIZE
        self.device = device
        self._generator = torch.Generator().manual_seed(seed)
        self._cache: dict[tuple[int, int], TensorDict] = {}

    def sample(self, batch_per_source: int, seq_len: int) -> TensorDict:
        key = (batch_per_source, seq_len)
        if key not in self._cache:
            rows = synthetic_rows((self.num_tasks, batch_per_source, seq_len), self.action_dim, torch.device("cpu"),
                                  self._generator)
            task = torch.arange(self.num_tasks).reshape(-1, 1, 1).expand(rows.batch_size).clone()
            rows.set("task_index", task)
            self._cache[key] = rows.to(self.device)
        return self._cache[key].copy()


# ---------------------------------------------------------------------------------------------- memory
class MemoryMeter:
    """Peak memory of a span: CUDA allocator peak, or CPU resident-set peak minus the RSS at the start."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        if device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated (peak bytes allocated by tensors, absolute)"
        elif _clear_refs_works():
            self.method = ("Linux VmHWM after resetting it via /proc/self/clear_refs, minus the RSS at the start "
                           "(peak resident set of the whole process during the span)")
        else:
            self.method = ("resource.getrusage(RUSAGE_SELF).ru_maxrss delta (lifetime high-water mark: can read 0 "
                           "when an earlier configuration peaked higher)")
        self._start = 0.0

    def start(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        _malloc_trim()
        if _clear_refs_works():
            _reset_hwm()
            self._start = _proc_status_kib("VmRSS")
        else:
            self._start = _ru_maxrss_kib()

    def peak_mib(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = _proc_status_kib("VmHWM") if _clear_refs_works() else _ru_maxrss_kib()
        return max(0.0, peak - self._start) / 1024


def _proc_status_kib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return float(line.split()[1])
    raise KeyError(field)


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


_CLEAR_REFS: bool | None = None


def _clear_refs_works() -> bool:
    global _CLEAR_REFS
    if _CLEAR_REFS is None:
        try:
            _reset_hwm()
            _proc_status_kib("VmHWM")
            _CLEAR_REFS = True
        except OSError:
            _CLEAR_REFS = False
        except KeyError:
            _CLEAR_REFS = False
    return _CLEAR_REFS


def _ru_maxrss_kib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform == "darwin" else float(rss)  # bytes on macOS, KiB on Linux


def _malloc_trim() -> None:
    """Give freed heap back to the OS so the next span starts from a low RSS (glibc only)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------------------------------------- FLOPs
class _GlobalOnly:
    """Stand-in for FlopCounterMode's module tracker: every op counts toward ``"Global"`` only."""

    parents = frozenset({"Global"})

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        return None


class TotalFlopCounter(FlopCounterMode):
    """``FlopCounterMode`` without its per-module breakdown.

    Its module tracker walks every module with ``mod in WeakKeyDictionary``, which raises on
    tensordict's ``TensorDictParams`` (the critic's target parameters: ``TensorDict.__bool__`` is an
    error). The total (``get_total_flops``) is the same op-level count without it.
    """

    def __init__(self) -> None:
        super().__init__(display=False)
        self.mod_tracker = _GlobalOnly()


# ---------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sig(x: float, digits: int = 5) -> float:
    """``x`` rounded to ``digits`` significant digits (rates and times span many orders of magnitude)."""
    return float(f"{x:.{digits}g}")


def _count_params(params) -> int:
    return sum(p.numel() for p in {id(p): p for p in params}.values())


def matmul_peak(device: torch.device, *, size: int = 2048, repeats: int = 10) -> float:
    """fp32 FLOP/s of the best of ``repeats`` ``size x size`` matmuls (``2 size^3`` FLOPs each)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    best = math.inf
    for _ in range(repeats + 1):  # the first call warms up the kernels
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def measure(agent: DreamerAgent, batch: TensorDict, *, repeats: int, warmup: int, memory: MemoryMeter) -> dict:
    """Time ``agent.update`` (see the module docstring); ``memory.start()`` was called before the build."""
    device = agent.device
    agent.train()
    for _ in range(warmup):
        agent.update(batch.copy())
    _sync(device)
    seconds = []
    for _ in range(repeats):
        fresh = batch.copy()  # the losses write the posterior etc. into the batch: a fresh shallow copy each time
        _sync(device)
        start = time.perf_counter()
        agent.update(fresh)
        _sync(device)
        seconds.append(time.perf_counter() - start)
    peak = memory.peak_mib()
    counter = TotalFlopCounter()
    with counter:
        agent.update(batch.copy())
    flops = counter.get_total_flops()
    median = statistics.median(seconds)
    trainable = [p for opt in agent.optimizers.values() for group in opt.param_groups for p in group["params"]]
    return {
        "updates_per_s": _sig(1.0 / median),
        "seconds_per_update": _sig(median),
        "seconds_min": _sig(min(seconds)),
        "seconds_max": _sig(max(seconds)),
        "flops_per_update": int(flops),
        "flop_per_s": _sig(flops / median),
        "peak_memory_mib": round(peak, 1),
        "params": _count_params(agent.world_model.parameters()),
        "params_trainable": _count_params(trainable),
    }


def _parse_shape(text: str) -> tuple[int, int]:
    try:
        b, t = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must be BxT (e.g. 16x50), got {text!r}") from None
    if b < 1 or t < 2:
        raise argparse.ArgumentTypeError(f"shape needs B >= 1 and T >= 2, got {text!r}")
    return b, t


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device available")
    return torch.device(name)


def benchmark(preset: str, shape: tuple[int, int], args, device: torch.device, memory: MemoryMeter) -> dict:
    """DreamerV2 (and Vid2Act per ``--vid2act`` N) figures of one preset and batch shape."""
    b, t = shape
    generator = torch.Generator().manual_seed(args.seed)
    batch = synthetic_rows((b, t), args.action_dim, device, generator)
    config = WorldModelConfig.from_preset(preset)
    out = {}

    torch.manual_seed(args.seed)
    memory.start()
    agent = DreamerAgent(config, action_dim=args.action_dim, device=device)
    out["dreamerv2"] = measure(agent, batch, repeats=args.repeats, warmup=args.warmup, memory=memory)
    del agent

    for n in args.vid2act:
        torch.manual_seed(args.seed)
        memory.start()
        teachers = TeacherBank(make_world_model(preset, action_dim=args.action_dim, label_dim=n, reward_head=False))
        source = SyntheticSourceData(n, args.action_dim, device, seed=args.seed)
        kwargs = {k: v for k, v in (("replay_batch", args.replay_batch), ("replay_seq_len", args.replay_seq_len))
                  if v is not None}
        agent = Vid2ActAgent(config, args.action_dim, teachers=teachers, source_data=source, device=device,
                             cache_teacher_embed=args.cache_teacher_embed, **kwargs)
        vid2act_batch = batch
        if agent.row_transform() is not None:  # as in training: embeddings cached when rows are written
            vid2act_batch = agent.row_transform()(batch.clone())
            src = source.sample(agent.replay_batch, agent.replay_seq_len)
            paired = teachers.encode(src["pixels"], paired=True)  # teacher i on source i
            source._cache[(agent.replay_batch, agent.replay_seq_len)].set("teacher_embed", paired.to(agent._cache_dtype))
        result = measure(agent, vid2act_batch, repeats=args.repeats, warmup=args.warmup, memory=memory)
        result.update(
            num_teachers=n,
            cache_teacher_embed=args.cache_teacher_embed,
            replay_batch=agent.replay_batch,
            replay_seq_len=agent.replay_seq_len,
            teacher_params=_count_params(agent.teachers.parameters()),
            ratio_vs_dreamerv2=_sig(result["seconds_per_update"] / out["dreamerv2"]["seconds_per_update"], 4),
        )
        out[f"vid2act_{n}"] = result
        del agent, teachers, source
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"], choices=sorted(PRESETS))
    parser.add_argument("--shapes", nargs="+", type=_parse_shape, default=[(16, 50), (50, 50)],
                        metavar="BxT", help="replay batch shapes B x T (sequences x rows)")
    parser.add_argument("--cache-teacher-embed", default="float16", choices=["float16", "float32", "none"],
                        help="Vid2Act: teacher embeddings cached with the replay rows (as in training) or re-encoded")
    parser.add_argument("--repeats", type=int, default=10, help="timed updates (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates before timing")
    parser.add_argument("--vid2act", nargs="*", type=int, default=[], metavar="N",
                        help="also time Vid2Act with N teachers (one run per N)")
    parser.add_argument("--replay-batch", type=int, default=None,
                        help="Vid2Act source sequences per source task (default: the agent's)")
    parser.add_argument("--replay-seq-len", type=int, default=None,
                        help="Vid2Act rows per source sequence (default: the agent's)")
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-tune-allocator", action="store_true",
                        help="keep glibc's default malloc thresholds (train/pretrain raise them, see agents/runtime.py)")
    parser.add_argument("--peak-repeats", type=int, default=10, help="timed 2048^2 matmuls for the peak")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if any(n < 1 for n in args.vid2act):
        parser.error("--vid2act N needs N >= 1")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    device = _device(args.device)
    allocator_tuned = False if args.no_tune_allocator else tune_allocator()
    memory = MemoryMeter(device)
    peak = matmul_peak(device, repeats=max(1, args.peak_repeats))

    results: dict = {}
    for preset in args.presets:
        results[preset] = {}
        for shape in args.shapes:
            figures = benchmark(preset, shape, args, device, memory)
            for entry in figures.values():
                entry["share_of_matmul_peak"] = round(entry["flop_per_s"] / peak, 4)
            results[preset][f"{shape[0]}x{shape[1]}"] = figures
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_avg_1min": round(os.getloadavg()[0], 2),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "matmul_peak_flop_per_s": _sig(peak),
        },
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "allocator_tuned": allocator_tuned,
        "action_dim": args.action_dim,
        "image_size": IMAGE_SIZE,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "seed": args.seed,
        "flop_counter": "torch.utils.flop_counter.FlopCounterMode over one update (fwd + bwd; matmul/conv ops only)",
        "memory_method": memory.method,
        "source_data": "SyntheticSourceData: random rows held on the device (no dataset gathering or disk I/O)",
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()
