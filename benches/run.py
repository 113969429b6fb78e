"""Run every benchmark workload for every peer (and the limits) on the same files in one run.

    nice -n 19 .venv/bin/python benches/run.py --set small            # writes docs/benchmarks.md
    nice -n 19 .venv/bin/python benches/run.py --set small --dry-run  # markdown to stdout only
    nice -n 19 .venv/bin/python benches/run.py FILE.h5ad ... --label mine --repeats 5

Each measurement is a fresh subprocess that prints `CHECKSUM SECONDS` (see benches/peers.py);
SECONDS (the workload's own time: open the file through the result, imports excluded) is the
number reported, as the median of the repeats, next to the subprocess's peak RSS from
os.wait4 (the largest over the repeats) and its wall and CPU time. Checksums of one workload must
agree across peers and repeats: a mismatch prints a loud error, leaves docs/benchmarks.md
alone and exits 1.

Peers and limits are command lines in RUNNERS and LIMITS below; a runner whose program is missing
is skipped (and listed in the report). A runner that exits with status 64 does not implement that
workload ("—" in the tables). The annpage peer (benches/src, `cargo build --release -p
annpage-bench`) is measured as soon as `target/release/annpage-bench` exists, or the binary that
$ANNPAGE_BENCH names; so are its libdeflate limits.

The CLI workloads (`cli_stats`, `cli_subset`, `cli_convert`) run the `annpage` command line
(`target/release/annpage`, or $ANNPAGE_CLI) and its anndata peer (`peers.py cli anndata JOB`)
as a user runs them: the number reported is the whole process's wall time, start to exit
(interpreter start and imports included), next to its peak RSS; what the process wrote is
then checked (not timed, `peers.py cli_check`) and its checksum compared across peers.

The report replaces only its own section (between `<!-- BEGIN GENERATED LABEL -->` and
`<!-- END GENERATED LABEL -->`, LABEL = the set or --label) of docs/benchmarks.md, so
hand-written notes and the other sets' results are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from machine import machine, sh, stolen_seconds, versions

ROOT = Path(__file__).resolve().parents[1]
BENCHES = ROOT / "benches"
DATA_DIR = ROOT / "target" / "bench-data"
DOC = ROOT / "docs" / "benchmarks.md"
PY = str(ROOT / ".venv" / "bin" / "python")  # the project's pinned anndata stack
BENCH_PY = str(ROOT / "target" / "bench-venv" / "bin" / "python")  # same stack + snapatac2
PEERS_PY = str(BENCHES / "peers.py")
# The annpage peer; $ANNPAGE_BENCH points at another build (e.g. a separate CARGO_TARGET_DIR).
ANNPAGE_BENCH = os.environ.get("ANNPAGE_BENCH") or str(ROOT / "target" / "release" / "annpage-bench")
# The annpage command line; $ANNPAGE_CLI points at another build.
ANNPAGE_CLI = os.environ.get("ANNPAGE_CLI") or str(ROOT / "target" / "release" / "annpage")

UNSUPPORTED = 64  # exit status of a runner that does not implement a workload

LIBRARY_WORKLOADS = ("full_pass", "random_batches", "loader", "subset", "gene_columns", "open_meta", "noop")
# Whole processes as a user runs them (see the module doc).
CLI_WORKLOADS = ("cli_stats", "cli_subset", "cli_convert")
WORKLOADS = LIBRARY_WORKLOADS + CLI_WORKLOADS
# Workloads that must read every stored chunk of X whatever the file: ratios to the limits.
WHOLE_X = ("full_pass", "gene_columns")

WORKLOAD_TITLES = {
    "full_pass": "(a) full pass, per-gene sum & sum of squares, 10,000-row chunks",
    "random_batches": "(b) 200 batches × 256 random cells → CSR (annpage: the batches as one order, `batches_of`)",
    "loader": "(b′) 200 shuffled batches × 256 cells, annbatch's sampling (runs of 512, 32 mixed) → CSR",
    "subset": "(c) 10% of cells (sorted) × 2,000 genes (unsorted) → memory",
    "gene_columns": "(d) full column of 10 random genes",
    "open_meta": "(e) open + read obs/var",
    "noop": "baseline: start + imports only",
    "cli_stats": "CLI (f) stats: per-cell n_genes, total_counts; per-gene n_cells, mean, var → TSV",
    "cli_subset": "CLI (g) subset: `cell_type == 'type_0'` (1/12 of cells) × 2,000 genes → gzip .h5ad",
    "cli_convert": "CLI (h) convert: the file read whole → gzip .h5ad",
}


@dataclass
class Runner:
    name: str
    argv: list[str]  # {workload} and {file} are substituted
    program: str  # must exist for the runner to be used
    workloads: tuple[str, ...] = LIBRARY_WORKLOADS
    group: str = ""  # limits: runs whose checksums must agree (e.g. every inflater)
    note: str = ""
    # CLI workloads: the whole command line; {file}, {out}, {genes} and {query} are substituted.
    cli: dict[str, list[str]] = field(default_factory=dict)

    def available(self) -> bool:
        return Path(self.program).exists()

    def implements(self, workload: str) -> bool:
        if workload in CLI_WORKLOADS:
            return workload in self.cli and Path(self.cli[workload][0]).exists()
        return workload in self.workloads

    def command(self, workload: str, file: Path, **cli_args: str) -> list[str]:
        if workload in CLI_WORKLOADS:
            return [a.format(file=str(file), **cli_args) for a in self.cli[workload]]
        return [a.format(workload=workload, file=str(file)) for a in self.argv]


# The peers, in the order of the report's columns. Adding a peer is one entry here.
RUNNERS = [
    Runner(
        "annpage",
        [ANNPAGE_BENCH, "{workload}", "{file}"],
        ANNPAGE_BENCH,
        note="`target/release/annpage-bench WORKLOAD FILE` (cargo build --release -p annpage-bench); "
        "CLI rows: `target/release/annpage` (cargo build --release -p annpage-cli)",
        cli={
            "cli_stats": [ANNPAGE_CLI, "stats", "{file}", "--cache-mb", "1024", "--out-prefix", "{out}"],
            "cli_subset": [ANNPAGE_CLI, "subset", "{file}", "{out}", "--obs-query", "{query}", "--var-names", "{genes}", "--compression", "gzip", "--cache-mb", "128"],
            "cli_convert": [ANNPAGE_CLI, "convert", "{file}", "{out}", "--compression", "gzip"],
        },
    ),
    Runner(
        "annpage-py",
        [PY, PEERS_PY, "annpage_py", "{workload}", "{file}"],
        PY,
        note="`annpage.read_h5ad(backed='r')` from Python (the package in .venv), used as anndata's backed mode is",
    ),
    Runner("h5py", [PY, PEERS_PY, "h5py", "{workload}", "{file}"], PY, note="hand-written h5py + numpy reader"),
    Runner(
        "anndata",
        [PY, PEERS_PY, "anndata", "{workload}", "{file}"],
        PY,
        note="`anndata.read_h5ad(backed='r')`; CLI rows: `benches/peers.py cli anndata JOB` (a Python script)",
        cli={w: [PY, PEERS_PY, "cli", "anndata", w.removeprefix("cli_"), "{file}", "{out}"] for w in CLI_WORKLOADS},
    ),
    Runner(
        "snapatac2",
        [BENCH_PY, PEERS_PY, "snapatac2", "{workload}", "{file}"],
        BENCH_PY,
        note="anndata-rs through `snapatac2.read(backed='r')`, in target/bench-venv",
    ),
]

# The limits: what any reader of the file pays at least on this machine.
LIMITS = [
    Runner("read (warm cache)", [PY, PEERS_PY, "limit", "read_bytes", "{file}"], PY, ("read_bytes",), "read"),
    Runner("zlib, 1 core", [PY, PEERS_PY, "limit", "inflate_zlib_1", "{file}"], PY, ("inflate",), "inflate"),
    Runner("zlib, all cores", [PY, PEERS_PY, "limit", "inflate_zlib_all", "{file}"], PY, ("inflate",), "inflate"),
    # The annpage tool's libdeflate limits (benches/src/inflate.rs): the same chunks, inflated with libdeflate.
    Runner("libdeflate, 1 core", [ANNPAGE_BENCH, "inflate_libdeflate_1", "{file}"], ANNPAGE_BENCH, ("inflate",), "inflate"),
    Runner("libdeflate, all cores", [ANNPAGE_BENCH, "inflate_libdeflate_all", "{file}"], ANNPAGE_BENCH, ("inflate",), "inflate"),
    # A Zarr v3 store's zstd chunks (benches/src/zstd.rs), decoded on all cores; n/a on .h5ad files.
    Runner("zstd, all cores", [ANNPAGE_BENCH, "zstd_all", "{file}"], ANNPAGE_BENCH, ("inflate",), "zstd"),
    # The full pass's own arithmetic (per-gene sums, one core) over X already in memory.
    Runner("sums in memory, 1 core", [ANNPAGE_BENCH, "sums_in_memory", "{file}"], ANNPAGE_BENCH, ("sums",), "sums"),
    # `annpage stats`'s arithmetic (QcAccumulator, one core) over the same chunks in memory.
    Runner("QC in memory, 1 core", [ANNPAGE_BENCH, "qc_in_memory", "{file}"], ANNPAGE_BENCH, ("sums",), "sums"),
    # The same reduction with numpy, as the Python peers' full pass does it after its reads.
    Runner("numpy sums in memory, 1 core", [PY, PEERS_PY, "limit", "numpy_sums", "{file}"], PY, ("sums",), "sums"),
]

SETS = {"small": ("small-none.h5ad", "small-gzip.h5ad"), "large": ("large-none.h5ad", "large-gzip.h5ad")}


# --------------------------------------------------------------------------------------------
# Measuring one subprocess.


@dataclass
class Sample:
    seconds: float | None = None  # as reported by the worker
    checksum: str | None = None
    wall: float = 0.0  # of the whole subprocess
    cpu: float = 0.0  # user + system of the subprocess
    rss_kib: int = 0  # peak RSS of the subprocess
    error: str | None = None  # "unsupported", "timeout", or the tail of stderr
    applicable: bool = True  # False for a limit that does not apply ("n/a")


def run_one(cmd: list[str], timeout: float, env: dict, protocol: bool = True) -> Sample:
    """Runs `cmd`; with `protocol`, its last line of output is `CHECKSUM SECONDS`."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(p.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(p.pid, 0)
                timed_out = True
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, keep Popen quiet
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    s = Sample(wall=wall, cpu=ru.ru_utime + ru.ru_stime, rss_kib=ru.ru_maxrss)
    code = p.returncode
    if timed_out:
        s.error = f"timeout after {timeout:.0f} s"
    elif code == UNSUPPORTED:
        s.error = "unsupported"
    elif code != 0:
        tail = " | ".join(line.strip() for line in stderr.strip().splitlines()[-3:])
        s.error = f"exit {code}: {tail}"[:400]
    elif not protocol:
        s.seconds = wall
    else:
        lines = stdout.strip().splitlines()
        try:
            checksum, seconds = lines[-1].split()
            s.checksum = checksum
            s.seconds = float(seconds)
            s.applicable = checksum != "n/a"
        except (IndexError, ValueError):
            s.error = f"bad output: {stdout[-200:]!r}"
    return s


def checksums_agree(a: str, b: str, rel: float = 1e-9) -> bool:
    if a == b:
        return True
    try:
        xa = [float(v) for v in a.split(",")]
        xb = [float(v) for v in b.split(",")]
    except ValueError:
        return False
    return len(xa) == len(xb) and all(abs(p - q) <= rel * max(abs(p), abs(q), 1.0) for p, q in zip(xa, xb))


def run_cli(runner: "Runner", workload: str, file: Path, timeout: float, env: dict, cli_args: dict) -> Sample:
    """One CLI workload as a user runs it: the whole process timed (wall), then what it wrote
    checked (not timed) into the checksum, then removed."""
    with tempfile.TemporaryDirectory(prefix="annpage-cli-", dir=file.parent) as tmp:
        out = str(Path(tmp) / ("out" if workload == "cli_stats" else "out.h5ad"))
        s = run_one(runner.command(workload, file, out=out, **cli_args), timeout, env, protocol=False)
        if s.error is None:
            check = subprocess.run(
                [PY, PEERS_PY, "cli_check", workload.removeprefix("cli_"), out], capture_output=True, text=True, env=env
            )
            if check.returncode != 0:
                s.error = f"check failed: {check.stderr.strip()[-300:]}"
            else:
                s.checksum = check.stdout.strip().splitlines()[-1]
    return s


# --------------------------------------------------------------------------------------------
# The run.


@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)

    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None and s.applicable]

    def median(self) -> float | None:
        ok = self.ok()
        return statistics.median(s.seconds for s in ok) if ok else None

    def status(self) -> str | None:
        errs = [s.error for s in self.samples if s.error]
        if errs and not self.ok():
            if errs[0] == "unsupported":
                return "—"
            return errs[0] if errs[0].startswith("timeout") else "error"
        if self.samples and not any(s.applicable for s in self.samples if s.error is None):
            return "n/a"
        return None


def file_info(path: Path) -> dict:
    if path.is_dir():  # a Zarr store: X/data's inner chunks (a shard's, when sharded)
        code = r"""
import json, sys, zarr
g = zarr.open_group(sys.argv[1], mode="r")
x = g["X"]; d = x["data"]
codecs = [type(c).__name__ for c in (d.compressors or ())]
print(json.dumps(dict(shape=[int(v) for v in x.attrs["shape"]], enc=str(x.attrs["encoding-type"]),
    nnz=int(d.shape[0]), compression=f"zarr v{d.metadata.zarr_format} " + ("+".join(codecs) or "none")
    + (" sharded" if d.shards else ""), chunk=int(d.chunks[0]), n_chunks=int(d.nchunks))))
"""
    else:
        code = r"""
import h5py, json, sys
with h5py.File(sys.argv[1], "r") as f:
    x = f["X"]; d = x["data"]
    print(json.dumps(dict(shape=[int(v) for v in x.attrs["shape"]], enc=str(x.attrs["encoding-type"]),
        nnz=int(d.shape[0]), compression=f"{d.compression}" + (f" {d.compression_opts}" if d.compression else ""),
        chunk=d.chunks[0] if d.chunks else None, n_chunks=d.id.get_num_chunks() if d.chunks else None)))
"""
    info = json.loads(sh([PY, "-c", code, str(path)]) or "{}")
    files = path.rglob("*") if path.is_dir() else [path]
    info["bytes"] = sum(p.stat().st_size for p in files if p.is_file())
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path, help=".h5ad files (instead of --set)")
    ap.add_argument("--set", choices=list(SETS), help="the generated set in target/bench-data (benches/gen_data.py)")
    ap.add_argument("--label", help="name of the report section (default: the set, or 'custom')")
    ap.add_argument("--repeats", type=int, help="runs per measurement, median reported (default 3; 1 for large)")
    ap.add_argument("--slow", type=float, default=120.0, help="a measurement whose first run takes longer is not repeated")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds before a run is killed")
    ap.add_argument("--peers", help="comma-separated subset of: " + ",".join(r.name for r in RUNNERS))
    ap.add_argument("--workloads", help="comma-separated subset of: " + ",".join(WORKLOADS))
    ap.add_argument("--no-limits", action="store_true")
    ap.add_argument("--dry-run", action="store_true", help="print the markdown instead of writing the doc")
    ap.add_argument("--out", type=Path, default=DOC)
    args = ap.parse_args()

    if args.set:
        files = [DATA_DIR / f for f in SETS[args.set]]
    else:
        files = args.files
    if not files:
        ap.error("give files or --set")
    missing = [f for f in files if not f.exists()]
    if missing:
        ap.error(f"missing: {', '.join(map(str, missing))} (make them with benches/gen_data.py --size ...)")
    label = args.label or args.set or "custom"
    repeats = args.repeats or (1 if args.set == "large" or any(f.stat().st_size > 2**30 for f in files) else 3)
    workloads = tuple(args.workloads.split(",")) if args.workloads else WORKLOADS
    bad = set(workloads) - set(WORKLOADS)
    if bad:
        ap.error(f"unknown workloads {bad}")
    wanted = set(args.peers.split(",")) if args.peers else {r.name for r in RUNNERS}
    runners = [r for r in RUNNERS if r.name in wanted and r.available()]
    skipped = [r for r in RUNNERS if r.name in wanted and not r.available()]
    limits = [] if args.no_limits else [r for r in LIMITS if r.available()]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")

    started = dt.datetime.now(dt.timezone.utc)
    steal_start = stolen_seconds()
    mach = machine()
    vers = versions(
        runners + limits,
        {PY: ["anndata", "h5py", "numpy", "scipy", "pandas"], BENCH_PY: ["snapatac2", "polars", "anndata", "h5py", "numpy"]},
    )
    infos = {}
    results: dict[tuple[str, str, str], Cell] = {}  # (file, runner, workload)
    limit_results: dict[tuple[str, str], Cell] = {}  # (file, limit)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731

    for f in files:
        infos[f] = file_info(f)
        sel = sh([PY, PEERS_PY, "selections", str(f)])
        log(f"== {f.name}: {infos[f]}; selections in {sel}")
        env["BENCH_SELECTIONS"] = sel
        cli_args = json.loads(sh([PY, PEERS_PY, "cli_prep", str(f)]) or "{}") if set(workloads) & set(CLI_WORKLOADS) else {}
        slow_once: set[tuple[str, str]] = set()
        # Each round measures the limits, then every workload: a machine whose speed drifts
        # during the run (other tenants of the host) moves peers and limits alike.
        for rep in range(repeats):
            for lim in limits:  # the read limit first: it also warms the page cache for everyone
                cell = limit_results.setdefault((f.name, lim.name), Cell())
                done = cell.samples and (cell.samples[-1].error or not cell.samples[-1].applicable)
                if done or ("limit", lim.name) in slow_once:
                    continue
                s = run_one(lim.command(lim.workloads[0], f), args.timeout, env)
                cell.samples.append(s)
                log(f"  [{rep + 1}/{repeats}] limit {lim.name:18} {_show(s)}")
                if (s.seconds or 0) > args.slow:
                    slow_once.add(("limit", lim.name))
            for w in workloads:
                for r in runners:
                    if not r.implements(w) or (r.name, w) in slow_once:
                        continue
                    cell = results.setdefault((f.name, r.name, w), Cell())
                    if cell.samples and cell.samples[-1].error:
                        continue  # failed once: do not repeat
                    if w in CLI_WORKLOADS:
                        s = run_cli(r, w, f, args.timeout, env, cli_args)
                    else:
                        s = run_one(r.command(w, f), args.timeout, env)
                    cell.samples.append(s)
                    log(f"  [{rep + 1}/{repeats}] {r.name:10} {w:15} {_show(s)}")
                    if s.seconds is not None and s.seconds > args.slow:
                        slow_once.add((r.name, w))

    # Checksums: one value per (file, workload) across peers and repeats; per (file, group) for limits.
    mismatches = []
    for f in files:
        for w in workloads:
            seen = [(r.name, s.checksum) for r in runners for s in results.get((f.name, r.name, w), Cell()).ok()]
            _compare(f.name, w, seen, mismatches)
        for group in {lim.group for lim in limits}:
            seen = [(lim.name, s.checksum) for lim in limits if lim.group == group for s in limit_results[(f.name, lim.name)].ok()]
            _compare(f.name, f"limit {group}", seen, mismatches)

    finished = dt.datetime.now(dt.timezone.utc)
    mach.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    if steal_start is not None and (steal_end := stolen_seconds()) is not None:
        wall = (finished - started).total_seconds()
        mach.append(("CPU time stolen by the hypervisor during the run", f"{steal_end - steal_start:.1f} s of {wall:.0f} s"))
    md = report(
        label, files, infos, runners, skipped, limits, workloads, results, limit_results, mach, vers, repeats, args, started, finished, mismatches
    )
    if mismatches:
        bar = "!" * 78
        log(f"\n{bar}\nCHECKSUM MISMATCH: peers disagree on what the file holds\n" + "\n".join(mismatches) + f"\n{bar}")
        print(md)
        sys.exit(1)
    if args.dry_run:
        print(md)
        return
    write_section(args.out, label, md)
    log(f"wrote section '{label}' of {args.out}")


def _compare(fname, what, seen, mismatches):
    if not seen:
        return
    ref_name, ref = seen[0]
    for name, c in seen[1:]:
        if not checksums_agree(ref, c):
            mismatches.append(f"{fname} {what}: {ref_name} gave {ref}, {name} gave {c}")


def _show(s: Sample) -> str:
    if s.error:
        return f"ERROR {s.error}"
    if not s.applicable:
        return "n/a"
    return f"{s.seconds:9.3f} s  rss {s.rss_kib / 1024:8.1f} MiB  wall {s.wall:7.2f} s  cpu {s.cpu:7.2f} s  {s.checksum}"


# --------------------------------------------------------------------------------------------
# The report.


def _secs(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.3g} s" if x < 100 else f"{x:.0f} s"


def _chunks(i: dict) -> str:
    return f"{i['chunk']:,} × {i['n_chunks']:,} chunks" if i.get("chunk") else "contiguous"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "—"
    r = a / b
    return f"{r:.2f}" if r < 100 else f"{r:.0f}"


def report(label, files, infos, runners, skipped, limits, workloads, results, limit_results, mach, vers, repeats, args, started, finished, mismatches) -> str:
    L = []
    cmd = " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT)) else sys.executable, os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    L.append(f"### Set `{label}`")
    L.append("")
    L.append(f"Command (from the repository root): `{cmd}`  ")
    L.append(f"Run {started:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC; {repeats} run(s) per measurement, median shown "
             f"(a measurement whose first run took over {args.slow:.0f} s ran once: marked ¹).")
    L.append("")
    if skipped:
        L.append("**Not measured** (program missing): " + "; ".join(f"{r.name} ({r.note or r.program})" for r in skipped) + ".")
        L.append("")
    L.append("| machine | |")
    L.append("| --- | --- |")
    for k, v in mach:
        L.append(f"| {k} | {v} |")
    for k, v in vers:
        L.append(f"| {k} | {v} |")
    L.append("")
    L.append("| file | cells × genes | non-zeros | X compression | X chunk (entries) | size |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for f in files:
        i = infos[f]
        shp = i.get("shape", ["?", "?"])
        L.append(
            f"| `{f.name}` | {shp[0]:,} × {shp[1]:,} | {i.get('nnz', 0):,} | {i.get('compression')} | "
            f"{_chunks(i)} | {i['bytes'] / 2**20:,.0f} MiB |"
        )
    L.append("")
    names = [r.name for r in runners]
    timed = [w for w in workloads if w != "noop"]
    for f in files:
        fn = f.name
        L.append(f"#### `{fn}`")
        L.append("")
        L.append(
            "Workload time (median) and the process's peak RSS. Library rows: the workload's own time, timed "
            "inside the process (open through result, imports excluded). **CLI** rows: the whole process as a "
            "user runs it, wall time from start to exit (interpreter start and imports included):"
        )
        L.append("")
        L.append("| workload | " + " | ".join(names) + " |")
        L.append("| --- |" + " --- |" * len(names))
        for w in workloads:
            row = []
            for r in runners:
                c = results.get((fn, r.name, w))
                if c is None:
                    row.append("—")
                    continue
                st = c.status()
                if st:
                    row.append(st)
                    continue
                ok = c.ok()
                mark = "¹" if len(ok) == 1 and repeats > 1 else ""
                rss = max(s.rss_kib for s in ok) / 1024
                t = _secs(c.median()) if w != "noop" else f"{statistics.median(s.wall for s in ok):.2f} s wall"
                row.append(f"{t}{mark} · {rss:,.0f} MiB")
            L.append(f"| {WORKLOAD_TITLES[w]} | " + " | ".join(row) + " |")
        L.append("")
        if len(runners) > 1:
            pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
            L.append("Time ratios between peers (first ÷ second; below 1 the first is faster):")
            L.append("")
            L.append("| workload | " + " | ".join(f"{a} ÷ {b}" for a, b in pairs) + " |")
            L.append("| --- |" + " --- |" * len(pairs))
            for w in timed:
                med = {n: (results[(fn, n, w)].median() if (fn, n, w) in results else None) for n in names}
                L.append(f"| {w} | " + " | ".join(_ratio(med[a], med[b]) for a, b in pairs) + " |")
            L.append("")
        stats_cli, full = results.get((fn, "annpage", "cli_stats")), results.get((fn, "annpage", "full_pass"))
        if stats_cli and full and stats_cli.ok() and full.ok():
            walls = [statistics.median(s.wall for s in c.ok()) for c in (stats_cli, full)]
            L.append(
                f"The CLI against the engine, both whole processes (wall): `annpage stats` {walls[0]:.3g} s ÷ "
                f"`annpage-bench full_pass` {walls[1]:.3g} s = {_ratio(*walls)}."
            )
            L.append("")
        if limits:
            lim_med = {lim.name: limit_results[(fn, lim.name)] for lim in limits}
            L.append("Limits on this file (the floor for any reader here):")
            L.append("")
            L.append("| limit | time | throughput |")
            L.append("| --- | --- | --- |")
            for lim in limits:
                c = lim_med[lim.name]
                st = c.status()
                if st:
                    L.append(f"| {lim.name} | {st} | |")
                    continue
                m = c.median()
                ok = c.ok()
                nbytes = float(ok[0].checksum.split(",")[0])
                what = {"read": "file", "sums": "X/data + X/indices summed"}.get(lim.group, "inflated X/data + X/indices")
                L.append(f"| {lim.name} | {_secs(m)} | {nbytes / m / 2**20:,.0f} MiB/s of {what} |")
            L.append("")
            usable = [lim for lim in limits if lim_med[lim.name].median() is not None]
            whole = [w for w in WHOLE_X if w in timed]
            if usable and whole:
                L.append("Workloads that must read all of X, as multiples of each limit (peer time ÷ limit time):")
                L.append("")
                L.append("| workload | peer | " + " | ".join(f"÷ {lim.name}" for lim in usable) + " |")
                L.append("| --- | --- |" + " --- |" * len(usable))
                for w in whole:
                    for n in names:
                        c = results.get((fn, n, w))
                        m = c.median() if c else None
                        L.append(f"| {w} | {n} | " + " | ".join(_ratio(m, lim_med[lim.name].median()) for lim in usable) + " |")
                L.append("")
        L.append("<details><summary>Per process: median wall and CPU (user + system) time, including interpreter start and imports</summary>")
        L.append("")
        L.append("| workload | " + " | ".join(names) + " |")
        L.append("| --- |" + " --- |" * len(names))
        for w in workloads:
            row = []
            for r in runners:
                c = results.get((fn, r.name, w))
                ok = c.ok() if c else []
                row.append(
                    f"{statistics.median(s.wall for s in ok):.2f} / {statistics.median(s.cpu for s in ok):.2f} s" if ok else "—"
                )
            L.append(f"| {w} | " + " | ".join(row) + " |")
        L.append("")
        L.append("</details>")
        L.append("")
        errs = [
            f"- {r.name} {w}: {s.error}"
            for r in runners
            for w in workloads
            for s in (results.get((fn, r.name, w)) or Cell()).samples
            if s.error and s.error != "unsupported"
        ]
        if errs:
            L.append("Failures:")
            L.append("")
            L.extend(errs)
            L.append("")
    L.append("Checksums agreed across peers and repeats." if not mismatches else "**CHECKSUM MISMATCH:** " + "; ".join(mismatches))
    return "\n".join(L) + "\n"


DOC_HEAD = """# Benchmarks: annpage and its peers

Generated sections below come from `benches/run.py` (see its `--help`); hand-written text outside
the `BEGIN/END GENERATED` markers is kept when a set is run again.
"""


def write_section(path: Path, label: str, md: str) -> None:
    begin, end = f"<!-- BEGIN GENERATED {label} -->", f"<!-- END GENERATED {label} -->"
    block = f"{begin}\n{md}{end}\n"
    text = path.read_text() if path.exists() else DOC_HEAD + "\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        tail = tail.lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text)


if __name__ == "__main__":
    main()
