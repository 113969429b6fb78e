"""`annpage serve` as a user runs it: the CLI's server answering what anndata reads from the
same file, and its viewer in a real headless Chromium (driven over the DevTools pipe)."""

import base64
import json
import os
import re
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
import zlib

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

from devtools import CHROMIUM, DevTools
from support import FIXTURES, ROOT

PBMC = FIXTURES / "pbmc_like_csr.h5ad"
ALL = FIXTURES / "all_elements.h5ad"


@pytest.fixture(scope="module")
def server(annpage_bin):
    proc = subprocess.Popen(
        [str(annpage_bin), "serve", f"pbmc={PBMC}", str(ALL), "--port", "0", "--cache-mb", "16"],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stderr.readline()
    match = re.search(r"http://(\S+)", line)
    assert match, line
    yield f"http://{match.group(1)}", proc
    proc.terminate()
    # SIGTERM: the server finishes and exits cleanly, with one log line per request.
    _, log = proc.communicate(timeout=30)
    assert proc.returncode == 0, log
    assert re.search(r"^INFO GET /datasets/pbmc/genes\?names=\S+ 200 ", log, re.M), log


def fetch(url, body=None):
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers.get("content-type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type"), e.read()


def arrays(body):
    """The server's binary answer: named little-endian arrays behind a small header."""
    assert body[:6] == b"APAR\x01\x00"
    (count,) = struct.unpack_from("<H", body, 6)
    at, out = 8, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", body, at)
        name = body[at + 2 : at + 2 + n].decode()
        at += 2 + n
        dtype, ndim = body[at : at + 2].decode(), body[at + 2]
        at += 4
        dims = struct.unpack_from(f"<{ndim}Q", body, at)
        at += 8 * ndim
        (length,) = struct.unpack_from("<Q", body, at)
        at += 8
        out[name] = np.frombuffer(body[at : at + length], dtype="<" + dtype).reshape(dims)
        at += length
    return out


def test_answers_equal_what_anndata_reads(server):
    url, _ = server
    adata = ad.read_h5ad(PBMC)
    status, _, body = fetch(f"{url}/datasets")
    assert status == 200
    listed = {d["name"]: d for d in json.loads(body)}
    assert listed["pbmc"]["shape"] == list(adata.shape)
    assert listed["pbmc"]["obsm"] == list(adata.obsm.keys())

    genes = ["GENE17", "GENE3", "GENE999"]
    status, ctype, body = fetch(f"{url}/datasets/pbmc/genes?names={','.join(genes)}")
    assert (status, ctype) == (200, "application/x-annpage-arrays")
    expected = adata[:, genes].X.toarray().T.astype(np.float32)
    np.testing.assert_array_equal(arrays(body)["values"], expected)

    cells = [1999, 0, 7, 7]
    _, _, body = fetch(f"{url}/datasets/pbmc/cells?positions={','.join(map(str, cells))}&genes=GENE5,GENE1")
    got = arrays(body)
    block = sp.csr_matrix((got["data"], got["indices"], got["indptr"]), shape=tuple(got["shape"]))
    np.testing.assert_array_equal(block.toarray(), adata[cells, ["GENE5", "GENE1"]].X.toarray())

    _, _, body = fetch(f"{url}/datasets/pbmc/obsm/X_umap?max_points=500")
    got = arrays(body)
    np.testing.assert_array_equal(got["positions"], np.arange(0, 2000, 4))
    np.testing.assert_array_equal(got["values"], adata.obsm["X_umap"][::4].astype(np.float32))

    _, _, body = fetch(f"{url}/datasets/pbmc/obs?columns=cell_type,passed_qc,n_counts")
    obs = json.loads(body)
    assert obs["index"] == adata.obs_names.tolist()
    by_name = {c["name"]: c for c in obs["columns"]}
    assert list(by_name) == ["cell_type", "passed_qc", "n_counts"]  # the order asked, as pandas' df[columns]
    cell_type = adata.obs["cell_type"]
    assert by_name["cell_type"]["categories"] == cell_type.cat.categories.tolist()
    assert by_name["cell_type"]["codes"] == cell_type.cat.codes.tolist()
    assert by_name["passed_qc"]["values"] == adata.obs["passed_qc"].tolist()
    np.testing.assert_array_equal(np.float32(by_name["n_counts"]["values"]), adata.obs["n_counts"].to_numpy())


def test_a_subset_download_opens_in_anndata_equal_to_its_subset(server, tmp_path):
    url, _ = server
    request = {"obs_query": "cell_type == 'B' and n_genes > 20", "var_names": ["GENE9", "GENE2"], "compression": "gzip"}
    status, ctype, body = fetch(f"{url}/datasets/pbmc/subset", json.dumps(request).encode())
    assert (status, ctype) == (200, "application/x-hdf5"), body[:300]
    out = tmp_path / "subset.h5ad"
    out.write_bytes(body)
    adata = ad.read_h5ad(PBMC)
    mask = adata.obs.eval("cell_type == 'B' and n_genes > 20").to_numpy()
    assert 0 < mask.sum() < adata.n_obs
    assert_equal(ad.read_h5ad(out), adata[mask, ["GENE9", "GENE2"]].copy())


def test_bad_requests_get_a_4xx_and_one_line_of_json(server):
    url, _ = server
    for path, code in [
        ("/datasets/pbmc/genes/NOT_A_GENE", 404),
        ("/datasets/pbmc/genes/1000", 400),
        ("/datasets/missing/obs", 404),
        ("/datasets/pbmc/cells?positions=-1", 400),
    ]:
        status, ctype, body = fetch(url + path)
        assert (status, ctype) == (code, "application/json"), (path, body)
        assert body.count(b"\n") == 1 and "error" in json.loads(body)


def start(annpage_bin, *args):
    """`annpage serve ARGS --port 0`, and the URL it prints once it answers."""
    proc = subprocess.Popen([str(annpage_bin), "serve", *map(str, args), "--port", "0", "--quiet"],
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    match = re.search(r"http://(\S+)", line)
    assert match, line + proc.stderr.read()
    return f"http://{match.group(1)}", proc


def test_a_collection_answers_what_anndata_concat_gives(annpage_bin, tmp_path):
    """NAME=FILE,FILE serves the files as one dataset: anndata.concat's result, read lazily."""
    whole = ad.read_h5ad(PBMC)
    halves = [whole[:1200].copy(), whole[1200:, ::-1].copy()]  # genes shuffled in the second
    paths = []
    for i, half in enumerate(halves):
        half.raw = None
        paths.append(tmp_path / f"half{i}.h5ad")
        half.write_h5ad(paths[-1])
    expected = ad.concat([ad.read_h5ad(p) for p in paths], label="batch", keys=["a", "b"], index_unique="-")
    url, proc = start(annpage_bin, "atlas=" + ",".join(map(str, paths)), "--label", "batch",
                      "--keys", "a,b", "--index-unique", "-")
    try:
        _, _, body = fetch(f"{url}/datasets/atlas")
        assert json.loads(body)["shape"] == list(expected.shape)
        _, _, body = fetch(f"{url}/datasets/atlas/genes?names=GENE17,GENE3")
        np.testing.assert_array_equal(
            arrays(body)["values"], expected[:, ["GENE17", "GENE3"]].X.toarray().T.astype(np.float32))
        cells = [1199, 1200, 0, 1999]
        _, _, body = fetch(f"{url}/datasets/atlas/cells?positions={','.join(map(str, cells))}")
        got = arrays(body)
        block = sp.csr_matrix((got["data"], got["indices"], got["indptr"]), shape=tuple(got["shape"]))
        np.testing.assert_array_equal(block.toarray(), expected[cells].X.toarray())
        _, _, body = fetch(f"{url}/datasets/atlas/obs?columns=batch,cell_type")
        obs = json.loads(body)
        assert obs["index"] == expected.obs_names.tolist()
        assert obs["columns"][0]["codes"] == expected.obs["batch"].cat.codes.tolist()
        assert obs["columns"][1]["categories"] == expected.obs["cell_type"].cat.categories.tolist()
        _, _, body = fetch(f"{url}/datasets/atlas/obsm/X_umap")
        np.testing.assert_array_equal(arrays(body)["values"], expected.obsm["X_umap"].astype(np.float32))
        request = {"obs_query": "batch == 'b' and n_genes > 20", "var_names": ["GENE9", "GENE2"]}
        status, _, body = fetch(f"{url}/datasets/atlas/subset", json.dumps(request).encode())
        assert status == 200, body[:300]
        (tmp_path / "subset.h5ad").write_bytes(body)
        mask = expected.obs.eval("batch == 'b' and n_genes > 20").to_numpy()
        assert 0 < mask.sum() < expected.n_obs
        assert_equal(ad.read_h5ad(tmp_path / "subset.h5ad"), expected[mask, ["GENE9", "GENE2"]].copy())
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def closed(sock):
    """Whether the server closed `sock` without an answer (an end of stream, or a reset when
    it closed with our request unread)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_the_connection_cap_and_the_header_timeout_are_the_cli_flags(annpage_bin):
    url, proc = start(annpage_bin, PBMC, "--max-connections", "1", "--header-timeout", "1")
    host, port = url.removeprefix("http://").rsplit(":", 1)
    try:
        # The one connection allowed, sending nothing.
        idle = socket.create_connection((host, int(port)), timeout=10)
        time.sleep(0.2)
        # A second is closed as soon as it is accepted, without an answer.
        extra = socket.create_connection((host, int(port)), timeout=10)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert closed(extra)
        # The idle one is closed once its head has not arrived within a second.
        t0 = time.monotonic()
        assert closed(idle)
        assert 0.5 < time.monotonic() - t0 + 0.2 < 5
        status, _, body = fetch(f"{url}/healthz")
        assert (status, body) == (200, b"ok\n")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


# --- the viewer in headless Chromium -----------------------------------------------------------

def png_pixels(png):
    """The RGB pixels of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    at, idat, header = 8, b"", None
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        at += 12 + length
    width, height, depth, color = header[:4]
    assert depth == 8 and color in (2, 6)
    channels = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], np.zeros(stride, np.int64)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int64)
        if kind == 1:  # Sub: a running sum along each channel
            line = np.cumsum(line.reshape(width, channels), axis=0).reshape(-1) & 255
        elif kind == 2:  # Up
            line = (line + prev) & 255
        elif kind in (3, 4):  # Average, Paeth: each byte needs the one before it
            out = line.copy()
            for i in range(stride):
                a = out[i - channels] if i >= channels else 0
                b, c = prev[i], prev[i - channels] if i >= channels else 0
                if kind == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                out[i] = (out[i] + pred) & 255
            line = out
        rows.append(line)
        prev = line
    return np.array(rows, np.uint8).reshape(height, width, channels)[:, :, :3]


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (./dev test installs it from Debian)")
def test_the_viewer_plots_every_cell_and_colours_them_by_a_typed_gene(server, tmp_path):
    url, _ = server
    chrome = DevTools(tmp_path / "profile")
    try:
        session = chrome.page(f"{url}/?dataset=pbmc")

        def evaluate(expression):
            return chrome.evaluate(session, expression)

        def wait_for(condition):
            return chrome.wait_for(session, condition)

        # The embedding is drawn, coloured by the first categorical column.
        wait_for("document.body.dataset.state === 'ready' && document.body.dataset.coloredBy === 'cell_type'")
        assert evaluate("document.getElementById('status').textContent") == "2000 cells"
        signature = "(() => { const c = document.getElementById('plot'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;" \
            " const seen = new Set(); let lit = 0; for (let i = 0; i < d.length; i += 4) { if (d[i + 3]) { lit++; seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); } }" \
            " return [lit, [...seen].sort((a, b) => a - b).join(',')]; })()"
        lit, by_type = evaluate(signature)
        assert lit >= 1000, lit
        legend = evaluate("[...document.querySelectorAll('#legend div')].map(d => d.textContent)")
        assert legend == ad.read_h5ad(PBMC).obs["cell_type"].cat.categories.tolist()

        # Type a gene: the box completes it from the var names; Enter colours by it.
        evaluate("document.getElementById('gene').focus()")
        chrome.call("Input.insertText", session, text="GENE12")
        options = evaluate("[...document.querySelectorAll('#genes option')].map(o => o.value)")
        assert options[:2] == ["GENE12", "GENE120"], options
        for kind in ("keyDown", "keyUp"):
            chrome.call("Input.dispatchKeyEvent", session, type=kind, key="Enter", code="Enter", windowsVirtualKeyCode=13)
        wait_for("document.body.dataset.coloredBy === 'gene:GENE12' && document.body.dataset.state === 'ready'")
        lit_gene, by_gene = evaluate(signature)
        assert lit_gene == lit and by_gene != by_type

        # Hovering a cell shows its obs values.
        x, y = evaluate("(() => { const r = document.getElementById('plot').getBoundingClientRect();"
                        " return [r.left + state.screen[0] / devicePixelRatio, r.top + state.screen[1] / devicePixelRatio]; })()")
        chrome.call("Input.dispatchMouseEvent", session, type="mouseMoved", x=x, y=y)
        # Its obs row is read from the server when the mouse reaches it.
        wait_for("document.getElementById('tip').style.display === 'block'")
        tip = evaluate("document.getElementById('tip').textContent")
        cell = evaluate("Number(state.positions[0])")
        assert tip.split("\n")[0] == ad.read_h5ad(PBMC).obs_names[cell], tip
        assert "cell_type: " in tip and "n_genes: " in tip, tip

        shot = base64.b64decode(chrome.call("Page.captureScreenshot", session, format="png")["data"])
        pixels = png_pixels(shot)
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, "the screenshot is blank"
        (ROOT / "target").mkdir(exist_ok=True)
        (ROOT / "target" / "viewer.png").write_bytes(shot)
    finally:
        chrome.close()


def test_a_decoder_panic_on_a_corrupt_store_is_one_line_of_the_log(annpage_bin, tmp_path):
    """zarrs' vlen-utf8 decoder panics on a string longer than its chunk: the request gets a
    one-line JSON error naming the element, and the server's log one line for the panic (run
    without RUST_BACKTRACE, as a server is)."""
    store = tmp_path / "all.zarr"
    made = subprocess.run([str(annpage_bin), "convert", str(ALL), str(store), "--zarr-format", "2"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    chunk = store / "obs" / "barcode" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[4:8] = (0xFFFF).to_bytes(4, "little")  # the first barcode's length (no compressor)
    chunk.write_bytes(bytes(raw))
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    proc = subprocess.Popen([str(annpage_bin), "serve", f"all={store}", "--port", "0"], stderr=subprocess.PIPE,
                            text=True, env=env)
    line = proc.stderr.readline()
    match = re.search(r"http://(\S+)", line)
    assert match, line
    status, ctype, body = fetch(f"http://{match.group(1)}/datasets/all/obs?columns=barcode")
    proc.terminate()
    _, log = proc.communicate(timeout=30)
    assert status >= 400 and ctype == "application/json" and body.count(b"\n") == 1, (status, body)
    assert "/obs/barcode" in json.loads(body)["error"], body
    lines = log.splitlines()
    assert [l for l in lines if l.startswith("annpage: panic: ")] and "panicked" not in log, log
    assert all(l.startswith(("annpage: ", "INFO ")) for l in lines), log


def test_cold_requests_for_one_column_read_it_once(annpage_bin, tmp_path):
    """Concurrent requests for an obs column not read yet share one read of it: each used to
    read (and hold) a copy of its own, and 32 of them took a server with a 96 MiB budget past
    500 MB."""
    import threading

    n = 100_000
    path = tmp_path / "strings.h5ad"
    a = ad.AnnData(X=sp.csr_matrix((n, 4), dtype=np.float32))
    a.obs_names = [f"c{i}" for i in range(n)]
    a.obs["u"] = [f"unique_{i}_" + "y" * 200 for i in range(n)]  # unique: stays strings
    a.write_h5ad(path)
    proc = subprocess.Popen(
        [str(annpage_bin), "serve", f"s={path}", "--port", "0", "--cache-mb", "64",
         "--response-mb", "32", "--threads", "4", "--quiet"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://(\S+)", proc.stderr.readline()).group(0)
        rng = np.random.default_rng(0)
        urls = [f"{url}/datasets/s/obs?columns=u&rows=" + ",".join(map(str, rng.integers(0, n, 2000)))
                for _ in range(16)]
        statuses = []

        def ask(u):
            try:
                statuses.append(fetch(u)[0])
            except OSError as e:  # a timeout: counted as a failure below
                statuses.append(repr(e))

        threads = [threading.Thread(target=ask, args=(u,)) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with open(f"/proc/{proc.pid}/status") as f:
            peak_kb = int(next(line for line in f if line.startswith("VmHWM")).split()[1])
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert statuses == [200] * 16
    # One copy of the column (~23 MB) within the budget; 16 copies were ~370 MB.
    assert peak_kb / 1024 < 64 + 32 + 100, f"{peak_kb / 1024:.0f} MiB"
