//! Reading .h5ad files into memory: current and legacy layouts written by anndata; files edited
//! from a current one (malformed, broken, odd but valid) in `edited.rs`.

use super::*;
use crate::data::Column;
use crate::file::read_h5ad;
use crate::testutil::py_file;
use ndarray::{ArrayD, IxDyn};

const PRELUDE: &str = "import anndata as ad, pandas as pd, scipy.sparse as sp\n";

fn anndata_file(script: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    py_file("t.h5ad", &format!("{PRELUDE}{script}"))
}

fn strings(a: &ArrayData) -> Vec<String> {
    let s = a.as_strings().expect("a 1-d string array");
    s.iter().map(|v| v.to_string()).collect()
}

fn col<'a>(df: &'a DataFrame, name: &str) -> &'a Column {
    df.column(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

#[test]
fn reads_a_current_anndata_file() {
    let (_d, path) = anndata_file(
            "obs = pd.DataFrame({\n\
             \x20   'cell_type': pd.Categorical(['B', 'T', 'B', None], categories=['T', 'B']),\n\
             \x20   'n_genes': np.array([10, 20, 30, 40], dtype='i8'),\n\
             \x20   'score': np.array([0.5, np.nan, 1.5, -2.0], dtype='f4'),\n\
             \x20   'ok': np.array([True, False, True, True]),\n\
             \x20   'maybe': pd.array([1, None, 3, 4], dtype='Int32'),\n\
             \x20   'flag': pd.array([True, None, False, True], dtype='boolean'),\n\
             \x20   'batch': ['b1', 'b2', 'b3', 'b4'],\n\
             }, index=pd.Index(['c1', 'c2', 'c3', 'cé'], name='cell'))\n\
             var = pd.DataFrame(index=['g1', 'g2', 'g3'])\n\
             X = np.arange(12, dtype='f4').reshape(4, 3)\n\
             a = ad.AnnData(X=X, obs=obs, var=var)\n\
             a.obsm['X_pca'] = np.arange(8, dtype='f8').reshape(4, 2)\n\
             a.obsm['frame'] = pd.DataFrame({'u': [1, 2, 3, 4]}, index=obs.index)\n\
             a.varm['PCs'] = sp.csr_matrix(np.eye(3, dtype='f4'))\n\
             a.obsp['conn'] = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 2], [0, 0, 2, 0]], dtype='f8'))\n\
             a.layers['counts'] = sp.csc_matrix(X.astype('i4'))\n\
             a.uns['title'] = 'héllo'\n\
             a.uns['n'] = 7\n\
             a.uns['pi'] = 3.5\n\
             a.uns['yes'] = True\n\
             a.uns['names'] = np.array(['a', 'b'])\n\
             a.uns['grid'] = np.arange(6, dtype='u2').reshape(2, 3)\n\
             a.uns['nested'] = {'inner': {'k': 1}, 'empty': {}}\n\
             a.uns['rec'] = np.array([(1, 'x'), (2, 'y')], dtype=[('a', 'i4'), ('b', 'O')])\n\
             a.raw = a[:, :2].copy()\n\
             a.write_h5ad(path)\n",
        );
    let ad = read_h5ad(&path).unwrap();
    let Some(Matrix::Dense(ArrayData::F32(x))) = &ad.x else {
        panic!("X should be dense float32: {:?}", ad.x)
    };
    assert_eq!(x.shape(), &[4, 3]);
    assert_eq!(x[[3, 2]], 11.0);

    let obs = &ad.obs;
    assert_eq!(strings(obs.index()), ["c1", "c2", "c3", "cé"]);
    assert_eq!(obs.index_name(), Some("cell"));
    let names: Vec<&String> = obs.columns().keys().collect();
    assert_eq!(
        names,
        [
            "cell_type",
            "n_genes",
            "score",
            "ok",
            "maybe",
            "flag",
            "batch"
        ]
    );
    let Column::Categorical(ct) = col(obs, "cell_type") else {
        panic!("cell_type should be categorical")
    };
    assert_eq!(ct.codes, [1, 0, 1, -1]);
    assert_eq!(strings(&ct.categories), ["T", "B"]);
    assert!(!ct.ordered);
    assert_eq!(
        col(obs, "n_genes"),
        &Column::Array(ArrayData::from(vec![10i64, 20, 30, 40]))
    );
    let Column::Array(ArrayData::F32(score)) = col(obs, "score") else {
        panic!("score should be float32")
    };
    assert!(score[1].is_nan());
    assert_eq!((score[0], score[3]), (0.5, -2.0));
    assert_eq!(
        col(obs, "ok"),
        &Column::Array(ArrayData::from(vec![true, false, true, true]))
    );
    let Column::Nullable(maybe) = col(obs, "maybe") else {
        panic!("maybe should be nullable")
    };
    assert_eq!(maybe.kind(), NullableKind::Integer);
    assert_eq!(maybe.values().dtype(), DType::I32);
    assert_eq!(maybe.mask(), [false, true, false, false]);
    let Column::Nullable(flag) = col(obs, "flag") else {
        panic!("flag should be nullable")
    };
    assert_eq!(flag.kind(), NullableKind::Boolean);
    assert_eq!(flag.mask(), [false, true, false, false]);
    // All distinct, so anndata keeps it a string array (not a categorical).
    assert_eq!(
        col(obs, "batch"),
        &Column::Array(ArrayData::from(vec!["b1", "b2", "b3", "b4"]))
    );

    assert_eq!(strings(ad.var.index()), ["g1", "g2", "g3"]);
    assert_eq!(ad.var.index_name(), None);
    assert!(ad.var.columns().is_empty());

    assert_eq!(
        ad.obsm.get("X_pca"),
        Some(&Element::Array(ArrayData::from(
            ArrayD::from_shape_vec(IxDyn(&[4, 2]), (0..8).map(f64::from).collect()).unwrap()
        )))
    );
    let Some(Element::DataFrame(frame)) = ad.obsm.get("frame") else {
        panic!("obsm['frame'] should be a data frame")
    };
    assert_eq!(strings(frame.index()), ["c1", "c2", "c3", "cé"]);
    let Some(Element::Sparse(pcs)) = ad.varm.get("PCs") else {
        panic!("varm['PCs'] should be sparse")
    };
    assert_eq!(
        (pcs.format(), pcs.shape(), pcs.nnz()),
        (SparseFormat::Csr, (3, 3), 3)
    );
    let Some(Matrix::Sparse(conn)) = ad.obsp.get("conn") else {
        panic!("obsp['conn'] should be sparse")
    };
    assert_eq!(conn.indptr(), [0, 1, 2, 3, 4]);
    assert_eq!(conn.indices(), [1, 0, 3, 2]);
    assert_eq!(conn.data(), &ArrayData::from(vec![1.0f64, 1.0, 2.0, 2.0]));
    let Some(Matrix::Sparse(counts)) = ad.layers.get("counts") else {
        panic!("layers['counts'] should be sparse")
    };
    assert_eq!(
        (counts.format(), counts.shape()),
        (SparseFormat::Csc, (4, 3))
    );
    assert_eq!(counts.data().dtype(), DType::I32);
    assert_eq!(counts.nnz(), 11);

    let uns = &ad.uns;
    assert_eq!(
        uns.get("title"),
        Some(&Element::Scalar(Scalar::String("héllo".into())))
    );
    assert_eq!(uns.get("n"), Some(&Element::Scalar(Scalar::I64(7))));
    assert_eq!(uns.get("pi"), Some(&Element::Scalar(Scalar::F64(3.5))));
    assert_eq!(uns.get("yes"), Some(&Element::Scalar(Scalar::Bool(true))));
    assert_eq!(
        uns.get("names"),
        Some(&Element::Array(ArrayData::from(vec!["a", "b"])))
    );
    let Some(Element::Array(ArrayData::U16(grid))) = uns.get("grid") else {
        panic!("uns['grid'] should be uint16")
    };
    assert_eq!((grid.shape(), grid[[1, 2]]), (&[2usize, 3][..], 5));
    let Some(Element::Dict(nested)) = uns.get("nested") else {
        panic!("uns['nested'] should be a dict")
    };
    assert_eq!(nested.get("empty"), Some(&Element::Dict(Mapping::new())));
    let Some(Element::Dict(inner)) = nested.get("inner") else {
        panic!("inner dict")
    };
    assert_eq!(inner.get("k"), Some(&Element::Scalar(Scalar::I64(1))));
    let Some(Element::Opaque(RawNode::Dataset { attrs, data })) = uns.get("rec") else {
        panic!("rec-array should be opaque")
    };
    assert_eq!(
        attrs.get("encoding-type"),
        Some(&ArrayData::String(ArrayD::from_elem(
            IxDyn(&[]),
            "rec-array".into()
        )))
    );
    let crate::data::RawData::Compound { shape, fields } = data else {
        panic!("rec-array data should be compound")
    };
    assert_eq!(shape, &[2]);
    assert_eq!(fields[0], ("a".to_string(), ArrayData::from(vec![1i32, 2])));
    assert_eq!(
        fields[1],
        ("b".to_string(), ArrayData::from(vec!["x", "y"]))
    );

    let raw = ad.raw.as_ref().expect("raw");
    assert_eq!(raw.x.shape(), (4, 2));
    assert_eq!(strings(raw.var.index()), ["g1", "g2"]);
    assert!(raw.varm.contains_key("PCs"));
}

/// An anndata 0.5-style file: compound obs/var/obsm/varm, categories in uns, root raw.*.
const LEGACY_05: &str = "import scipy.sparse as sp\n\
        with h5py.File(path, 'w') as f:\n\
        \x20   f['X'] = np.arange(12, dtype='f4').reshape(3, 4)\n\
        \x20   f['obs'] = np.array([(b'c1', 0, 1.5), (b'c2', 1, 2.5), (b'c3', 0, np.nan)],\n\
        \x20       dtype=[('index', 'S2'), ('louvain', 'i1'), ('n_genes', 'f8')])\n\
        \x20   f['var'] = np.array([(b'g1', 3), (b'g2', 1), (b'g3', 2), (b'g4', 0)],\n\
        \x20       dtype=[('index', 'S2'), ('louvain', 'i4')])\n\
        \x20   f['obsm'] = np.array([([1, 2], 7), ([3, 4], 8), ([5, 6], 9)],\n\
        \x20       dtype=[('X_pca', 'f4', (2,)), ('X_one', 'i8')])\n\
        \x20   f['varm'] = np.array([([1.0],), ([2.0],), ([3.0],), ([4.0],)], dtype=[('PCs', 'f8', (1,))])\n\
        \x20   u = f.create_group('uns')\n\
        \x20   u['louvain_categories'] = np.array([b'A', b'B'], dtype='S1')\n\
        \x20   u['single_categories'] = np.array([b'only'], dtype='S4')\n\
        \x20   u['title'] = np.array([b'hello'], dtype='S5')\n\
        \x20   u['n'] = np.int64(5)\n\
        \x20   u.create_group('neighbors')['params'] = np.array([b'umap'], dtype='S4')\n\
        \x20   u['neighbors']['distances'] = np.eye(3)\n\
        \x20   m = sp.csr_matrix(np.array([[0, 1, 0, 0, 2], [0, 0, 0, 3, 0], [4, 0, 0, 0, 0]], dtype='f4'))\n\
        \x20   g = f.create_group('raw.X')\n\
        \x20   g.attrs['h5sparse_format'] = 'csr'\n\
        \x20   g.attrs['h5sparse_shape'] = np.array(m.shape)\n\
        \x20   g['data'] = m.data; g['indices'] = m.indices; g['indptr'] = m.indptr\n\
        \x20   f['raw.var'] = np.array([(b'r%d' % i,) for i in range(5)], dtype=[('index', 'S2')])\n\
        \x20   f['raw.varm'] = np.array([(i,) for i in range(5)], dtype=[('V', 'f4')])\n";

#[test]
fn reads_pre_0_7_layouts_as_anndata_does() {
    let (_d, path) = py_file("legacy.h5ad", LEGACY_05);
    let ad = read_h5ad(&path).unwrap();
    assert!(matches!(&ad.x, Some(Matrix::Dense(ArrayData::F32(x))) if x.shape() == [3, 4]));
    // The first compound field is the index, named after the field (pandas' set_index).
    assert_eq!(strings(ad.obs.index()), ["c1", "c2", "c3"]);
    assert_eq!(ad.obs.index_name(), Some("index"));
    // uns['louvain_categories'] turned obs.louvain into a categorical and left uns ...
    let Column::Categorical(louvain) = col(&ad.obs, "louvain") else {
        panic!("obs.louvain should be categorical")
    };
    assert_eq!(louvain.codes, [0, 1, 0]);
    assert_eq!(strings(&louvain.categories), ["A", "B"]);
    assert!(!ad.uns.contains_key("louvain_categories"));
    // ... but not var.louvain, whose codes do not fit two categories.
    assert_eq!(
        col(&ad.var, "louvain"),
        &Column::Array(ArrayData::from(vec![3i32, 1, 2, 0]))
    );
    let Column::Array(ArrayData::F64(n_genes)) = col(&ad.obs, "n_genes") else {
        panic!("n_genes should be float64")
    };
    assert!(n_genes[2].is_nan());
    // Compound obsm: one entry per field, 1-d fields as one column.
    assert_eq!(
        ad.obsm.get("X_pca"),
        Some(&Element::Array(ArrayData::from(ndarray::array![
            [1f32, 2.],
            [3., 4.],
            [5., 6.]
        ])))
    );
    assert_eq!(
        ad.obsm.get("X_one"),
        Some(&Element::Array(ArrayData::from(ndarray::array![
            [7i64],
            [8],
            [9]
        ])))
    );
    assert_eq!(ad.varm.get("PCs").and_then(Element::nrows), Some(4));
    // One-element byte-string datasets are strings; unmatched categories stay in uns.
    assert_eq!(
        ad.uns.get("title"),
        Some(&Element::Scalar(Scalar::String("hello".into())))
    );
    assert_eq!(
        ad.uns.get("single_categories"),
        Some(&Element::Scalar(Scalar::String("only".into())))
    );
    assert_eq!(ad.uns.get("n"), Some(&Element::Scalar(Scalar::I64(5))));
    // uns['neighbors']['distances'] moved to obsp.
    let Some(Element::Dict(neighbors)) = ad.uns.get("neighbors") else {
        panic!("neighbors dict")
    };
    assert_eq!(neighbors.keys().collect::<Vec<_>>(), ["params"]);
    assert!(matches!(ad.obsp.get("distances"), Some(Matrix::Dense(a)) if a.shape() == [3, 3]));
    // Root-level raw.X / raw.var / raw.varm.
    let raw = ad.raw.as_ref().expect("legacy raw");
    let Matrix::Sparse(rx) = &raw.x else {
        panic!("raw.X should be sparse")
    };
    assert_eq!(
        (rx.format(), rx.shape(), rx.indices()),
        (SparseFormat::Csr, (3, 5), &[1u32, 4, 3, 0][..])
    );
    assert_eq!(strings(raw.var.index()), ["r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(raw.var.index_name(), Some("index"));
    assert_eq!(raw.varm.get("V").map(|v| v.nrows()), Some(Some(5)));
    assert!(matches!(raw.varm.get("V"), Some(Element::Array(a)) if a.shape() == [5, 1]));
}

#[test]
fn reads_0_7_frames_with_referenced_categories() {
    let (_d, path) = py_file(
            "v07.h5ad",
            "s = h5py.string_dtype()\n\
             import scipy.sparse as sp\n\
             with h5py.File(path, 'w') as f:\n\
             \x20   m = sp.csr_matrix(np.array([[0, 1, 0], [2, 0, 0]], dtype='f4'))\n\
             \x20   g = f.create_group('X')\n\
             \x20   g.attrs['encoding-type'] = 'csr_matrix'; g.attrs['encoding-version'] = '0.1.0'\n\
             \x20   g.attrs['shape'] = np.array(m.shape)\n\
             \x20   g['data'] = m.data; g['indices'] = m.indices.astype('u8'); g['indptr'] = m.indptr.astype('i8')\n\
             \x20   obs = f.create_group('obs')\n\
             \x20   obs.attrs['encoding-type'] = 'dataframe'; obs.attrs['encoding-version'] = '0.1.0'\n\
             \x20   obs.attrs['_index'] = '_index'\n\
             \x20   obs.attrs['column-order'] = np.array(['cat', 'n'], dtype=object)\n\
             \x20   obs.create_dataset('_index', data=np.array(['a', 'b'], dtype=object), dtype=s)\n\
             \x20   cats = obs.create_group('__categories')\n\
             \x20   cats.create_dataset('cat', data=np.array(['x', 'y', 'z'], dtype=object), dtype=s)\n\
             \x20   cats['cat'].attrs['ordered'] = True\n\
             \x20   obs['cat'] = np.array([2, 0], dtype='i1')\n\
             \x20   obs['cat'].attrs['categories'] = cats['cat'].ref\n\
             \x20   obs['n'] = np.array([1.5, 2.5])\n\
             \x20   var = f.create_group('var')\n\
             \x20   var.attrs['encoding-type'] = 'dataframe'; var.attrs['encoding-version'] = '0.1.0'\n\
             \x20   var.attrs['_index'] = 'gene_ids'\n\
             \x20   var.attrs['column-order'] = np.array([], dtype='f8')\n\
             \x20   var.create_dataset('gene_ids', data=np.array(['g1', 'g2', 'g3'], dtype=object), dtype=s)\n\
             \x20   f.create_group('obsm')['X_umap'] = np.ones((2, 2))\n\
             \x20   f.create_group('layers')\n\
             \x20   u = f.create_group('uns')\n\
             \x20   u.create_dataset('name', data='hello', dtype=s)\n\
             \x20   u['arr'] = np.arange(3)\n",
        );
    let ad = read_h5ad(&path).unwrap();
    let Some(Matrix::Sparse(x)) = &ad.x else {
        panic!("X should be sparse")
    };
    assert_eq!(
        (x.indptr(), x.indices()),
        (&[0u64, 1, 2][..], &[1u32, 0][..])
    );
    assert_eq!(strings(ad.obs.index()), ["a", "b"]);
    assert_eq!(ad.obs.index_name(), None);
    let Column::Categorical(cat) = col(&ad.obs, "cat") else {
        panic!("obs.cat should be categorical")
    };
    assert_eq!(cat.codes, [2, 0]);
    assert_eq!(strings(&cat.categories), ["x", "y", "z"]);
    assert!(cat.ordered);
    assert_eq!(
        col(&ad.obs, "n"),
        &Column::Array(ArrayData::from(vec![1.5f64, 2.5]))
    );
    assert_eq!(ad.obs.columns().len(), 2, "__categories is not a column");
    assert_eq!(strings(ad.var.index()), ["g1", "g2", "g3"]);
    assert_eq!(ad.var.index_name(), Some("gene_ids"));
    assert!(ad.var.columns().is_empty());
    assert!(ad.layers.is_empty());
    assert!(matches!(ad.obsm.get("X_umap"), Some(Element::Array(a)) if a.shape() == [2, 2]));
    assert_eq!(
        ad.uns.get("name"),
        Some(&Element::Scalar(Scalar::String("hello".into())))
    );
    assert_eq!(
        ad.uns.get("arr"),
        Some(&Element::Array(ArrayData::from(vec![0i64, 1, 2])))
    );
    assert!(ad.raw.is_none());
}

mod edited;
