//! `--index`: the uncompressed and gene-major copies a server writes once and reads through.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{column_f32, get, serve};
use crate::support::*;

/// Whether `copy` ("genes" or "plain") of `--index` is ready for dataset `d`.
fn copy_ready(addr: SocketAddr, d: &str, copy: &str) -> bool {
    get(addr, &format!("/datasets/{d}")).json()["index"][copy] == true
}

pub(super) fn wait_for_copy(addr: SocketAddr, d: &str, copy: &str) {
    let start = Instant::now();
    while !copy_ready(addr, d, copy) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{d}'s {copy} copy was never ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn genes_are_read_from_the_gene_major_copy_once_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let server = serve(&["pbmc_like_csr.h5ad", "csc=x_csc_f64.h5ad"], |o| {
        o.index_dir = Some(index.clone());
    });
    wait_for_copy(server.addr, "pbmc_like_csr", "genes");
    // A CSC X is gene-major already, and an uncompressed file needs no plain copy.
    assert!(!copy_ready(server.addr, "csc", "genes"));
    assert!(!copy_ready(server.addr, "pbmc_like_csr", "plain"));
    let files: BTreeSet<_> = std::fs::read_dir(&index)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files,
        BTreeSet::from([
            "pbmc_like_csr.genes.h5ad".into(),
            "pbmc_like_csr.genes.h5ad.source".into()
        ])
    );
    let memory = read_h5ad(fixture("pbmc_like_csr.h5ad")).unwrap();
    let x = memory.x().unwrap();
    let bytes_read = |addr| {
        get(addr, "/metrics?format=json").json()["cache"]["bytes_read"]
            .as_u64()
            .unwrap()
    };
    let before = bytes_read(server.addr);
    for g in [0, 17, 999] {
        let got = get(server.addr, &format!("/datasets/pbmc_like_csr/genes/{g}")).arrays();
        assert_eq!(
            got[0].values::<f32>().unwrap(),
            column_f32(x, g),
            "gene {g}"
        );
    }
    // Three genes read from the copy: their values, not the matrix (X holds 800 KB).
    let read = bytes_read(server.addr) - before;
    assert!(read < 40_000, "{read} bytes read for three genes");
    drop(server);
    // A second server finds the copy written and uses it at once.
    let copy = index.join("pbmc_like_csr.genes.h5ad");
    let modified = std::fs::metadata(&copy).unwrap().modified().unwrap();
    let again = serve(&["pbmc_like_csr.h5ad"], |o| {
        o.index_dir = Some(index.clone())
    });
    assert!(copy_ready(again.addr, "pbmc_like_csr", "genes"));
    assert_eq!(
        std::fs::metadata(&copy).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn the_copy_of_a_replaced_file_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (index, data) = (dir.path().join("index"), dir.path().join("data.h5ad"));
    std::fs::copy(fixture("pbmc_like_csr.h5ad"), &data).unwrap();
    let before = read_h5ad(&data).unwrap();
    // Replaced by a file of the same name and shape, with a time stamp older than the copy's
    // (as `cp -p` leaves it).
    copy_follows_rewrite(&data, &index, &before, |reversed| {
        reversed
            .write_h5ad(&data, &WriteOptions::default())
            .unwrap();
        let day_ago = std::time::SystemTime::now() - Duration::from_secs(86_400);
        std::fs::File::options()
            .write(true)
            .open(&data)
            .unwrap()
            .set_modified(day_ago)
            .unwrap();
    });
}

/// Serves `data` (as dataset `data`) with `--index` until its gene-major copy is written,
/// then lets `rewrite` write `before` with its cells in reverse order in its place, and checks
/// that a new server answers from the new contents, both before and after its copy is made
/// again.
fn copy_follows_rewrite(
    data: &std::path::Path,
    index: &std::path::Path,
    before: &AnnData,
    rewrite: impl FnOnce(&AnnData),
) {
    let start = || {
        serve(&[], |o| {
            o.datasets = vec![data.to_str().unwrap().parse().unwrap()];
            o.index_dir = Some(index.to_path_buf());
        })
    };
    let server = start();
    wait_for_copy(server.addr, "data", "genes");
    drop(server);
    let n = before.n_obs();
    let reversed = before
        .subset(&Selection::positions((0..n).rev()), &Selection::All)
        .unwrap();
    rewrite(&reversed);
    let want = column_f32(reversed.x().unwrap(), 17);
    assert_ne!(want, column_f32(before.x().unwrap(), 17));
    let again = start();
    let gene = |addr| {
        get(addr, "/datasets/data/genes/17").arrays()[0]
            .values::<f32>()
            .unwrap()
    };
    assert_eq!(gene(again.addr), want, "answered by the copy made before");
    wait_for_copy(again.addr, "data", "genes");
    assert_eq!(gene(again.addr), want, "answered by a stale copy");
}

#[test]
fn a_compressed_file_is_read_through_its_uncompressed_copy() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    let server = serve(&["all=all_elements_gzip.h5ad"], |o| {
        o.index_dir = Some(index.clone())
    });
    wait_for_copy(server.addr, "all", "plain");
    wait_for_copy(server.addr, "all", "genes");
    // The plain copy holds what the file holds, without compression.
    let copy = index.join("all.plain.h5ad");
    let file = read_h5ad(fixture("all_elements_gzip.h5ad")).unwrap();
    assert_eq!(read_h5ad(&copy).unwrap(), file);
    let filters = |path: &Path| {
        let tree = describe(path).unwrap();
        let x = tree.children.iter().find(|c| c.path == "/X").unwrap();
        serde_json::to_value(&x.storage).unwrap()["filters"].clone()
    };
    assert_eq!(
        filters(&fixture("all_elements_gzip.h5ad")),
        serde_json::json!(["gzip(4)"])
    );
    assert_eq!(filters(&copy), serde_json::json!([]));
    // Reads answer the same through it: cells, a gene, obs.
    let block = get(
        server.addr,
        "/datasets/all/cells?positions=3,1&genes=gene_2,gene_5",
    )
    .arrays();
    let sub = file
        .subset(
            &Selection::positions([3, 1]),
            &Selection::names(["gene_2", "gene_5"]),
        )
        .unwrap();
    let Matrix::Sparse(csr) = sub.x().unwrap().to_sparse(SparseFormat::Csr).unwrap() else {
        unreachable!()
    };
    assert_eq!(block[2].values::<u64>().unwrap(), csr.indptr());
    let gene = get(server.addr, "/datasets/all/genes/gene_4").arrays();
    assert_eq!(
        gene[0].values::<f32>().unwrap(),
        column_f32(file.x().unwrap(), 4)
    );
    let obs = get(server.addr, "/datasets/all/obs?columns=").json();
    assert_eq!(obs["index"], serde_json::json!(file.obs_names()));
}

#[test]
fn a_zarr_store_is_served_like_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("pbmc.zarr");
    let memory = read_h5ad(fixture("pbmc_like_csr.h5ad")).unwrap();
    memory.write_zarr(&store, &WriteOptions::default()).unwrap();
    let server = serve(&[], |o| {
        o.datasets = vec![store.to_str().unwrap().parse().unwrap()];
        o.index_dir = Some(dir.path().join("index"));
    });
    // Named by the store's stem; read through the store until its copies are ready.
    let listed = get(server.addr, "/datasets").json();
    assert_eq!(listed[0]["name"], "pbmc");
    let gene = get(server.addr, "/datasets/pbmc/genes/GENE12").arrays();
    assert_eq!(
        gene[0].values::<f32>().unwrap(),
        column_f32(memory.x().unwrap(), 12)
    );
    wait_for_copy(server.addr, "pbmc", "plain");
    wait_for_copy(server.addr, "pbmc", "genes");
    let again = get(server.addr, "/datasets/pbmc/genes/GENE12").arrays();
    assert_eq!(again, gene);
    let emb = get(server.addr, "/datasets/pbmc/obsm/X_umap?max_points=100").arrays();
    assert_eq!(emb[0].shape, [100, 2]);
}

/// Copies every file under `from` over the file of the same path under `to`.
fn copy_tree_over(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree_over(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_copy_of_a_zarr_store_rewritten_in_place_is_not_reused() {
    rewritten_in_place(false);
}

#[test]
fn the_copy_of_a_zarr_store_rewritten_through_a_linked_directory_is_not_reused() {
    rewritten_in_place(true);
}

/// A Zarr store served with `--index`, then its files written over in place (with
/// `link_x`, its `X` a link to a directory outside the store): the copy is made again.
fn rewritten_in_place(link_x: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (index, store) = (dir.path().join("index"), dir.path().join("data.zarr"));
    let before = read_h5ad(fixture("pbmc_like_csr.h5ad")).unwrap();
    before.write_zarr(&store, &WriteOptions::default()).unwrap();
    if link_x {
        let outside = dir.path().join("X-elsewhere");
        std::fs::rename(store.join("X"), &outside).unwrap();
        std::os::unix::fs::symlink(&outside, store.join("X")).unwrap();
    }
    // The reversed store's files written over the served store's (same names, same shapes):
    // the store's root directory is left as it was.
    copy_follows_rewrite(&store, &index, &before, |reversed| {
        let other = dir.path().join("reversed.zarr");
        reversed
            .write_zarr(&other, &WriteOptions::default())
            .unwrap();
        let root = std::fs::metadata(&store).unwrap().modified().unwrap();
        if link_x {
            // Only what lies under the link changes.
            copy_tree_over(&other.join("X"), &store.join("X"));
        } else {
            copy_tree_over(&other, &store);
        }
        std::fs::File::open(&store)
            .unwrap()
            .set_modified(root)
            .unwrap();
    });
}
