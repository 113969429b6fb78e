"""The viewer on many cells (issue 14: "1M points smoothly"), in headless Chromium.

    python benches/viewer_points.py [--cells 1000000] [--repeats 5] [--label NAME]

Writes (once) `target/bench-data/viewer-N.h5ad`: N cells in 12 clusters of a 2-d embedding
(`obsm/X_umap`), a categorical `cell_type`, 50 genes of sparse counts. Serves it with the
release `annpage serve` and loads the viewer in Chromium (tests/interop/devtools.py), then
times in the page: the first plot (navigation to every cell drawn and coloured), a repaint
(`draw()` with new colours), a layout and paint (a new embedding or canvas size), colouring by a gene typed in the box (Enter to drawn), and the lookup of the
cell under the mouse. Medians of --repeats; the table goes to stdout and, with --label, into
docs/benchmarks.md between `<!-- viewer:NAME -->` markers.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))

from devtools import CHROMIUM, DevTools  # noqa: E402


def dataset(n: int) -> Path:
    path = ROOT / "target" / "bench-data" / f"viewer-{n}.h5ad"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    cluster = rng.integers(0, 12, n)
    centres = rng.normal(0, 8, (12, 2))
    umap = (centres[cluster] + rng.normal(0, 1.2, (n, 2))).astype(np.float32)
    x = sp.random(n, 50, density=0.05, format="csr", random_state=4, dtype=np.float32)
    x.data = np.ceil(x.data * 10)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical.from_codes(cluster, [f"type_{i}" for i in range(12)]),
         "n_counts": np.asarray(x.sum(axis=1)).ravel()},
        index=[f"cell_{i}" for i in range(n)],
    )
    a = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"GENE{j}" for j in range(50)]))
    a.obsm["X_umap"] = umap
    a.write_h5ad(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--label")
    parser.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "annpage")
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("Chromium is not installed (./dev test installs it from Debian)")
    path = dataset(args.cells)
    proc = subprocess.Popen([str(args.bin), "serve", f"cells={path}", "--port", "0", "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    match = re.search(r"http://(\S+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"annpage serve did not start: {line}{proc.stderr.read()}")
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    url = f"http://{match.group(1)}"
    times: dict[str, list[float]] = {"first plot": [], "repaint (new colours)": [],
                                     "layout and paint (new embedding or size)": [], "colour by a gene": [],
                                     "hover lookup": []}
    try:
        for r in range(args.repeats):
            with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
                chrome = DevTools(Path(profile))
                try:
                    t0 = time.perf_counter()
                    session = chrome.page(f"{url}/?dataset=cells")
                    chrome.wait_for(session, "document.body.dataset.state === 'ready' && "
                                    "document.body.dataset.coloredBy === 'cell_type'", seconds=120)
                    times["first plot"].append(time.perf_counter() - t0)
                    assert chrome.evaluate(session, "state.positions.length") == args.cells
                    times["repaint (new colours)"].append(chrome.evaluate(
                        session, "(() => { const t = performance.now(); draw(); return (performance.now() - t) / 1e3; })()"))
                    times["layout and paint (new embedding or size)"].append(chrome.evaluate(
                        session, "(() => { const t = performance.now(); state.laidOut = null; draw(); "
                        "return (performance.now() - t) / 1e3; })()"))
                    chrome.evaluate(session, "document.getElementById('gene').focus()")
                    chrome.call("Input.insertText", session, text=f"GENE{r + 1}")
                    t0 = time.perf_counter()
                    for kind in ("keyDown", "keyUp"):
                        chrome.call("Input.dispatchKeyEvent", session, type=kind, key="Enter", code="Enter",
                                    windowsVirtualKeyCode=13)
                    chrome.wait_for(session, f"document.body.dataset.coloredBy === 'gene:GENE{r + 1}' && "
                                    "document.body.dataset.state === 'ready'", seconds=120)
                    times["colour by a gene"].append(time.perf_counter() - t0)
                    times["hover lookup"].append(chrome.evaluate(session, (
                        "(() => { const t = performance.now(); for (let k = 0; k < 1000; k++) "
                        "nearest(state.screen[2 * k], state.screen[2 * k + 1]); return (performance.now() - t) / 1e3 / 1000; })()")))
                finally:
                    chrome.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    version = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"The viewer on {args.cells:,} cells (`{path.name}`), {version} headless, software rendering, "
        f"2 cores; medians of {args.repeats} page loads (min–max).",
        "",
        "| step | median | range |",
        "|---|---|---|",
    ]
    for step, v in times.items():
        unit, scale = ("ms", 1e3) if max(v) < 1 else ("s", 1)
        lines.append(f"| {step} | {statistics.median(v) * scale:.2f} {unit} | "
                     f"{min(v) * scale:.2f}–{max(v) * scale:.2f} {unit} |")
    lines += ["", f"Command: `python benches/viewer_points.py --cells {args.cells} --repeats {args.repeats}"
              + (f" --label {args.label}" if args.label else "") + "`"]
    table = "\n".join(lines)
    print(table)
    if args.label:
        doc = ROOT / "docs" / "benchmarks.md"
        text = doc.read_text()
        begin, end = f"<!-- viewer:{args.label} -->", f"<!-- /viewer:{args.label} -->"
        block = f"{begin}\n{table}\n{end}"
        if begin in text:
            text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
        else:
            text += f"\n### The viewer on {args.cells:,} cells\n\n{block}\n"
        doc.write_text(text)


if __name__ == "__main__":
    main()
