"""The scale-out targets, as ratios measured in the same run.

    python benchmarks/scale_ratios.py [--repeats 3] [--out benchmarks/results/scale_ratios.json]
    python benchmarks/scale_ratios.py --tiny --repeats 1 --out /tmp/scale_ratios.json  # the test's

1. ``attribution_2proc_over_1proc`` (target <= 0.7): wall time of ``tn.attribute`` on the same
   data with 2 gloo processes of 1 torch thread each (data parallel: batch i goes to rank
   i % 2) over 1 process with 2 threads. The three processes are started once (spawn) and each
   loads its own copy of the model; the parent then runs them in rounds, the single process and
   the pair in turn (alternating which goes first), round 0 a warm-up, and takes the median of
   ``--repeats`` rounds. Each process times the attribute call itself (the pair between
   barriers, the slower rank counted), so process start-up is not counted: it is reported
   separately (``startup_seconds``: from start to ready, model and gloo group included). The
   two results are compared (``relevance_max_rel_diff``) to show both did the same work.
2. ``neuron_step_over_full_step`` (target <= 0.75): mean wall time of a neuron-only fine-tuning
   step (``tn.finetune(neurons=rel.top_k(0.1))``) over a full fine-tuning step's, from each
   history's ``seconds`` column without the first step; same data, batch size and seed, so the
   same batches; the model restored between runs; median over ``--repeats`` run pairs (run in
   this process, with ``--threads`` torch threads, default torch's).
   ``optimizer_state_fraction``: neuron-only ``optimizer_state_numel`` over full's (history
   attrs), beside ``selected_fraction`` (selected FFN rows over all FFN rows, about k = 0.1)
   and ``selected_parameter_fraction`` (the selected rows' parameters over all the model's
   parameters, ``trainable_parameters``). The optimizer state is AdamW's two moments of each
   trained number, so the state fraction tracks the parameter fraction, which is the selected
   fraction of the FFN times the FFN's share of the model.

Default: the embedded default model (``tn.load_model()``), 32 examples of the shipped
``product_sentiment`` task, batch size 8. ``--tiny``: a tiny random Llama (2 layers, d = 32,
d_ff = 64, the default tokenizer's vocabulary) and 8 examples in batches of 2, for the test;
with ``--tiny`` the file is written only when ``--out`` is given. Machine facts (CPU count,
torch threads, torch version, load average before and after) are in the JSON. Progress goes to
stderr; stdout is the JSON alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import socket
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness, when imported by a test
from harness import add_threads_option, apply_threads  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "scale_ratios.json"
PAIR_WORLD, SINGLE_THREADS = 2, 2


# --- setup shared by the parent and the workers ----------------------------------------------


def load(tiny: bool):
    """(model, tokenizer): the default model, or a tiny random Llama on its tokenizer's
    vocabulary (identical in every process: same config, same seed)."""
    import taskneuron_utils as tn

    if not tiny:
        return tn.load_model()
    import transformers

    from taskneuron_utils.core.models import default_model_path

    tok = transformers.AutoTokenizer.from_pretrained(default_model_path())
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(config).eval(), tok


def load_data(task: str, n: int):
    import taskneuron_utils as tn

    return tn.load_tasks([task])[task].train[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- part 1: attribution, 1 process x 2 threads against 2 processes x 1 thread --------------


def worker(rank: int, world: int, threads: int, port: int, options: dict, commands, results):
    """One measured process: set up, report ready, then time ``tn.attribute`` on every "run"
    command until "stop". ``world`` 1: no process group; otherwise rank ``rank`` of a gloo
    group. Everything it reports goes to ``results`` as (tag, rank, payload)."""
    started = time.perf_counter()
    try:
        torch.set_num_threads(threads)
        import torch.distributed as dist

        import taskneuron_utils as tn

        if world > 1:
            os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
            dist.init_process_group("gloo", rank=rank, world_size=world)
        model, tok = load(options["tiny"])
        data = load_data(options["task"], options["examples"])
        results.put(
            (
                "ready",
                rank,
                {"seconds": time.perf_counter() - started, "threads": torch.get_num_threads()},
            )
        )
        while (command := commands.get()) != "stop":
            if world > 1:
                dist.barrier()
            start = time.perf_counter()
            rel = tn.attribute(model, tok, data, batch_size=options["batch_size"], progress=False)
            if world > 1:
                dist.barrier()
            seconds = time.perf_counter() - start
            payload = {"seconds": seconds}
            if command == "last" and rank == 0:
                # numpy, pickled plainly (torch tensors would travel by shared memory)
                payload["sum_abs"] = {k: v.cpu().numpy() for k, v in rel.sum_abs.items()}
                payload["n_examples"] = rel.n_examples
            results.put(("done", rank, payload))
        if world > 1:
            dist.destroy_process_group()
    except BaseException:
        results.put(("error", rank, traceback.format_exc()))
        raise


class Group:
    """Processes started once (spawn) that run the same command together."""

    def __init__(self, context, name: str, world: int, threads: int, options: dict):
        self.name, self.world = name, world
        self.results = context.Queue()
        self.commands = [context.Queue() for _ in range(world)]
        port = free_port()
        self.processes = [
            context.Process(
                target=worker,
                name=f"{name}-{rank}",
                daemon=True,
                args=(rank, world, threads, port, options, self.commands[rank], self.results),
            )
            for rank in range(world)
        ]
        self.started = time.perf_counter()
        for process in self.processes:
            process.start()

    def collect(self, tag: str, timeout: float = 3600) -> list[dict]:
        """One ``tag`` message from every rank, in rank order; raises if a worker fails."""
        got, deadline = {}, time.monotonic() + timeout
        while len(got) < self.world:
            try:
                kind, rank, payload = self.results.get(timeout=1)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"{self.name}: worker {dead[0].name} exited with {dead[0].exitcode}"
                    ) from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name}: no {tag!r} from every rank") from None
                continue
            if kind == "error":
                raise RuntimeError(f"{self.name} rank {rank} failed:\n{payload}")
            if kind != tag:
                raise RuntimeError(f"{self.name}: expected {tag!r}, got {kind!r}")
            got[rank] = payload
        return [got[r] for r in range(self.world)]

    def run(self, command: str = "run") -> list[dict]:
        for q in self.commands:
            q.put(command)
        return self.collect("done")

    def close(self) -> None:
        for q in self.commands:
            q.put("stop")
        for process in self.processes:
            process.join(timeout=30)
        for process in self.processes:  # only if one hangs
            if process.is_alive():
                process.terminate()
                process.join()


def attribution_scaling(options: dict, repeats: int, progress) -> dict:
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    single = Group(context, "1proc", 1, SINGLE_THREADS, options)
    pair = Group(context, "2proc", PAIR_WORLD, 1, options)
    try:
        ready_single = single.collect("ready")
        startup_single = time.perf_counter() - single.started
        ready_pair = pair.collect("ready")
        startup_pair = time.perf_counter() - pair.started
        times = {"1proc": [], "2proc": []}
        groups = {"1proc": single, "2proc": pair}
        last = {}
        bar = progress(total=2 * (repeats + 1), desc="attribution 1 vs 2 processes")
        for round_ in range(repeats + 1):  # round 0: warm-up
            order = ["1proc", "2proc"] if round_ % 2 == 0 else ["2proc", "1proc"]
            for name in order:
                command = "last" if round_ == repeats else "run"
                done = groups[name].run(command)
                if round_ > 0:
                    times[name].append(max(d["seconds"] for d in done))
                last[name] = done[0]
                bar.update(1)
        bar.close()
    finally:
        single.close()
        pair.close()
    median = {name: statistics.median(values) for name, values in times.items()}
    worst = 0.0
    for site, one in last["1proc"]["sum_abs"].items():
        one, two = torch.from_numpy(one), torch.from_numpy(last["2proc"]["sum_abs"][site])
        worst = max(worst, float(((two - one).abs() / one.abs().clamp_min(1e-300)).max()))
    return {
        "attribution_2proc_over_1proc": round(median["2proc"] / median["1proc"], 4),
        "seconds_median": {name: round(v, 4) for name, v in median.items()},
        "seconds": {name: [round(v, 4) for v in values] for name, values in times.items()},
        "threads": {
            "1proc": [r["threads"] for r in ready_single],
            "2proc": [r["threads"] for r in ready_pair],
        },
        # From Process.start() to every rank ready (imports, model, gloo group); the processes
        # start together, so the two overlap: each is the wall time until that group was ready.
        "startup_seconds": {
            "1proc": round(startup_single, 2),
            "2proc": round(startup_pair, 2),
            "1proc_in_process": round(ready_single[0]["seconds"], 2),
            "2proc_in_process": [round(r["seconds"], 2) for r in ready_pair],
        },
        "examples": last["1proc"]["n_examples"],
        "relevance_max_rel_diff": worst,
    }


# --- part 2: neuron-only against full fine-tuning steps ---------------------------------------


def finetune_scaling(model, tok, data, options: dict, repeats: int, progress) -> dict:
    import taskneuron_utils as tn

    rel = tn.attribute(model, tok, data, batch_size=options["batch_size"], progress=False)
    ns = rel.top_k(0.1)
    total_rows = sum(rel.sizes.values())
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    kwargs = dict(batch_size=options["batch_size"], steps=options["steps"], seed=0, progress=False)
    per_step = {"neurons": [], "full": []}
    attrs = {}
    bar = progress(total=2 * repeats, desc="finetune neurons vs full")
    for repeat in range(repeats):
        order = ["neurons", "full"] if repeat % 2 == 0 else ["full", "neurons"]
        for method in order:
            extra = {"neurons": ns} if method == "neurons" else {"method": "full"}
            history = tn.finetune(model, tok, data, **kwargs, **extra)
            model.load_state_dict(saved)
            seconds = history["seconds"].dropna().tolist()[1:]  # the first step warms up
            per_step[method].append(statistics.fmean(seconds))
            attrs[method] = dict(history.attrs)
            bar.update(1)
    bar.close()
    median = {m: statistics.median(v) for m, v in per_step.items()}
    state = {m: attrs[m]["optimizer_state_numel"] for m in attrs}
    trainable = {m: attrs[m]["trainable_parameters"] for m in attrs}
    return {
        "neuron_step_over_full_step": round(median["neurons"] / median["full"], 4),
        "optimizer_state_fraction": round(state["neurons"] / state["full"], 6),
        "selected_fraction": round(len(ns) / total_rows, 6),
        "selected_parameter_fraction": round(trainable["neurons"] / trainable["full"], 6),
        "step_seconds_mean_median": {m: round(v, 4) for m, v in median.items()},
        "step_seconds_mean": {m: [round(v, 4) for v in values] for m, values in per_step.items()},
        "steps": options["steps"],
        "steps_timed": options["steps"] - 1,
        "examples_per_step": attrs["full"]["examples_per_step"],
        "neurons_selected": len(ns),
        "ffn_rows": total_rows,
        "optimizer_state_numel": state,
        "trainable_parameters": trainable,
        "threads": torch.get_num_threads(),
    }


# --- main --------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="tiny random Llama and a few examples (the test's setting)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task", default="product_sentiment")
    parser.add_argument("--examples", type=int, help="default 32 (--tiny: 8)")
    parser.add_argument("--batch-size", type=int, help="default 8 (--tiny: 2)")
    parser.add_argument(
        "--steps",
        type=int,
        help="fine-tuning steps a run, the first untimed; default 5 (--tiny: 3)",
    )
    parser.add_argument("--skip-attribution", action="store_true")
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", help=f"default {DEFAULT_OUT} (--tiny: no file)")
    add_threads_option(parser)
    args = parser.parse_args(argv)
    tiny = args.tiny
    args.examples = args.examples or (8 if tiny else 32)
    args.batch_size = args.batch_size or (2 if tiny else 8)
    args.steps = args.steps or (3 if tiny else 5)
    if args.out is None and not tiny:
        args.out = str(DEFAULT_OUT)
    if args.repeats < 1 or args.steps < 2:
        parser.error("--repeats must be >= 1 and --steps >= 2 (the first step is not timed)")
    return args


def main(argv=None) -> dict:
    from tqdm.auto import tqdm

    args = parse(argv)
    threads_before = torch.get_num_threads()
    apply_threads(args)
    try:
        import taskneuron_utils as tn

        def progress(**kwargs):
            return tqdm(disable=args.no_progress, file=sys.stderr, **kwargs)

        options = {
            "tiny": args.tiny,
            "task": args.task,
            "examples": args.examples,
            "batch_size": args.batch_size,
            "steps": args.steps,
        }
        result = {
            "machine": machine(),
            "tiny": args.tiny,
            "task": args.task,
            "examples": args.examples,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "targets": {
                "attribution_2proc_over_1proc": "<= 0.7",
                "neuron_step_over_full_step": "<= 0.75",
                "optimizer_state_fraction": "~ selected_parameter_fraction",
            },
        }
        started = time.perf_counter()
        if not args.skip_attribution:
            print("attribution: starting 1 + 2 processes...", file=sys.stderr)
            result["attribution"] = attribution_scaling(options, args.repeats, progress)
            result["attribution_2proc_over_1proc"] = result["attribution"][
                "attribution_2proc_over_1proc"
            ]
        if not args.skip_finetune:
            print("fine-tuning: loading the model...", file=sys.stderr)
            model, tok = load(args.tiny)
            data = load_data(args.task, args.examples)
            result["model"] = tn.core.model_name(model)
            result["finetune"] = finetune_scaling(model, tok, data, options, args.repeats, progress)
            for key in (
                "neuron_step_over_full_step",
                "optimizer_state_fraction",
                "selected_fraction",
                "selected_parameter_fraction",
            ):
                result[key] = result["finetune"][key]
        result["machine"]["loadavg_end"] = (
            list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        )
        result["total_seconds"] = round(time.perf_counter() - started, 1)
    finally:
        torch.set_num_threads(threads_before)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        write_atomic(Path(args.out), text + "\n")
    return result


if __name__ == "__main__":
    main()
