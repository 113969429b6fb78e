//! The sample object the writer tests write: every slot, every column kind, unicode names,
//! nested uns and raw; and the same object built with anndata in Python.

use super::*;

/// Every slot, every column kind, unicode names, nested uns, raw.
pub(super) fn sample() -> AnnDataElements {
    let x = sparse(
        SparseFormat::Csr,
        (5, 4),
        &[0, 2, 3, 5, 5, 7],
        &[0, 2, 3, 0, 1, 1, 3],
        ArrayData::from(vec![1f32, 2., 3., 4., 5., 6., 7.5]),
    );
    let obs_names = strings(&["c0", "zelle-ä", "细胞 2", "c 3", "🧬"]);
    let mut obs = DataFrame::from_index(obs_names.clone());
    let mut col = |name: &str, c: Column| obs.insert(name, c).unwrap();
    col(
        "name",
        Column::Array(ArrayData::from(vec!["a", "b", "c", "d", "e"])),
    );
    col(
        "n_genes",
        Column::Array(ArrayData::from(vec![10i64, 20, 30, 40, 50])),
    );
    col(
        "score",
        Column::Array(ArrayData::from(vec![0.5, f64::NAN, -1.0, 1e10, 0.0])),
    );
    col(
        "is_ok",
        Column::Array(ArrayData::from(vec![true, false, true, true, false])),
    );
    let group =
        Categorical::new(vec![0, -1, 1, 0, 1], ArrayData::from(vec!["B", "A"]), false).unwrap();
    col("group", Column::Categorical(group));
    let level =
        Categorical::new(vec![0, 1, 1, 0, 0], ArrayData::from(vec!["lo", "hi"]), true).unwrap();
    col("level", Column::Categorical(level));
    // The values under the mask are arbitrary: the writer stores 0 / False there, as anndata.
    let count = Nullable::new(
        NullableKind::Integer,
        ArrayData::from(vec![1i32, 99, 3, 4, 5]),
        vec![false, true, false, false, false],
    )
    .unwrap();
    col("count", Column::Nullable(count));
    let flag = Nullable::new(
        NullableKind::Boolean,
        ArrayData::from(vec![true, false, true, true, false]),
        vec![false, false, true, false, false],
    )
    .unwrap();
    col("flag", Column::Nullable(flag));
    col(
        "größe ✓",
        Column::Array(ArrayData::from(vec![1.5f32, 2.5, 3.5, 4.5, 5.5])),
    );

    let mut var = DataFrame::from_index(strings(&["g0", "g1", "g2", "g3"]));
    var.set_index_name(Some("gene_ids".into()));
    var.insert(
        "highly_variable",
        Column::Array(ArrayData::from(vec![true, false, false, true])),
    )
    .unwrap();

    let mut meta = DataFrame::from_index(obs_names);
    meta.insert("q", Column::Array(ArrayData::from(vec![1i32, 2, 3, 4, 5])))
        .unwrap();
    let mut obsm = Mapping::new();
    obsm.insert(
        "X_pca".into(),
        Element::Array(ArrayData::F64(arr(
            &[5, 2],
            (0..10).map(|v| v as f64 * 0.5).collect(),
        ))),
    );
    obsm.insert("meta".into(), Element::DataFrame(meta));
    let mut varm = Mapping::new();
    varm.insert(
        "PCs".into(),
        Element::Array(ArrayData::F32(arr(
            &[4, 2],
            (0..8).map(|v| v as f32).collect(),
        ))),
    );
    let mut obsp = IndexMap::new();
    obsp.insert(
        "distances".into(),
        Matrix::Sparse(sparse(
            SparseFormat::Csr,
            (5, 5),
            &[0, 1, 2, 2, 2, 2],
            &[1, 0],
            ArrayData::from(vec![0.5f64, 1.5]),
        )),
    );
    let mut layers = IndexMap::new();
    layers.insert(
        "counts".into(),
        Matrix::Sparse(sparse(
            SparseFormat::Csc,
            (5, 4),
            &[0, 2, 4, 5, 7],
            &[0, 2, 2, 4, 0, 1, 4],
            ArrayData::from(vec![1i32, 4, 5, 6, 2, 3, 7]),
        )),
    );
    layers.insert(
        "dense".into(),
        Matrix::Dense(ArrayData::F32(arr(
            &[5, 4],
            (0..20).map(|v| v as f32).collect(),
        ))),
    );

    let mut params = Mapping::new();
    params.insert("n".into(), Element::Scalar(Scalar::I64(3)));
    params.insert("f".into(), Element::Scalar(Scalar::F64(0.25)));
    params.insert("b".into(), Element::Scalar(Scalar::Bool(true)));
    params.insert(
        "s".into(),
        Element::Scalar(Scalar::String("hello ✓".into())),
    );
    params.insert(
        "arr".into(),
        Element::Array(ArrayData::from(vec![1i32, 2, 3])),
    );
    params.insert(
        "sarr".into(),
        Element::Array(ArrayData::from(vec!["x", "y"])),
    );
    params.insert(
        "empty".into(),
        Element::Array(ArrayData::zeros(DType::F64, &[0])),
    );
    params.insert(
        "mat".into(),
        Element::Array(ArrayData::from(arr2(&[[0f32, 1., 2.], [3., 4., 5.]]))),
    );
    params.insert("u".into(), Element::Scalar(Scalar::U8(7)));
    let mut frame = DataFrame::with_index(ArrayData::from(vec![10i64, 20, 30])).unwrap();
    frame
        .insert("v", Column::Array(ArrayData::from(vec!["p", "q", "r"])))
        .unwrap();
    let c = Categorical::new(vec![0, 1, 0], ArrayData::from(vec!["u", "v"]), false).unwrap();
    frame.insert("c", Column::Categorical(c)).unwrap();
    let mut uns = Mapping::new();
    uns.insert("params".into(), Element::Dict(params));
    uns.insert(
        "colors".into(),
        Element::Array(ArrayData::from(vec!["#fff", "#000"])),
    );
    uns.insert("λ".into(), Element::Scalar(Scalar::F32(0.5)));
    uns.insert("frame".into(), Element::DataFrame(frame));
    uns.insert("nested_empty".into(), Element::Dict(Mapping::new()));
    uns.insert(
        "graph".into(),
        Element::Sparse(sparse(
            SparseFormat::Csr,
            (2, 2),
            &[0, 1, 1],
            &[1],
            ArrayData::from(vec![true]),
        )),
    );

    let raw_x = sparse(
        SparseFormat::Csr,
        (5, 6),
        &[0, 1, 1, 2, 3, 3],
        &[5, 0, 3],
        ArrayData::from(vec![1f32, 2., 3.]),
    );
    let mut raw_var = DataFrame::from_index((0..6).map(|i| format!("r{i}")));
    raw_var
        .insert(
            "mean",
            Column::Array(ArrayData::from(vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0])),
        )
        .unwrap();

    AnnDataElements {
        x: Some(Matrix::Sparse(x)),
        obs,
        var,
        obsm,
        varm,
        obsp,
        varp: IndexMap::new(),
        layers,
        uns,
        raw: Some(RawElements {
            x: Matrix::Sparse(raw_x),
            var: raw_var,
            varm: Mapping::new(),
        }),
    }
}

/// The object of [`sample`] built with anndata in Python, as `expected`.
pub(super) const EXPECTED: &str = r#"
import anndata as ad, pandas as pd, scipy.sparse as sp
from anndata.tests.helpers import assert_equal
X = sp.csr_matrix((np.array([1, 2, 3, 4, 5, 6, 7.5], 'f4'), np.array([0, 2, 3, 0, 1, 1, 3]),
                   np.array([0, 2, 3, 5, 5, 7])), shape=(5, 4))
obs_names = pd.Index(['c0', 'zelle-ä', '细胞 2', 'c 3', '🧬'])
obs = pd.DataFrame({
    'name': np.array(['a', 'b', 'c', 'd', 'e'], dtype=object),
    'n_genes': np.array([10, 20, 30, 40, 50], dtype='i8'),
    'score': np.array([0.5, np.nan, -1.0, 1e10, 0.0]),
    'is_ok': np.array([True, False, True, True, False]),
    'group': pd.Categorical.from_codes([0, -1, 1, 0, 1], categories=['B', 'A']),
    'level': pd.Categorical.from_codes([0, 1, 1, 0, 0], categories=['lo', 'hi'], ordered=True),
    'count': pd.array([1, None, 3, 4, 5], dtype='Int32'),
    'flag': pd.array([True, False, None, True, False], dtype='boolean'),
    'größe ✓': np.array([1.5, 2.5, 3.5, 4.5, 5.5], dtype='f4'),
}, index=obs_names)
var = pd.DataFrame({'highly_variable': np.array([True, False, False, True])},
                   index=pd.Index(['g0', 'g1', 'g2', 'g3'], name='gene_ids'))
expected = ad.AnnData(
    X=X, obs=obs, var=var,
    obsm={'X_pca': np.arange(10, dtype='f8').reshape(5, 2) * 0.5,
          'meta': pd.DataFrame({'q': np.array([1, 2, 3, 4, 5], 'i4')}, index=obs_names)},
    varm={'PCs': np.arange(8, dtype='f4').reshape(4, 2)},
    obsp={'distances': sp.csr_matrix((np.array([0.5, 1.5]), np.array([1, 0]),
                                      np.array([0, 1, 2, 2, 2, 2])), shape=(5, 5))},
    layers={'counts': sp.csc_matrix((np.array([1, 4, 5, 6, 2, 3, 7], 'i4'),
                                     np.array([0, 2, 2, 4, 0, 1, 4]), np.array([0, 2, 4, 5, 7])),
                                    shape=(5, 4)),
            'dense': np.arange(20, dtype='f4').reshape(5, 4)},
    uns={'params': {'n': 3, 'f': 0.25, 'b': True, 's': 'hello ✓',
                    'arr': np.array([1, 2, 3], 'i4'), 'sarr': np.array(['x', 'y'], dtype=object),
                    'empty': np.zeros(0), 'mat': np.arange(6, dtype='f4').reshape(2, 3),
                    'u': np.uint8(7)},
         'colors': np.array(['#fff', '#000'], dtype=object),
         'λ': np.float32(0.5),
         'frame': pd.DataFrame({'v': np.array(['p', 'q', 'r'], dtype=object),
                                'c': pd.Categorical(['u', 'v', 'u'])},
                               index=pd.Index([10, 20, 30])),
         'nested_empty': {},
         'graph': sp.csr_matrix((np.array([True]), np.array([1]), np.array([0, 1, 1])),
                                shape=(2, 2))},
)
raw_x = sp.csr_matrix((np.array([1, 2, 3], 'f4'), np.array([5, 0, 3]),
                       np.array([0, 1, 1, 2, 3, 3])), shape=(5, 6))
raw_var = pd.DataFrame({'mean': np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])},
                       index=[f'r{i}' for i in range(6)])
expected.raw = ad.AnnData(X=raw_x, obs=obs, var=raw_var)
"#;
