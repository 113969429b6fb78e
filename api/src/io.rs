//! Reading and writing `.h5ad` files and Zarr stores.

use std::path::Path;

use annpage_engine::error::ResultExt;
use annpage_engine::file::stream;
use annpage_engine::format::WriteOptions;
use annpage_engine::storage::StoreKind;
use annpage_engine::Result;

use crate::AnnData;

/// Reads a whole `.h5ad` file into memory, current and legacy layouts alike (a Zarr store
/// given here is read too, as [`read_zarr`] reads it).
///
/// The file's elements are checked as [`AnnData::from_elements`] checks them; every error
/// names the file and, when it concerns one, the element.
///
/// ```no_run
/// let adata = annpage::read_h5ad("data.h5ad")?;
/// println!("{} × {}", adata.n_obs(), adata.n_vars());
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_h5ad(path: impl AsRef<Path>) -> Result<AnnData> {
    let path = path.as_ref();
    let elems = annpage_engine::file::read_h5ad(path)?;
    AnnData::from_elements(elems).in_file(path)
}

/// Reads a whole Zarr store (a `.zarr` directory, v2 or v3, or a `.zarr.zip` archive) into
/// memory, as `anndata.read_zarr` does; the same elements and checks as [`read_h5ad`].
///
/// ```no_run
/// let adata = annpage::read_zarr("data.zarr")?;
/// println!("{} × {}", adata.n_obs(), adata.n_vars());
/// # Ok::<(), annpage::Error>(())
/// ```
pub fn read_zarr(path: impl AsRef<Path>) -> Result<AnnData> {
    let path = path.as_ref();
    if annpage_engine::file::StoreKind::of_path(path) != annpage_engine::file::StoreKind::Zarr {
        return Err(annpage_engine::Error::invalid(
            "not a Zarr store (a directory, or a .zarr / .zip name)",
        )
        .in_file(path));
    }
    read_h5ad(path)
}

impl AnnData {
    /// Writes the object to `path` as an `.h5ad` file as anndata would, so that
    /// `anndata.read_h5ad` reads back an equal object (`options.store` is not consulted). The
    /// file is written beside `path` and renamed into place when complete.
    ///
    /// ```no_run
    /// use annpage::{AnnData, Compression, WriteOptions};
    /// let adata = AnnData::new(3, 2);
    /// adata.write_h5ad("small.h5ad", &WriteOptions { compression: Compression::Gzip(4), ..Default::default() })?;
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_h5ad(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = WriteOptions {
            store: StoreKind::H5ad,
            ..options.clone()
        };
        stream::write(path, self.elements(), &options)
    }

    /// Writes the object to `path` as a Zarr store (a directory) as anndata's `write_zarr`
    /// would, in the format, chunks, shards and codec of `options.zarr` (by default Zarr v3
    /// sharded, like anndata 0.13), so that `anndata.read_zarr` reads back an equal object.
    /// The store is written beside `path` and renamed into place when complete.
    ///
    /// ```
    /// use annpage::{AnnData, WriteOptions, ZarrFormat, ZarrOptions};
    /// let dir = tempfile::tempdir().unwrap();
    /// let adata = AnnData::new(3, 2);
    /// let v2 = WriteOptions { zarr: ZarrOptions::unsharded(ZarrFormat::V2), ..Default::default() };
    /// adata.write_zarr(dir.path().join("small.zarr"), &v2)?;
    /// assert_eq!(annpage::read_zarr(dir.path().join("small.zarr"))?, adata);
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_zarr(&self, path: impl AsRef<Path>, options: &WriteOptions) -> Result<()> {
        let options = WriteOptions {
            store: StoreKind::Zarr,
            ..options.clone()
        };
        stream::write(path, self.elements(), &options)
    }
}

#[cfg(test)]
mod tests {
    use annpage_engine::data::{ArrayData, Column, Element, Matrix};

    use crate::{read_h5ad, Selection};

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(name)
    }

    /// Expected values from `read_h5ad('fixtures/all_elements.h5ad')[::-3, [5, 0, 0, 11]].copy()`
    /// with anndata 0.12.19.
    #[test]
    fn a_file_subsets_like_anndata() {
        let a = read_h5ad(fixture("all_elements.h5ad")).unwrap();
        assert_eq!(a.shape(), (40, 12));
        let s = a
            .subset(
                &Selection::slice(None, None, -3),
                &Selection::positions([5, 0, 0, 11]),
            )
            .unwrap();
        let cells: Vec<String> = (0..14).map(|i| format!("cell_{}", 39 - 3 * i)).collect();
        assert_eq!(s.obs_names(), cells);
        assert_eq!(s.var_names(), ["gene_5", "gene_0", "gene_0", "gene_11"]);

        let Some(Matrix::Sparse(x)) = s.x() else {
            panic!("a CSR X expected")
        };
        assert_eq!(x.indptr(), [0, 0, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 8, 11, 12]);
        assert_eq!(x.indices(), [3, 3, 3, 0, 1, 2, 0, 3, 1, 2, 3, 0]);
        let expected: Vec<f32> = [
            0.2222222238779068,
            0.23076924681663513,
            0.07692307978868484,
            0.0625,
            0.2222222238779068,
            0.2222222238779068,
            0.14814814925193787,
            0.14814814925193787,
            0.09090909361839294,
            0.09090909361839294,
            0.09090909361839294,
            0.20000000298023224,
        ]
        .map(|v: f64| v as f32)
        .to_vec();
        assert_eq!(x.data(), &ArrayData::from(expected));

        let Some(Column::Categorical(ct)) = s.obs().column("cell_type") else {
            panic!("a categorical cell_type expected")
        };
        assert_eq!(ct.categories, ArrayData::from(vec!["B", "Mono", "NK", "T"]));
        assert_eq!(ct.codes, [0, 2, 1, 3, 1, 0, 2, 3, 3, 2, 1, 0, 2, 1]);
        // Every category is still used, so the colours are unchanged.
        assert_eq!(s.uns()["cell_type_colors"], a.uns()["cell_type_colors"]);

        assert_eq!(s.obsm()["X_pca"].nrows(), Some(14));
        assert_eq!(s.obsp()["distances"].shape(), (14, 14));
        assert_eq!(s.varp()["correlation"].shape(), (4, 4));
        assert_eq!(s.layers()["counts"].shape(), (14, 4));
        assert!(matches!(s.varm()["PCs"], Element::Array(ref p) if p.nrows() == 4));
    }

    #[test]
    fn read_errors_name_the_file() {
        let e = read_h5ad(fixture("no_such_file.h5ad")).unwrap_err();
        assert!(e.is_io(), "{e}");
        assert!(e.to_string().contains("no_such_file.h5ad"), "{e}");
    }
}
