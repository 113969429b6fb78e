//! A small object with every kind of element, built identically in the tests and in the
//! Python snippets their expected values come from.
//!
//! ```python
//! X = np.array([[0,1,0,2],[3,0,0,0],[0,0,4,5],[6,0,7,0],[0,8,0,9]], dtype=np.float32)
//! obs = pd.DataFrame({'ct': pd.Categorical(['T','B','T','NK','B'],
//!                                          categories=['B','NK','T','unused']),
//!                     'n': np.array([10,20,30,40,50])}, index=[f'c{i}' for i in range(5)])
//! var = pd.DataFrame({'kind': pd.Categorical(['a','b','a','c'])},
//!                    index=[f'g{i}' for i in range(4)])
//! a = ad.AnnData(sp.csr_matrix(X), obs=obs, var=var)
//! a.layers['dense'] = X.astype(np.float64) * 10
//! a.layers['csc'] = sp.csc_matrix(X)
//! a.obsm['X_pca'] = np.arange(10, dtype=np.float64).reshape(5, 2)
//! a.varm['PCs'] = np.arange(8, dtype=np.int32).reshape(4, 2)
//! a.obsp['distances'] = sp.csr_matrix(np.arange(25.).reshape(5, 5)
//!                                     * (np.arange(25).reshape(5, 5) % 3 == 0))
//! a.varp['corr'] = np.arange(16, dtype=np.float64).reshape(4, 4)
//! a.uns['ct_colors'] = np.array(['#b', '#nk', '#t', '#unused'])
//! a.uns['kind_colors'] = np.array(['red', 'green'])
//! a.uns['n_colors'] = np.array(['x'])
//! a.raw = ad.AnnData(sp.csr_matrix(np.arange(30, dtype=np.float32).reshape(5, 6)
//!                                  * (np.arange(30).reshape(5, 6) % 4 == 1)),
//!                    var=pd.DataFrame(index=[f'r{i}' for i in range(6)]))
//! ```

use annpage_engine::data::{
    ArrayData, Categorical, Column, DataFrame, Element, Mapping, Matrix, SparseFormat, SparseMatrix,
};
use annpage_engine::format::{AnnDataElements, RawElements};
use indexmap::IndexMap;
use ndarray::Array2;

use crate::AnnData;

/// `X` as a dense array (5 × 4).
pub(crate) const X: [[f32; 4]; 5] = [
    [0., 1., 0., 2.],
    [3., 0., 0., 0.],
    [0., 0., 4., 5.],
    [6., 0., 7., 0.],
    [0., 8., 0., 9.],
];

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn strings(v: &[&str]) -> ArrayData {
    ArrayData::from(v.to_vec())
}

pub(crate) fn sparse(
    format: SparseFormat,
    shape: (usize, usize),
    indptr: &[u64],
    indices: &[u32],
    data: ArrayData,
) -> SparseMatrix {
    SparseMatrix::new(format, shape, indptr.to_vec(), indices.to_vec(), data).unwrap()
}

/// The object described in the module docs.
pub(crate) fn example() -> AnnData {
    let mut obs = DataFrame::from_index(names("c", 5));
    let ct = Categorical::new(
        vec![2, 0, 2, 1, 0],
        strings(&["B", "NK", "T", "unused"]),
        false,
    )
    .unwrap();
    obs.insert("ct", Column::Categorical(ct)).unwrap();
    obs.insert(
        "n",
        Column::Array(ArrayData::from(vec![10i64, 20, 30, 40, 50])),
    )
    .unwrap();
    let mut var = DataFrame::from_index(names("g", 4));
    let kind = Categorical::new(vec![0, 1, 0, 2], strings(&["a", "b", "c"]), false).unwrap();
    var.insert("kind", Column::Categorical(kind)).unwrap();

    let x = sparse(
        SparseFormat::Csr,
        (5, 4),
        &[0, 2, 3, 5, 7, 9],
        &[1, 3, 0, 2, 3, 0, 2, 1, 3],
        ArrayData::from(vec![1f32, 2., 3., 4., 5., 6., 7., 8., 9.]),
    );
    let x_csc = sparse(
        SparseFormat::Csc,
        (5, 4),
        &[0, 2, 4, 6, 9],
        &[1, 3, 0, 4, 2, 3, 0, 2, 4],
        ArrayData::from(vec![3f32, 6., 1., 8., 4., 7., 2., 5., 9.]),
    );
    let dense = Array2::from_shape_fn((5, 4), |(i, j)| f64::from(X[i][j]) * 10.0);
    let mut layers = IndexMap::new();
    layers.insert("dense".to_string(), Matrix::Dense(ArrayData::from(dense)));
    layers.insert("csc".to_string(), Matrix::Sparse(x_csc));

    let mut obsm = Mapping::new();
    let pca = Array2::from_shape_fn((5, 2), |(i, j)| (i * 2 + j) as f64);
    obsm.insert("X_pca".into(), Element::Array(ArrayData::from(pca)));
    let mut varm = Mapping::new();
    let pcs = Array2::from_shape_fn((4, 2), |(i, j)| (i * 2 + j) as i32);
    varm.insert("PCs".into(), Element::Array(ArrayData::from(pcs)));

    let distances = sparse(
        SparseFormat::Csr,
        (5, 5),
        &[0, 1, 3, 4, 6, 8],
        &[3, 1, 4, 2, 0, 3, 1, 4],
        ArrayData::from(vec![3f64, 6., 9., 12., 15., 18., 21., 24.]),
    );
    let mut obsp = IndexMap::new();
    obsp.insert("distances".into(), Matrix::Sparse(distances));
    let corr = Array2::from_shape_fn((4, 4), |(i, j)| (i * 4 + j) as f64);
    let mut varp = IndexMap::new();
    varp.insert("corr".into(), Matrix::Dense(ArrayData::from(corr)));

    let mut uns = Mapping::new();
    uns.insert(
        "ct_colors".into(),
        Element::Array(strings(&["#b", "#nk", "#t", "#unused"])),
    );
    uns.insert(
        "kind_colors".into(),
        Element::Array(strings(&["red", "green"])),
    );
    uns.insert("n_colors".into(), Element::Array(strings(&["x"])));

    let raw_x = sparse(
        SparseFormat::Csr,
        (5, 6),
        &[0, 2, 3, 5, 6, 8],
        &[1, 5, 3, 1, 5, 3, 1, 5],
        ArrayData::from(vec![1f32, 5., 9., 13., 17., 21., 25., 29.]),
    );
    let raw = RawElements {
        x: Matrix::Sparse(raw_x),
        var: DataFrame::from_index(names("r", 6)),
        varm: Mapping::new(),
    };

    AnnData::from_elements(AnnDataElements {
        x: Some(Matrix::Sparse(x)),
        obs,
        var,
        obsm,
        varm,
        obsp,
        varp,
        layers,
        uns,
        raw: Some(raw),
    })
    .unwrap()
}

/// [`example`] with a data frame in `obsm` and in `varm`, each holding a copy of the
/// categorical column of `obs`/`var` (`ct` has the unused category `'unused'`):
///
/// ```python
/// a.obsm['df'] = a.obs[['ct']].copy()
/// a.varm['df'] = a.var[['kind']].copy()
/// ```
pub(crate) fn example_with_aligned_frames() -> AnnData {
    let mut a = example();
    let obsm = frame_of(a.obs(), "ct");
    a.insert_obsm("df", obsm).unwrap();
    let varm = frame_of(a.var(), "kind");
    a.insert_varm("df", varm).unwrap();
    a
}

/// Column `name` of `source`, alone in a frame with the same index.
fn frame_of(source: &DataFrame, name: &str) -> Element {
    let mut frame = DataFrame::from_index(source.index_names().unwrap().to_vec());
    frame
        .insert(name, source.column(name).unwrap().clone())
        .unwrap();
    Element::DataFrame(frame)
}

/// The parts of a sparse matrix, with float data widened to f64.
pub(crate) fn sparse_parts(m: &Matrix) -> (Vec<u64>, Vec<u32>, Vec<f64>, (usize, usize)) {
    let Matrix::Sparse(s) = m else {
        panic!("sparse matrix expected, got {m:?}")
    };
    let data = s.data().to_f64().unwrap().iter().copied().collect();
    (s.indptr().to_vec(), s.indices().to_vec(), data, s.shape())
}

/// A dense matrix as rows of f64.
pub(crate) fn dense_rows(m: &Matrix) -> Vec<Vec<f64>> {
    let Matrix::Dense(a) = m else {
        panic!("dense matrix expected, got {m:?}")
    };
    let a = a.to_f64().unwrap();
    a.outer_iter()
        .map(|r| r.iter().copied().collect())
        .collect()
}
