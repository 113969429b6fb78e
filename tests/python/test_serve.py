"""annpage.serve: the HTTP server inside a Python process, and the gene-major copy it keeps."""

import json
import struct
import urllib.error
import urllib.request

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp
from anndata.tests.helpers import assert_equal

import annpage
from conftest import ROOT

PBMC = ROOT / "fixtures" / "pbmc_like_csr.h5ad"


def values(body):
    """The first array of a binary answer (name, dtype, dims, bytes after an 8-byte header)."""
    (n,) = struct.unpack_from("<H", body, 8)
    at = 10 + n
    dtype, ndim = body[at : at + 2].decode(), body[at + 2]
    dims = struct.unpack_from(f"<{ndim}Q", body, at + 4)
    at += 4 + 8 * ndim + 8
    return np.frombuffer(body, dtype="<" + dtype, count=int(np.prod(dims)), offset=at).reshape(dims)


def test_a_server_in_this_process_answers_what_anndata_reads(tmp_path):
    adata = ad.read_h5ad(PBMC)
    with annpage.serve({"pbmc": PBMC}, port=0, cache_mb=8, index=tmp_path / "index") as server:
        assert server.url.startswith("http://127.0.0.1:") and server.datasets == ["pbmc"]
        listed = json.load(urllib.request.urlopen(server.url + "/datasets"))
        assert listed[0]["shape"] == list(adata.shape)
        body = urllib.request.urlopen(server.url + "/datasets/pbmc/genes?names=GENE3,GENE40").read()
        np.testing.assert_array_equal(values(body), adata[:, ["GENE3", "GENE40"]].X.toarray().T)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(server.url + "/datasets/pbmc/genes/NOPE")
        assert e.value.code == 404 and "no gene named 'NOPE'" in json.load(e.value)["error"]
        url = server.url
    # Stopped at the end of the block (and a second stop does nothing).
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=5)


def test_a_list_of_paths_is_served_as_one_collection(tmp_path):
    whole = ad.read_h5ad(PBMC)
    whole.raw = None
    paths = [tmp_path / "a.h5ad", tmp_path / "b.h5ad"]
    whole[:500].write_h5ad(paths[0])
    whole[500:, ::2].write_h5ad(paths[1])
    expected = ad.concat([ad.read_h5ad(p) for p in paths], join="outer", label="part", index_unique="-")
    with annpage.serve({"atlas": paths}, port=0, join="outer", label="part", index_unique="-") as server:
        listed = json.load(urllib.request.urlopen(server.url + "/datasets/atlas"))
        assert listed["shape"] == list(expected.shape) and len(listed["collection"]) == 2
        body = urllib.request.urlopen(server.url + "/datasets/atlas/genes?names=GENE3,GENE40").read()
        np.testing.assert_array_equal(values(body), expected[:, ["GENE3", "GENE40"]].X.toarray().T)
        obs = json.load(urllib.request.urlopen(server.url + "/datasets/atlas/obs?columns=part"))
        assert obs["index"] == expected.obs_names.tolist()
        assert obs["columns"][0]["codes"] == expected.obs["part"].cat.codes.tolist()


def test_a_list_of_one_path_is_a_collection_of_one(tmp_path):
    expected = ad.read_h5ad(PBMC)
    with annpage.serve({"one": [PBMC], "file": PBMC}, port=0, label="part", keys=["only"]) as server:
        one = json.load(urllib.request.urlopen(server.url + "/datasets/one"))
        assert len(one["collection"]) == 1 and one["shape"] == list(expected.shape)
        obs = json.load(urllib.request.urlopen(server.url + "/datasets/one/obs?columns=part"))
        assert obs["columns"][0]["categories"] == ["only"]
        assert "collection" not in json.load(urllib.request.urlopen(server.url + "/datasets/file"))


def test_a_server_that_cannot_start_raises_naming_the_cause(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.h5ad"):
        annpage.serve(tmp_path / "missing.h5ad", port=0)
    with pytest.raises(ValueError, match="given twice"):
        annpage.serve([PBMC, PBMC], port=0)
    with pytest.raises(ValueError, match="not an IP address"):
        annpage.serve(PBMC, host="localhost", port=0)
    for port in (-1, 70000):
        with pytest.raises(ValueError, match="port must be from 0 to 65535"):
            annpage.serve(PBMC, port=port)


def test_a_gene_major_copy_reads_back_equal_in_anndata(tmp_path):
    out = tmp_path / "genes.h5ad"
    backed = annpage.read_h5ad(PBMC, backed="r")
    view = backed[::3, ["GENE9", "GENE1", "GENE500"]]
    view.write_gene_major(out, memory_mb=1)
    copy = ad.read_h5ad(out)
    assert sp.issparse(copy.X) and copy.X.format == "csc"
    expected = ad.read_h5ad(PBMC)[::3, ["GENE9", "GENE1", "GENE500"]]
    np.testing.assert_array_equal(copy.X.toarray(), expected.X.toarray())
    assert_equal(copy.obs_names, expected.obs_names)
    assert_equal(copy.var_names, expected.var_names)


def test_a_server_names_its_datasets_as_it_lists_them():
    # A path alone is named by its stem (no extension), as `/datasets` lists it.
    with annpage.serve([PBMC], port=0, cache_mb=8) as server:
        listed = json.load(urllib.request.urlopen(server.url + "/datasets"))
        assert server.datasets == [d["name"] for d in listed] == [PBMC.stem]


def test_paths_with_commas_or_equals_are_served_as_given(tmp_path):
    import shutil
    import urllib.request

    odd = tmp_path / "a,b=c"
    odd.mkdir()
    shutil.copy(PBMC, odd / "data.h5ad")
    with annpage.serve({"mine": odd / "data.h5ad"}, port=0) as server:
        with urllib.request.urlopen(server.url + "/datasets") as r:
            assert json.loads(r.read())[0]["name"] == "mine"
    with pytest.raises(ValueError, match="a dataset name is"):
        annpage.serve({"a/b": PBMC}, port=0)
