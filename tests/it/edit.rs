//! Changes through a read-write handle, written back on flush, and refused through read-only
//! handles and views.

use crate::support::*;
use annpage::Axis;

/// Every kind of change, applied through a ReadWrite handle and to the in-memory object: the
/// file read back equals the changed object, and anndata reads it.
#[test]
fn read_write_round_trip() {
    let (dir, path) = scratch("all_elements.h5ad");
    let mut expected = read_h5ad(&path).unwrap();
    let n_obs = expected.n_obs();
    let n_vars = expected.n_vars();
    let b = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();
    assert_eq!(b.mode(), Mode::ReadWrite);
    let before = b.obs().unwrap();

    let score = Column::Array(ArrayData::from(
        (0..n_obs).map(|i| i as f64 * 0.5).collect::<Vec<_>>(),
    ));
    let replaced = Column::Array(ArrayData::from(vec![7i64; n_obs]));
    let group = Column::Categorical(
        Categorical::new(
            (0..n_obs).map(|i| (i % 2) as i32).collect(),
            strings(&["a", "b"]),
            false,
        )
        .unwrap(),
    );
    let first_var_column = expected.var().columns().keys().next().unwrap().clone();
    let replaced_name = before.columns().keys().next().unwrap().clone();
    let pcs = Element::Array(ArrayData::from(Array2::from_shape_fn(
        (n_obs, 3),
        |(i, j)| (i * 3 + j) as f32,
    )));
    let layer = Matrix::Sparse(
        SparseMatrix::new(
            SparseFormat::Csr,
            (n_obs, n_vars),
            (0..=n_obs as u64).collect(),
            (0..n_obs as u32).map(|i| i % n_vars as u32).collect(),
            ArrayData::from(vec![1.5f32; n_obs]),
        )
        .unwrap(),
    );
    let old_layer = b.layer_names()[0].clone();
    let old_varm = b.varm_keys()[0].clone();
    let old_uns = b.uns_keys()[0].clone();

    b.insert_obs_column("score", score.clone()).unwrap();
    b.insert_obs_column(replaced_name.clone(), replaced.clone())
        .unwrap();
    b.insert_obs_column("group", group.clone()).unwrap();
    b.remove_var_column(&first_var_column).unwrap();
    b.insert_uns("note", Element::Scalar(Scalar::String("hello".into())))
        .unwrap();
    b.remove_uns(&old_uns).unwrap();
    b.insert_obsm("X_new", pcs.clone()).unwrap();
    b.insert_obsm("vector", Element::Array(ArrayData::from(vec![1u8; n_obs])))
        .unwrap();
    b.remove_varm(&old_varm).unwrap();
    b.insert_layer("fresh", layer.clone()).unwrap();
    b.remove_layer(&old_layer).unwrap();
    assert!(b.has_pending_changes());

    expected.obs_mut().insert("score", score).unwrap();
    expected
        .obs_mut()
        .insert(replaced_name.clone(), replaced.clone())
        .unwrap();
    expected.obs_mut().insert("group", group).unwrap();
    expected.var_mut().remove(&first_var_column);
    expected.uns_mut().insert(
        "note".into(),
        Element::Scalar(Scalar::String("hello".into())),
    );
    expected.uns_mut().shift_remove(&old_uns);
    expected.insert_obsm("X_new", pcs).unwrap();
    expected
        .insert_obsm("vector", Element::Array(ArrayData::from(vec![1u8; n_obs])))
        .unwrap();
    expected.remove_varm(&old_varm);
    expected.insert_layer("fresh", layer).unwrap();
    expected.remove_layer(&old_layer);

    // Pending changes are visible before the flush, through clones and views.
    let clone = b.clone();
    assert_eq!(clone.obs().unwrap().column(&replaced_name), Some(&replaced));
    let view = clone
        .slice(&Selection::from(0..4), &Selection::All)
        .unwrap();
    assert_eq!(view.layer("fresh").unwrap().shape(), (4, n_vars));
    assert_same(
        b.to_memory(),
        expected.subset(&Selection::All, &Selection::All),
        "pending",
    );
    // Views cannot change the file.
    assert!(view
        .insert_uns("x", Element::Scalar(Scalar::I64(1)))
        .is_err());
    // Bad values are refused.
    assert!(b
        .insert_obs_column("short", Column::Array(ArrayData::from(vec![1i8])))
        .is_err());
    assert!(b
        .insert_layer(
            "bad",
            Matrix::Dense(ArrayData::from(Array2::<f32>::zeros((2, 2))))
        )
        .is_err());
    assert!(b
        .insert_uns("a/b", Element::Scalar(Scalar::I64(1)))
        .is_err());
    assert!(b.remove_layer("no_such_layer").is_err());
    assert!(b.remove_obs_column("no_such_column").is_err());

    b.flush().unwrap();
    assert!(!b.has_pending_changes());
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["data.h5ad"]);
    // The handle now reads the new file; a fresh read gives the changed object.
    let back = read_h5ad(&path).unwrap();
    assert_elements_eq(
        back.clone().into_elements(),
        expected.clone().into_elements(),
        "after flush",
    );
    assert_eq!(b.obs().unwrap(), back.obs().clone());
    assert_eq!(
        b.layer("fresh").unwrap().to_memory().unwrap(),
        back.layers()["fresh"]
    );
    assert_eq!(b.uns().unwrap(), back.uns().clone());

    // A change then dropping the last handle writes it back.
    b.remove_obs_column("score").unwrap();
    drop(clone);
    drop(view);
    drop(b);
    let again = read_h5ad(&path).unwrap();
    assert!(again.obs().column("score").is_none());
    assert!(again.obs().column("group").is_some());

    // The real anndata reads the result.
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if python.exists() {
        let out = std::process::Command::new(python)
            .arg("-c")
            .arg("import sys, anndata as ad; a = ad.read_h5ad(sys.argv[1]); assert 'fresh' in a.layers and a.obsm['vector'].shape[1] == 1 and a.uns['note'] == 'hello' and list(a.obs['group'].cat.categories) == ['a', 'b'], a")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A read-only handle takes changes in memory, as anndata's backed "r" mode: its views,
/// `to_memory` and writes see them; flushing them is refused and the file never changes.
#[test]
fn read_mode_keeps_changes_in_memory() {
    let (_dir, path) = scratch("all_elements.h5ad");
    let b = open(&path, 1 << 20);
    let n = b.n_obs();
    b.insert_obs_column("x", Column::Array(ArrayData::from(vec![7i64; n])))
        .unwrap();
    b.insert_uns("note", Element::Scalar(Scalar::I64(1)))
        .unwrap();
    b.remove_obsm("X_pca").unwrap();
    b.remove_layer("counts").unwrap();
    assert!(b.has_pending_changes());
    let view = b.slice(&Selection::from(0..2), &Selection::All).unwrap();
    let small = view.to_memory().unwrap();
    assert_eq!(
        small.obs().column("x"),
        Some(&Column::Array(ArrayData::from(vec![7i64; 2])))
    );
    assert!(small.uns().contains_key("note") && !small.obsm().contains_key("X_pca"));
    assert!(!small.layers().contains_key("counts"));
    let e = b.flush().unwrap_err();
    assert!(e.to_string().contains("read-only"), "{e}");
    let e = view
        .insert_uns("y", Element::Scalar(Scalar::I64(1)))
        .unwrap_err();
    assert!(e.to_string().contains("this is a view"), "{e}");
    drop(view);
    drop(b);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(fixture("all_elements.h5ad")).unwrap()
    );
}

/// A whole new `obs` (renamed, columns reordered and dropped) and `var`, and pairwise matrices,
/// through a ReadWrite handle: data frames in `obsm` take the new names, as in anndata; the
/// file read back equals the in-memory object given the same changes.
#[test]
fn replacing_frames_and_pairwise_matrices() {
    let (_dir, path) = scratch("all_elements.h5ad");
    let mut expected = read_h5ad(&path).unwrap();
    let (n_obs, n_vars) = (expected.n_obs(), expected.n_vars());
    let b = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();

    let old = b.obs().unwrap();
    let names: Vec<String> = (0..n_obs).map(|i| format!("cell-{i}")).collect();
    let mut obs = DataFrame::with_index(ArrayData::from(names.clone())).unwrap();
    for (name, column) in old.columns().iter().rev().skip(1) {
        obs.insert(name.clone(), column.clone()).unwrap();
    }
    // The index alone (names kept): nothing else changes.
    let mut var = DataFrame::with_index(b.var().unwrap().index().clone()).unwrap();
    var.set_index_name(Some("gene".into()));
    let graph = Matrix::Sparse(
        SparseMatrix::new(
            SparseFormat::Csr,
            (n_obs, n_obs),
            (0..=n_obs as u64).collect(),
            (0..n_obs as u32).rev().collect(),
            ArrayData::from(vec![0.5f32; n_obs]),
        )
        .unwrap(),
    );
    let genes = Matrix::Dense(ArrayData::from(Array2::<f64>::eye(n_vars)));

    b.set_obs(obs.clone()).unwrap();
    b.set_var(var.clone()).unwrap();
    b.insert_obsp("knn", graph.clone()).unwrap();
    b.remove_obsp("distances").unwrap();
    b.insert_varp("identity", genes.clone()).unwrap();
    assert_eq!(b.obs().unwrap(), obs);
    assert_eq!(*b.names(Axis::Obs).unwrap(), names[..]);
    let renamed = b.obsm("annotations").unwrap();
    let Element::DataFrame(renamed) = renamed else {
        panic!("obsm['annotations'] is {renamed:?}")
    };
    assert_eq!(renamed.index_names().unwrap(), &names[..]);
    // Refused: the wrong number of rows, non-square pairwise matrices, unknown keys.
    let short = DataFrame::with_index(strings(&["a"])).unwrap();
    let e = b.set_obs(short).unwrap_err().to_string();
    assert!(e.contains("a new obs has 1 rows, the file has"), "{e}");
    assert!(b.insert_obsp("bad", genes.clone()).is_err());
    assert!(b.remove_varp("no_such_key").is_err());

    expected.set_obs(obs).unwrap();
    expected.set_var(var).unwrap();
    expected.insert_obsp("knn", graph).unwrap();
    expected.remove_obsp("distances");
    expected.insert_varp("identity", genes).unwrap();
    b.flush().unwrap();
    assert_elements_eq(
        read_h5ad(&path).unwrap().into_elements(),
        expected.into_elements(),
        "after flush",
    );
    // Selecting by the new names works through the flushed file.
    let wanted = Selection::Names(vec!["cell-3".into(), "cell-1".into()]);
    let picked = b.slice(&wanted, &Selection::All).unwrap();
    assert_eq!(*picked.names(Axis::Obs).unwrap(), ["cell-3", "cell-1"]);
}

/// Discarded changes are neither seen nor written on drop.
#[test]
fn discarded_changes_are_forgotten() {
    let (_dir, path) = scratch("all_elements.h5ad");
    let bytes = std::fs::read(&path).unwrap();
    let b = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();
    let before = b.obs().unwrap();
    let n = b.n_obs();
    b.insert_obs_column("gone", Column::Array(ArrayData::from(vec![1i64; n])))
        .unwrap();
    b.remove_layer(&b.layer_names()[0]).unwrap();
    assert!(b.has_pending_changes());
    b.discard_changes().unwrap();
    assert!(!b.has_pending_changes());
    assert_eq!(b.obs().unwrap(), before);
    assert_eq!(
        b.layer_names().len(),
        read_h5ad(&path).unwrap().layers().len()
    );
    drop(b);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn columns_a_file_could_not_hold_are_refused_before_anything_changes() {
    let (_dir, path) = scratch("all_elements.h5ad");
    let bytes = std::fs::read(&path).unwrap();
    let b = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();
    let n = b.n_obs();
    let codes = (0..n as i32).map(|i| i % 3).collect();
    let bad = annpage::data::Categorical {
        codes,
        categories: ArrayData::from(vec!["a", "b"]),
        ordered: false,
    };
    let e = b
        .insert_obs_column("ct", Column::Categorical(bad))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("column 'ct': categorical code 2 out of range for 2 categories"),
        "{e}"
    );
    let wide = ArrayData::zeros(annpage::data::DType::F32, &[n, 2]);
    assert!(b.insert_obs_column("wide", Column::Array(wide)).is_err());
    assert!(!b.has_pending_changes());
    drop(b);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn a_flush_refuses_a_file_another_writer_replaced() {
    let (_dir, path) = scratch("all_elements.h5ad");
    let open = || read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();
    let (a, b) = (open(), open());
    let n = a.n_obs();
    a.insert_obs_column("from_a", Column::Array(ArrayData::from(vec![1i64; n])))
        .unwrap();
    b.insert_obs_column("from_b", Column::Array(ArrayData::from(vec![2i64; n])))
        .unwrap();
    a.flush().unwrap();
    // b's flush would copy the file as b opened it, over a's: it is refused.
    let e = b.flush().unwrap_err();
    assert!(
        e.to_string()
            .contains("the file changed since this handle opened it"),
        "{e}"
    );
    assert!(b.has_pending_changes());
    b.discard_changes().unwrap();
    drop(b);
    // a goes on flushing the file it wrote.
    a.insert_obs_column("again", Column::Array(ArrayData::from(vec![3i64; n])))
        .unwrap();
    a.flush().unwrap();
    drop(a);
    let obs = read_h5ad(&path).unwrap().obs().clone();
    assert!(obs.column("from_a").is_some() && obs.column("again").is_some());
    assert!(obs.column("from_b").is_none());
}

#[test]
fn a_flush_refuses_a_file_moved_away_instead_of_writing_a_new_one() {
    let (dir, path) = scratch("all_elements.h5ad");
    let b = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();
    let n = b.n_obs();
    b.insert_obs_column("x", Column::Array(ArrayData::from(vec![1i64; n])))
        .unwrap();
    let moved = dir.path().join("moved.h5ad");
    std::fs::rename(&path, &moved).unwrap();
    let e = b.flush().unwrap_err();
    assert!(
        e.to_string()
            .contains("the file is gone (moved or deleted)"),
        "{e}"
    );
    b.discard_changes().unwrap();
    drop(b);
    assert!(!path.exists());
    assert!(read_h5ad(&moved).unwrap().obs().column("x").is_none());
}

/// `flush_with` hands the new file, complete and closed, to its step before the rename: what
/// the step adds is in the file the handle reads next; a failing step leaves the old file, the
/// changes pending and no temporary behind.
#[test]
fn a_flush_runs_its_finishing_step_on_the_new_file_before_the_rename() {
    let (dir, path) = scratch("all_elements.h5ad");
    let bytes = std::fs::read(&path).unwrap();
    let b = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap();
    let n = b.n_obs();
    b.insert_obs_column("x", Column::Array(ArrayData::from(vec![1i64; n])))
        .unwrap();
    let e = b
        .flush_with(|new| {
            assert_ne!(new, path.as_path());
            assert!(read_h5ad(new).unwrap().obs().column("x").is_some());
            Err(annpage::Error::invalid("the step failed"))
        })
        .unwrap_err();
    assert!(e.to_string().contains("the step failed"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(b.has_pending_changes());
    let names = |d: &std::path::Path| {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(dir.path()).len(), 1, "{:?}", names(dir.path()));
    // A step that adds a member: the handle reads the file with it.
    b.flush_with(|new| {
        let f = hdf5::File::open_rw(new).map_err(annpage::Error::from)?;
        f.new_dataset::<i32>()
            .shape(3)
            .create("added")
            .map_err(annpage::Error::from)?;
        Ok(())
    })
    .unwrap();
    assert!(!b.has_pending_changes());
    assert!(b.obs().unwrap().column("x").is_some());
    // Without pending changes the file is rewritten all the same: the step always runs.
    b.flush_with(|new| {
        let f = hdf5::File::open_rw(new).map_err(annpage::Error::from)?;
        f.new_dataset::<i32>()
            .shape(1)
            .create("added_too")
            .map_err(annpage::Error::from)?;
        Ok(())
    })
    .unwrap();
    drop(b);
    let f = hdf5::File::open(&path).unwrap();
    assert!(f.dataset("added").is_ok() && f.dataset("added_too").is_ok());
}
