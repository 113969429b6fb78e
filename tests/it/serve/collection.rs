//! A collection served as one dataset (`NAME=FILE,FILE`): every endpoint answers what the
//! files' concatenation in memory gives, read lazily or through `--index`'s copies.

use std::path::PathBuf;

use annpage::{concat, ConcatOptions, Join};
use annpage_server::DatasetSpec;

use super::index::wait_for_copy;
use super::{column_f32, get, request, serve, Running};
use crate::support::*;

/// all_elements cut in two uneven halves, as files in `dir`.
fn halves(dir: &std::path::Path) -> Vec<PathBuf> {
    let whole = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    [0..25, 25..40]
        .into_iter()
        .enumerate()
        .map(|(i, cells)| {
            let part = whole
                .subset(&Selection::from(cells), &Selection::All)
                .unwrap();
            let path = dir.join(format!("half{i}.h5ad"));
            part.write_h5ad(&path, &WriteOptions::default()).unwrap();
            path
        })
        .collect()
}

fn options() -> ConcatOptions {
    ConcatOptions {
        join: Join::Outer,
        label: Some("batch".into()),
        keys: Some(vec!["a".into(), "b".into()]),
        index_unique: Some("-".into()),
        ..Default::default()
    }
}

fn serve_collection(paths: &[PathBuf], index: Option<PathBuf>) -> Running {
    let spec = DatasetSpec {
        name: "atlas".into(),
        paths: paths.to_vec(),
        concat: Some(options()),
    };
    serve(&[], move |o| {
        o.datasets = vec![spec];
        o.index_dir = index;
        o.scratch_dir = Some(std::env::temp_dir());
    })
}

/// The answers of every endpoint against `expected`.
fn check_answers(server: &Running, expected: &AnnData) {
    let x = expected.x().unwrap();
    let atlas = get(server.addr, "/datasets/atlas").json();
    assert_eq!(atlas["shape"], serde_json::json!([40, 12]));
    assert_eq!(atlas["collection"].as_array().unwrap().len(), 2);

    let gene = get(server.addr, "/datasets/atlas/genes/gene_3").arrays();
    assert_eq!(gene[0].values::<f32>().unwrap(), column_f32(x, 3));
    let counts = expected.layers().get("counts").unwrap();
    let layer = get(
        server.addr,
        "/datasets/atlas/genes?names=gene_5,gene_0&layer=counts",
    )
    .arrays();
    let mut want = column_f32(counts, 5);
    want.extend(column_f32(counts, 0));
    assert_eq!(layer[0].values::<f32>().unwrap(), want);

    // Cells on both sides of the files' boundary, by position and by (unique) name.
    let block = get(
        server.addr,
        "/datasets/atlas/cells?positions=24,25,0,39&genes=gene_2,gene_9",
    )
    .arrays();
    let sub = expected
        .subset(
            &Selection::positions([24, 25, 0, 39]),
            &Selection::names(["gene_2", "gene_9"]),
        )
        .unwrap();
    let Matrix::Sparse(csr) = sub.x().unwrap().to_sparse(SparseFormat::Csr).unwrap() else {
        unreachable!()
    };
    let by: IndexMap<_, _> = block.iter().map(|a| (a.name.as_str(), a)).collect();
    assert_eq!(by["indptr"].values::<u64>().unwrap(), csr.indptr());
    assert_eq!(by["indices"].values::<u32>().unwrap(), csr.indices());
    let names = &expected.obs_names()[24..26];
    let by_name = get(
        server.addr,
        &format!("/datasets/atlas/cells?names={},{}", names[0], names[1]),
    )
    .arrays();
    assert_eq!(by_name[3].values::<u64>().unwrap(), [2, 12]);

    // obs: the names made unique and the label column.
    let obs = get(server.addr, "/datasets/atlas/obs?columns=batch").json();
    assert_eq!(obs["index"], serde_json::json!(expected.obs_names()));
    let Some(Column::Categorical(batch)) = expected.obs().column("batch") else {
        panic!("batch is categorical")
    };
    assert_eq!(obs["columns"][0]["codes"], serde_json::json!(batch.codes));
    assert_eq!(
        obs["columns"][0]["categories"],
        serde_json::json!(["a", "b"])
    );

    let emb = get(
        server.addr,
        "/datasets/atlas/obsm/X_pca?max_points=10&dims=1",
    )
    .arrays();
    let Element::Array(pca) = &expected.obsm()["X_pca"] else {
        panic!("X_pca is an array")
    };
    let pca = pca
        .to_f64()
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let want: Vec<f32> = (0..40).step_by(4).map(|i| pca[[i, 1]] as f32).collect();
    assert_eq!(emb[0].values::<f32>().unwrap(), want);

    let body =
        serde_json::json!({ "obs_query": "n_counts > 12", "var_names": ["gene_9", "gene_1"] });
    let reply = request(
        server.addr,
        "POST",
        "/datasets/atlas/subset",
        body.to_string().as_bytes(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("download.h5ad");
    std::fs::write(&out, &reply.body).unwrap();
    let mask = "n_counts > 12"
        .parse::<annpage::query::Query>()
        .unwrap()
        .mask(expected.obs())
        .unwrap();
    let want = expected
        .subset(
            &Selection::Mask(mask),
            &Selection::names(["gene_9", "gene_1"]),
        )
        .unwrap();
    // A CSC layer's rows come back with sorted indices, where a subset in memory keeps the
    // order of the genes asked for: equal matrices (as anndata compares them), other layouts.
    assert_elements_eq(
        sorted(read_h5ad(&out).unwrap()).into_elements(),
        sorted(want).into_elements(),
        "the subset download",
    );
}

/// `a` with the indices of its sparse X and layers sorted within each row or column.
fn sorted(a: AnnData) -> AnnData {
    let mut e = a.into_elements();
    let sort = |m: &mut Matrix| {
        if let Matrix::Sparse(s) = m {
            let format = s.format();
            let other = match format {
                SparseFormat::Csr => SparseFormat::Csc,
                SparseFormat::Csc => SparseFormat::Csr,
            };
            // Converting twice rebuilds each row (column) in order.
            let there = Matrix::Sparse(s.clone()).to_sparse(other).unwrap();
            *m = there.to_sparse(format).unwrap();
        }
    };
    e.x.iter_mut().for_each(sort);
    e.layers.values_mut().for_each(sort);
    AnnData::from_elements(e).unwrap()
}

#[test]
fn a_collection_answers_what_its_concatenation_gives() {
    let dir = tempfile::tempdir().unwrap();
    let paths = halves(dir.path());
    let parts: Vec<AnnData> = paths.iter().map(|p| read_h5ad(p).unwrap()).collect();
    let mut expected = concat(&parts, &options()).unwrap();
    // A collection leaves raw out, as anndata's AnnCollection does.
    expected.set_raw(None).unwrap();
    let server = serve_collection(&paths, None);
    check_answers(&server, &expected);
}

#[test]
fn a_collection_is_read_through_its_concatenated_copies_once_written() {
    let dir = tempfile::tempdir().unwrap();
    let paths = halves(dir.path());
    let parts: Vec<AnnData> = paths.iter().map(|p| read_h5ad(p).unwrap()).collect();
    let mut expected = concat(&parts, &options()).unwrap();
    expected.set_raw(None).unwrap();
    let index = dir.path().join("index");
    let server = serve_collection(&paths, Some(index.clone()));
    wait_for_copy(server.addr, "atlas", "plain");
    wait_for_copy(server.addr, "atlas", "genes");
    assert_eq!(read_h5ad(index.join("atlas.plain.h5ad")).unwrap(), expected);
    check_answers(&server, &expected);
    drop(server);
    // A second server finds both copies fresh and writes nothing.
    let before = std::fs::metadata(index.join("atlas.genes.h5ad"))
        .unwrap()
        .modified()
        .unwrap();
    let server = serve_collection(&paths, Some(index.clone()));
    let atlas = get(server.addr, "/datasets/atlas").json();
    assert_eq!(
        atlas["index"],
        serde_json::json!({"genes": true, "plain": true})
    );
    let after = std::fs::metadata(index.join("atlas.genes.h5ad"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after);
    drop(server);
    // The same files in the other order make another concatenation: copied again.
    let reversed: Vec<PathBuf> = paths.iter().rev().cloned().collect();
    let parts: Vec<AnnData> = reversed.iter().map(|p| read_h5ad(p).unwrap()).collect();
    let mut expected = concat(&parts, &options()).unwrap();
    expected.set_raw(None).unwrap();
    let server = serve_collection(&reversed, Some(index.clone()));
    wait_for_copy(server.addr, "atlas", "plain");
    assert_eq!(read_h5ad(index.join("atlas.plain.h5ad")).unwrap(), expected);
}
