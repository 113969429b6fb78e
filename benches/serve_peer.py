"""A comparison server written the way one is written today: anndata in backed mode behind
Python's http.server, answering the same URLs as `annpage serve` for the load test.

    python benches/serve_peer.py FILE [--port 0]

Prints `serving on http://HOST:PORT` on stderr when ready. Endpoints (the load test's):
  GET /datasets/{d}                       JSON: name, shape
  GET /datasets/{d}/genes/{name|position} one gene over every cell, float32 (raw bytes)
  GET /datasets/{d}/cells?positions=…     a CSR block of those cells, in the order asked (raw bytes)
  GET /datasets/{d}/obs?columns=c&index=false  JSON: that column
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    adata = ad.read_h5ad(args.file, backed="r")
    name = args.file.name.removesuffix(".h5ad")
    genes = {g: i for i, g in enumerate(adata.var_names)}
    # h5py handles are not safe to share between threads without the lock h5py holds anyway;
    # anndata's backed views are built per request under one lock.
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):  # quiet
            pass

        def reply(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            parts = url.path.strip("/").split("/")
            try:
                if parts[:2] != ["datasets", name]:
                    return self.reply(404, b'{"error": "no such dataset"}\n', "application/json")
                if len(parts) == 2:
                    return self.reply(200, json.dumps({"name": name, "shape": list(adata.shape)}).encode(), "application/json")
                if parts[2] == "genes" and len(parts) == 4:
                    key = urllib.parse.unquote(parts[3])
                    j = genes[key] if key in genes else int(key)
                    with lock:
                        col = adata[:, j].X
                    col = col.toarray() if sp.issparse(col) else np.asarray(col)
                    return self.reply(200, col.astype(np.float32).ravel().tobytes(), "application/octet-stream")
                if parts[2] == "cells":
                    pos = np.array([int(p) for p in query["positions"].split(",")])
                    uniq, inverse = np.unique(pos, return_inverse=True)
                    with lock:
                        block = adata[uniq].X  # backed mode wants increasing positions
                    block = sp.csr_matrix(block)[inverse]
                    body = block.data.astype(np.float32).tobytes() + block.indices.astype(np.uint32).tobytes() + block.indptr.astype(np.uint64).tobytes()
                    return self.reply(200, body, "application/octet-stream")
                if parts[2] == "obs":
                    cols = query.get("columns", "").split(",")
                    with lock:
                        df = adata.obs[cols]
                    out = {"columns": [{"name": c, "values": (df[c].cat.codes.tolist() if hasattr(df[c], "cat") else df[c].tolist())} for c in cols]}
                    return self.reply(200, json.dumps(out).encode(), "application/json")
                self.reply(404, b'{"error": "no such endpoint"}\n', "application/json")
            except (KeyError, ValueError, IndexError) as e:
                self.reply(400, json.dumps({"error": str(e)}).encode(), "application/json")

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"serving on http://127.0.0.1:{server.server_port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
