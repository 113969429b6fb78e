//! Backed views of data frames in `obsm`/`varm` (built from the crate's test data; every other
//! backed-mode test is an integration test in `tests/it/`).

use super::*;
use crate::{read_h5ad, WriteOptions};
use annpage_engine::data::{Column, Element};

fn open(path: impl AsRef<Path>, budget: usize) -> BackedAnnData {
    let options = BackedOptions {
        cache_bytes: budget,
        ..BackedOptions::default()
    };
    read_h5ad_backed(path, Mode::Read, options).unwrap()
}

/// anndata: in a view, a data frame in `obsm`/`varm` keeps only the categories its rows use
/// (`b[[3, 1], [2, 0]].obsm['df']`, its `to_memory()` and the file it writes); the file's own
/// handle keeps every category, there and in `obs` (`b.obsm['df']`, `b.to_memory()`).
#[test]
fn aligned_data_frames_lose_unused_categories_in_views_only() {
    let a = crate::testdata::example_with_aligned_frames();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames.h5ad");
    a.write_h5ad(&path, &WriteOptions::default()).unwrap();
    let b = open(&path, 1 << 20);
    let whole = read_h5ad(&path).unwrap();
    assert_eq!(b.obsm("df").unwrap(), whole.obsm()["df"]);
    assert_eq!(b.obs().unwrap(), *whole.obs());
    assert_eq!(b.to_memory().unwrap(), whole);
    let Some(Column::Categorical(ct)) = whole.obs().column("ct") else {
        panic!("categorical ct expected")
    };
    assert_eq!(ct.categories.len(), 4);

    let (o, v) = (Selection::positions([3, 1]), Selection::positions([2, 0]));
    let want = whole.subset(&o, &v).unwrap();
    let Element::DataFrame(df) = &want.obsm()["df"] else {
        panic!("data frame expected")
    };
    let Some(Column::Categorical(ct)) = df.column("ct") else {
        panic!("categorical ct expected")
    };
    assert_eq!(ct.categories, ArrayData::from(vec!["B", "NK"]));
    let view = b.slice(&o, &v).unwrap();
    assert_eq!(view.obsm("df").unwrap(), want.obsm()["df"]);
    assert_eq!(view.varm("df").unwrap(), want.varm()["df"]);
    assert_eq!(view.to_memory().unwrap(), want);
    let out = dir.path().join("cut.h5ad");
    view.write_h5ad(&out, &WriteOptions::default()).unwrap();
    assert_eq!(read_h5ad(&out).unwrap(), want);
    // The whole file as a view, like `b[:, :]`, drops `'unused'` as well.
    let all = b.slice(&Selection::All, &Selection::All).unwrap();
    assert_eq!(
        all.to_memory().unwrap(),
        whole.subset(&Selection::All, &Selection::All).unwrap()
    );
    assert_ne!(all.to_memory().unwrap(), whole);
}

#[test]
fn readers_that_miss_at_once_load_a_column_once() {
    use annpage_engine::data::ArrayData;
    use annpage_engine::file::probe::FrameId;
    use std::sync::atomic::{AtomicU64, Ordering};
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/pbmc_like_csr.h5ad"
    );
    let b = crate::read_h5ad_backed(path, Mode::Read, Default::default()).unwrap();
    let loads = AtomicU64::new(0);
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                let key = (0, FrameId::Obs, Some("cold".to_owned()));
                let column = b.shared.cached(key, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    Ok(Column::Array(ArrayData::from(vec![1.0f64])))
                });
                assert_eq!(column.unwrap().len(), 1);
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}
