//! The format layer on Zarr: the same AnnData written by anndata as Zarr v2, Zarr v3 and
//! h5ad reads into the same elements.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::*;
use crate::format::read::read_element;
use crate::testutil::py_file;

/// A directory holding one AnnData as `a2.zarr`, `a3.zarr` (anndata's `zarr_write_format` 2
/// and 3) and `a.h5ad`.
fn write_all() -> (tempfile::TempDir, PathBuf) {
    let script = "\
import anndata as ad, pandas as pd, scipy.sparse as sp, os
os.makedirs(path)
rng = np.random.default_rng(0)
n, m = 40, 7
X = sp.random(n, m, density=0.3, format='csr', dtype=np.float32, random_state=0)
obs = pd.DataFrame({
    'cell_type': pd.Categorical(rng.choice(['B', 'T', 'NK'], n)),
    'ordered': pd.Categorical(rng.choice(['lo', 'hi'], n), categories=['lo', 'hi'], ordered=True),
    'count': pd.array([None if i % 5 == 0 else i for i in range(n)], dtype='Int64'),
    'flag': rng.random(n) > 0.5,
    'maybe': pd.array([None if i % 7 == 0 else i % 2 == 0 for i in range(n)], dtype='boolean'),
    'name': [f'name{i}' for i in range(n)],
    'score': rng.random(n),
}, index=[f'cell{i}' for i in range(n)])
var = pd.DataFrame({'gene_ids': [f'ENSG{i:05}' for i in range(m)]}, index=[f'g{i}' for i in range(m)])
a = ad.AnnData(X, obs=obs, var=var)
a.layers['dense'] = rng.random((n, m))
a.layers['counts'] = X.astype(np.int32)
a.obsm['X_pca'] = rng.random((n, 3)).astype(np.float32)
a.varm['loadings'] = rng.random((m, 2))
a.obsp['distances'] = sp.random(n, n, density=0.1, format='csr', random_state=1)
a.uns['params'] = {'n_neighbors': 15, 'method': 'umap', 'nested': {'deep': np.arange(4), 'flag': True}}
a.uns['pi'] = 3.14
a.uns['count'] = 42
a.uns['title'] = 'a title'
a.uns['colors'] = np.array(['red', 'blue'], dtype=object)
a.uns['matrix'] = np.arange(6, dtype=np.int16).reshape(2, 3)
for fmt in (2, 3):
    ad.settings.zarr_write_format = fmt
    a.write_zarr(os.path.join(path, f'a{fmt}.zarr'))
a.write_h5ad(os.path.join(path, 'a.h5ad'))
";
    py_file("all", script)
}

#[test]
fn anndata_reads_the_same_from_zarr_v2_v3_and_h5ad() {
    let (_d, dir) = write_all();
    let file = crate::storage::h5::open_read(&dir.join("a.h5ad")).unwrap();
    let h5: &dyn Group = &*file;
    let h5_names: BTreeSet<String> = h5.member_names().unwrap().into_iter().collect();
    for fmt in [2, 3] {
        let root = open(&dir.join(format!("a{fmt}.zarr"))).unwrap();
        let names: BTreeSet<String> = root.member_names().unwrap().into_iter().collect();
        // anndata writes `raw = None` as a 0-d `null` element to Zarr, and nothing to h5ad.
        let extra: Vec<_> = names.difference(&h5_names).collect();
        assert_eq!(extra, ["raw"], "v{fmt}");
        assert!(
            h5_names.is_subset(&names),
            "v{fmt}: {names:?} vs {h5_names:?}"
        );
        assert_eq!(h5_names.len(), 9, "{h5_names:?}");
        for name in &h5_names {
            let from_h5 = read_element(h5, name).unwrap_or_else(|e| panic!("h5ad {name}: {e}"));
            let from_zarr =
                read_element(&*root, name).unwrap_or_else(|e| panic!("v{fmt} {name}: {e}"));
            assert_eq!(from_zarr, from_h5, "v{fmt}: /{name} differs");
        }
        let raw = read_element(&*root, "raw").unwrap();
        assert!(matches!(raw, crate::data::Element::Opaque(_)), "{raw:?}");
    }
}
