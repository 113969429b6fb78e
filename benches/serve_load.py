"""The load test of `annpage serve` (issue 14), next to a comparison server in the same run.

    python benches/serve_load.py target/bench-data/large-gzip.h5ad [--clients 64] [--seconds 60]
        [--budget-mb N] [--peers annpage,anndata] [--label NAME]

On loopback only, bounded in time (each peer gets --seconds of load after its warm-up) and in
count (--max-requests). Each of --clients threads keeps one HTTP/1.1 connection and sends, at
random: a single gene (60%; genes drawn from a Zipf law over a fixed random ranking of the
genes), a batch of 256 random cells (30%), or one obs column (10%). Latencies are kept by
endpoint; a gene's first request in the run is "cold", later ones "warm". The server's RSS is
sampled every 50 ms from /proc. The budget is by default a fifth of the decoded matrix (values
and indices): annpage gets three quarters of it as --cache-mb and a quarter as --response-mb. annpage serves with --index (its uncompressed and gene-major copies are written
before the load starts, their time reported). The anndata peer is benches/serve_peer.py (anndata backed mode under
http.server). The table (markdown) goes to stdout and, with --label, into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def start(cmd: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    match = re.search(r"http://([\d.]+:\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"{cmd[0]} did not start: {line}{proc.stderr.read()}")
    # Drain the log so the server never blocks on a full pipe.
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, match.group(1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, int]:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, len(body)


def load(addr: str, dataset: str, n_obs: int, n_vars: int, obs_column: str, args, pid: int) -> dict:
    host, port = addr.split(":")
    rng = np.random.default_rng(7)
    ranking = rng.permutation(n_vars)
    stop = time.monotonic() + args.seconds
    lock = threading.Lock()
    seen: set[int] = set()
    results: dict[str, list[float]] = {"gene cold": [], "gene warm": [], "cells 256": [], "obs column": []}
    errors: list[str] = []
    count = [0]
    peak = [0.0]

    def client(seed: int) -> None:
        r = random.Random(seed)
        zipf = np.random.default_rng(seed)
        # A request still unanswered this long after the load ends counts as an error.
        timeout = args.seconds + 30
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        while time.monotonic() < stop:
            with lock:
                if count[0] >= args.max_requests:
                    return
                count[0] += 1
            u = r.random()
            if u < 0.6:
                rank = int(zipf.zipf(1.1)) - 1
                while rank >= n_vars:
                    rank = int(zipf.zipf(1.1)) - 1
                gene = int(ranking[rank])
                with lock:
                    kind = "gene warm" if gene in seen else "gene cold"
                    seen.add(gene)
                path = f"/datasets/{dataset}/genes/{gene}"
            elif u < 0.9:
                cells = r.sample(range(n_obs), 256)
                kind, path = "cells 256", f"/datasets/{dataset}/cells?positions={','.join(map(str, cells))}"
            else:
                kind, path = "obs column", f"/datasets/{dataset}/obs?columns={obs_column}&index=false"
            t0 = time.perf_counter()
            try:
                status, _ = get(conn, path)
            except Exception as e:  # noqa: BLE001 - every failure is counted
                status, conn = f"{type(e).__name__}", http.client.HTTPConnection(host, int(port), timeout=timeout)
            dt = time.perf_counter() - t0
            with lock:
                if status == 200:
                    results[kind].append(dt)
                else:
                    errors.append(f"{kind}: {status}")

    def sample() -> None:
        while time.monotonic() < stop + 1:
            try:
                peak[0] = max(peak[0], rss_mb(pid))
            except OSError:
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    sampler = threading.Thread(target=sample, daemon=True)
    t0, cpu0 = time.monotonic(), cpu_seconds(pid)
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    done = sum(len(v) for v in results.values())
    return {"results": results, "errors": errors, "wall": wall, "done": done, "peak_rss": peak[0], "cpu": cpu}


def metrics(addr: str) -> dict | None:
    """annpage's /metrics as JSON (None from a server without it)."""
    host, port = addr.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("GET", "/metrics?format=json")
    r = conn.getresponse()
    body = r.read()
    return json.loads(body) if r.status == 200 else None


def server_means(before: dict, after: dict) -> str:
    """Mean time each route spent in the server between two /metrics snapshots: from the
    request's arrival to its answer's head (queueing for memory and readers included, sending
    the body not)."""
    out = []
    for route, label in [("genes/{gene}", "gene"), ("cells", "cells 256"), ("obs", "obs column")]:
        key = f"GET /datasets/{{d}}/{route}"
        a, b = after["routes"].get(key), before["routes"].get(key, {"requests": 0, "seconds": 0.0})
        if a and a["requests"] > b["requests"]:
            mean = (a["seconds"] - b["seconds"]) / (a["requests"] - b["requests"])
            out.append(f"{label} {mean * 1e3:.1f} ms")
    return ", ".join(out)


def ms(values: list[float], q: float) -> str:
    return f"{np.quantile(values, q) * 1e3:.1f}" if values else "—"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--solo-seconds", type=float, default=10,
                        help="then one client alone for this long: each request's own latency")
    parser.add_argument("--budget-mb", type=int)
    parser.add_argument("--peers", default="annpage,anndata")
    parser.add_argument("--label")
    parser.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "annpage")
    args = parser.parse_args()

    with h5py.File(args.file, "r") as f:
        x = f["X"]
        n_obs, n_vars = (int(v) for v in x.attrs["shape"])
        decoded = x["data"].size * x["data"].dtype.itemsize + x["indices"].size * x["indices"].dtype.itemsize
        obs_column = next(k for k in f["obs"].keys() if k not in ("_index", "__categories"))
    budget = args.budget_mb or max(16, decoded // 5 >> 20)
    dataset = args.file.name.removesuffix(".h5ad")
    rows, notes = [], []
    for peer in args.peers.split(","):
        if peer == "annpage":
            index = ROOT / "target" / "bench-data" / "serve-index"
            t0 = time.monotonic()
            # The budget is the server's whole configured memory: three quarters for the cache,
            # a quarter for the answers in flight.
            proc, addr = start([str(args.bin), "serve", str(args.file), "--port", "0",
                                "--cache-mb", str(budget - budget // 4), "--response-mb", str(budget // 4),
                                "--quiet", "--index", str(index)])
            host, port = addr.split(":")
            while True:
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("GET", f"/datasets/{dataset}")
                ready = json.loads(conn.getresponse().read())["index"]
                if ready["genes"] and (ready["plain"] or not args.file.name.endswith("gzip.h5ad")):
                    break
                time.sleep(0.5)
            notes.append(f"annpage's --index copies (uncompressed, gene-major) ready {time.monotonic() - t0:.1f} s "
                         "after start (written once, then reused: their time is not in the load)")
        else:
            proc, addr = start([sys.executable, str(ROOT / "benches" / "serve_peer.py"), str(args.file)])
        try:
            before = metrics(addr) if peer == "annpage" else None
            run = load(addr, dataset, n_obs, n_vars, obs_column, args, proc.pid)
            after = metrics(addr) if peer == "annpage" else None
            hit = after["cache"]["hit_rate"] if after else None
            if after:
                notes.append(f"{peer} under load, mean time in the server (from its /metrics; "
                             f"the rest of a request's latency is on the clients' side): {server_means(before, after)}")
            solo = None
            if args.solo_seconds > 0:
                one = argparse.Namespace(**{**vars(args), "clients": 1, "seconds": args.solo_seconds})
                solo = load(addr, dataset, n_obs, n_vars, obs_column, one, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        r = run["results"]
        rows.append((peer, run, hit))
        if solo is not None:
            rows.append((f"{peer}, 1 client", solo, None))
        print(f"{peer}: {run['done']} requests in {run['wall']:.1f} s, {len(run['errors'])} errors, "
              f"peak RSS {run['peak_rss']:.0f} MB", file=sys.stderr)
        for kind, v in r.items():
            print(f"  {kind}: n={len(v)} p50={ms(v, .5)} ms p99={ms(v, .99)} ms", file=sys.stderr)

    kinds = ["gene cold", "gene warm", "cells 256", "obs column"]
    lines = [
        f"{args.clients} clients for {args.seconds:.0f} s (then one client alone for {args.solo_seconds:.0f} s: "
        f"a request's own latency) on `{args.file.name}` ({n_obs} × {n_vars}), "
        f"budget {budget} MB (a fifth of the decoded matrix), one run on 2 cores shared with the "
        "clients; latencies p50 / p99 in ms.",
        "",
        "| server | " + " | ".join(kinds) + " | requests/s | errors | cache hit rate | peak RSS | server CPU |",
        "|---" * (len(kinds) + 6) + "|",
    ]
    for peer, run, hit in rows:
        r = run["results"]
        cells = [f"{ms(r[k], .5)} / {ms(r[k], .99)} (n={len(r[k])})" for k in kinds]
        lines.append(f"| {peer} | " + " | ".join(cells) + f" | {run['done'] / run['wall']:.1f} | {len(run['errors'])} | "
                     + (f"{hit:.2f}" if hit is not None else "—") + f" | {run['peak_rss']:.0f} MB | {run['cpu'] / run['wall']:.2f} cores |")
    loaded = [(p, r) for p, r, _ in rows if "1 client" not in p]
    if len(loaded) == 2:
        (pa, a), (pb, b) = loaded
        lines += ["", f"Requests/s ratio {pa} / {pb} under load: {(a['done'] / a['wall']) / max(b['done'] / b['wall'], 1e-9):.1f}×."]
    lines += [""] + [f"- {n}" for n in notes]
    lines += ["", f"Command: `python benches/serve_load.py {args.file} --clients {args.clients} --seconds {args.seconds:.0f}"
              + (f" --label {args.label}" if args.label else "") + "`"]
    table = "\n".join(lines)
    print(table)
    if args.label:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        begin, end = f"<!-- serve:{args.label} -->", f"<!-- /serve:{args.label} -->"
        block = f"{begin}\n{table}\n{end}"
        if begin in text:
            text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
        else:
            text += f"\n## annpage serve under load ({args.label})\n\n{block}\n"
        doc.write_text(text)


if __name__ == "__main__":
    main()
