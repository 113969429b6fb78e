//! `write-samples DIR`: builds a few AnnData objects in Rust and writes them as `.h5ad` files
//! into DIR with annpage's writer.
//!
//! `tests/interop/test_rust_built.py` reads each file with the real anndata and checks it field
//! by field against the values spelled out below, so the two must change together.
//!
//! | file | content |
//! |---|---|
//! | `csr_f32.h5ad` | 3 × 4 CSR float32 X with known values, nothing else |
//! | `dense_f64.h5ad` | 2 × 3 dense float64 X with NaN, ±inf and -0.0 |
//! | `obs_columns.h5ad` | int/float/bool/string/categorical/nullable obs columns, var columns, int32 X |
//! | `unicode.h5ad` | unicode names and keys, an empty sparse X |
//! | `full.h5ad` | obsm, varm, obsp, varp, layers, nested uns (with a NaN scalar) and raw |
//! | `empty.h5ad` | a 0 × 0 object without X |
//!
//! `write-samples subset IN OBS VAR DIR`: the cells at the positions listed in the file OBS and
//! the genes listed in VAR (one a line) of IN, written into DIR as `to_memory.h5ad` (a backed
//! slice's `to_memory()`) and `in_memory.h5ad` (`AnnData::subset` of the whole file read in
//! memory), for `tests/interop/test_backed.py` to compare with anndata's
//! `adata[obs][:, var].copy()`.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use annpage::backed::{read_h5ad_backed, BackedOptions, Mode};
use annpage::{read_h5ad, Selection};
use annpage_engine::data::{
    ArrayData, Categorical, Column, DataFrame, Element, Mapping, Matrix, Nullable, NullableKind,
    Scalar, SparseFormat, SparseMatrix,
};
use annpage_engine::format::{write_h5ad, AnnDataElements, RawElements, WriteOptions};
use ndarray::{arr2, ArrayD, IxDyn};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn frame(names: &[&str]) -> DataFrame {
    DataFrame::from_index(strings(names))
}

/// A 2-d array from rows.
fn dense<T: Clone>(rows: usize, cols: usize, values: Vec<T>) -> Result<ArrayD<T>> {
    Ok(ArrayD::from_shape_vec(IxDyn(&[rows, cols]), values)?)
}

/// X = [[1, 0, 2, 0], [0, 0, 0, 0], [0, 3.5, 0, -4]] as CSR float32.
fn csr_f32() -> Result<AnnDataElements> {
    let x = SparseMatrix::new(
        SparseFormat::Csr,
        (3, 4),
        vec![0, 2, 2, 4],
        vec![0, 2, 1, 3],
        ArrayData::from(vec![1.0f32, 2.0, 3.5, -4.0]),
    )?;
    let mut adata = AnnDataElements::empty(3, 4);
    adata.obs = frame(&["c0", "c1", "c2"]);
    adata.var = frame(&["g0", "g1", "g2", "g3"]);
    adata.x = Some(Matrix::Sparse(x));
    Ok(adata)
}

/// X = [[0.5, -1.25, 1e10], [NaN, inf, -0.0]] as dense float64.
fn dense_f64() -> Result<AnnDataElements> {
    let mut adata = AnnDataElements::empty(2, 3);
    adata.obs = frame(&["r0", "r1"]);
    adata.var = frame(&["a", "b", "c"]);
    adata.x = Some(Matrix::Dense(ArrayData::from(arr2(&[
        [0.5f64, -1.25, 1e10],
        [f64::NAN, f64::INFINITY, -0.0],
    ]))));
    Ok(adata)
}

/// Every kind of data frame column.
fn obs_columns() -> Result<AnnDataElements> {
    let mut obs = frame(&["o1", "o2", "o3", "o4"]);
    obs.insert(
        "int",
        Column::Array(ArrayData::from(vec![1i64, -2, 3, 1 << 40])),
    )?;
    obs.insert(
        "float",
        Column::Array(ArrayData::from(vec![0.5f64, f64::NAN, -1.5, 2.0])),
    )?;
    obs.insert(
        "f32",
        Column::Array(ArrayData::from(vec![0.25f32, 1.0, -8.0, 3.0])),
    )?;
    obs.insert("u8", Column::Array(ArrayData::from(vec![0u8, 255, 7, 8])))?;
    obs.insert(
        "flag",
        Column::Array(ArrayData::from(vec![true, false, true, true])),
    )?;
    obs.insert(
        "name",
        Column::Array(ArrayData::from(vec!["alpha", "beta", "gamma", "delta"])),
    )?;
    obs.insert(
        "cell_type",
        Column::Categorical(Categorical::new(
            vec![0, 1, 0, -1],
            ArrayData::from(vec!["B", "T"]),
            false,
        )?),
    )?;
    obs.insert(
        "grade",
        Column::Categorical(Categorical::new(
            vec![2, 0, 1, 2],
            ArrayData::from(vec!["low", "mid", "high"]),
            true,
        )?),
    )?;
    obs.insert(
        "count",
        Column::Nullable(Nullable::new(
            NullableKind::Integer,
            ArrayData::from(vec![5i64, 0, 7, 9]),
            vec![false, true, false, false],
        )?),
    )?;
    obs.insert(
        "ok",
        Column::Nullable(Nullable::new(
            NullableKind::Boolean,
            ArrayData::from(vec![true, false, false, true]),
            vec![false, false, true, false],
        )?),
    )?;
    let mut var = frame(&["v1", "v2"]);
    var.insert(
        "gene_ids",
        Column::Array(ArrayData::from(vec!["ENSG1", "ENSG2"])),
    )?;
    var.insert(
        "numeric_cat",
        Column::Categorical(Categorical::new(
            vec![1, 0],
            ArrayData::from(vec![10i64, 20]),
            false,
        )?),
    )?;
    let mut adata = AnnDataElements::empty(4, 2);
    adata.obs = obs;
    adata.var = var;
    adata.x = Some(Matrix::Dense(ArrayData::I32(dense(
        4,
        2,
        vec![1, 2, 3, 4, 5, 6, 7, 8],
    )?)));
    Ok(adata)
}

/// Unicode everywhere; X is a 3 × 2 CSR matrix with no stored values.
fn unicode() -> Result<AnnDataElements> {
    let mut obs = frame(&["ℌ𝔢𝔩𝔩𝔬", "Zürich", "日本"]);
    obs.insert(
        "Stadt (city)",
        Column::Array(ArrayData::from(vec!["Zürich", "Köln", "Genève"])),
    )?;
    let mut adata = AnnDataElements::empty(3, 2);
    adata.obs = obs;
    adata.var = frame(&["gène α", "β"]);
    adata.x = Some(Matrix::Sparse(SparseMatrix::empty(
        SparseFormat::Csr,
        (3, 2),
        annpage_engine::data::DType::F32,
    )));
    adata.obsm.insert(
        "X embedding ✓".to_owned(),
        Element::Array(ArrayData::F32(dense(
            3,
            2,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        )?)),
    );
    let mut inner = Mapping::new();
    inner.insert(
        "ℌ𝔢𝔩𝔩𝔬".to_owned(),
        Element::Scalar(Scalar::String("wörld ✓".to_owned())),
    );
    adata
        .uns
        .insert("clé avec espaces".to_owned(), Element::Dict(inner));
    Ok(adata)
}

/// Every slot filled: 3 cells × 2 genes, raw with 4 genes.
fn full() -> Result<AnnDataElements> {
    let mut adata = AnnDataElements::empty(3, 2);
    adata.obs = frame(&["c0", "c1", "c2"]);
    adata.var = frame(&["g0", "g1"]);
    adata.x = Some(Matrix::Dense(ArrayData::F32(dense(
        3,
        2,
        vec![1.0, 0.0, 0.0, 2.0, 3.0, 0.0],
    )?)));
    adata.obsm.insert(
        "X_pca".to_owned(),
        Element::Array(ArrayData::F64(dense(
            3,
            2,
            vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
        )?)),
    );
    // [[1, 0, 0], [0, 2, 0], [0, 0, 3]]
    adata.obsm.insert(
        "X_sparse".to_owned(),
        Element::Sparse(SparseMatrix::new(
            SparseFormat::Csr,
            (3, 3),
            vec![0, 1, 2, 3],
            vec![0, 1, 2],
            ArrayData::from(vec![1.0f64, 2.0, 3.0]),
        )?),
    );
    adata.varm.insert(
        "PCs".to_owned(),
        Element::Array(ArrayData::F32(dense(2, 2, vec![1.0, -1.0, 0.5, -0.5])?)),
    );
    adata.layers.insert(
        "counts".to_owned(),
        Matrix::Dense(ArrayData::I32(dense(3, 2, vec![1, 0, 0, 2, 3, 0])?)),
    );
    // [[0, 7], [0, 0], [8, 0]] as CSC.
    adata.layers.insert(
        "sparse".to_owned(),
        Matrix::Sparse(SparseMatrix::new(
            SparseFormat::Csc,
            (3, 2),
            vec![0, 1, 2],
            vec![2, 0],
            ArrayData::from(vec![8.0f32, 7.0]),
        )?),
    );
    // [[0, 0.5, 0], [0.5, 0, 0.25], [0, 0.25, 0]]
    adata.obsp.insert(
        "connectivities".to_owned(),
        Matrix::Sparse(SparseMatrix::new(
            SparseFormat::Csr,
            (3, 3),
            vec![0, 1, 3, 4],
            vec![1, 0, 2, 1],
            ArrayData::from(vec![0.5f32, 0.5, 0.25, 0.25]),
        )?),
    );
    adata.varp.insert(
        "corr".to_owned(),
        Matrix::Dense(ArrayData::F64(dense(2, 2, vec![1.0, -0.5, -0.5, 1.0])?)),
    );

    let mut nested = Mapping::new();
    nested.insert("k".to_owned(), Element::Scalar(Scalar::F32(1.5)));
    let mut params = Mapping::new();
    params.insert("nested".to_owned(), Element::Dict(nested));
    params.insert(
        "method".to_owned(),
        Element::Scalar(Scalar::String("umap".to_owned())),
    );
    let mut table = DataFrame::from_index(strings(&["x", "y"]));
    table.insert("value", Column::Array(ArrayData::from(vec![10i64, 20])))?;
    let uns: [(&str, Element); 10] = [
        (
            "title",
            Element::Scalar(Scalar::String("written by annpage".to_owned())),
        ),
        ("n", Element::Scalar(Scalar::I64(42))),
        ("pi", Element::Scalar(Scalar::F64(std::f64::consts::PI))),
        ("flag", Element::Scalar(Scalar::Bool(true))),
        ("nan", Element::Scalar(Scalar::F64(f64::NAN))),
        (
            "colors",
            Element::Array(ArrayData::from(vec!["#ff0000", "#00ff00"])),
        ),
        (
            "matrix",
            Element::Array(ArrayData::I32(dense(2, 3, vec![1, 2, 3, 4, 5, 6])?)),
        ),
        ("params", Element::Dict(params)),
        (
            "cats",
            Element::Categorical(Categorical::new(
                vec![1, 0, 1],
                ArrayData::from(vec!["a", "b"]),
                false,
            )?),
        ),
        ("table", Element::DataFrame(table)),
    ];
    adata.uns = uns.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();

    let mut raw_var = frame(&["g0", "g1", "g2", "g3"]);
    raw_var.insert(
        "gene_ids",
        Column::Array(ArrayData::from(vec!["id0", "id1", "id2", "id3"])),
    )?;
    let mut raw_varm = Mapping::new();
    raw_varm.insert(
        "loadings".to_owned(),
        Element::Array(ArrayData::F64(dense(
            4,
            2,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        )?)),
    );
    // [[1, 0, 0, 9], [0, 2, 0, 0], [3, 0, 0, 0]]
    let raw_x = SparseMatrix::new(
        SparseFormat::Csr,
        (3, 4),
        vec![0, 2, 3, 4],
        vec![0, 3, 1, 0],
        ArrayData::from(vec![1.0f32, 9.0, 2.0, 3.0]),
    )?;
    adata.raw = Some(RawElements {
        x: Matrix::Sparse(raw_x),
        var: raw_var,
        varm: raw_varm,
    });
    Ok(adata)
}

fn samples() -> Result<Vec<(&'static str, AnnDataElements)>> {
    Ok(vec![
        ("csr_f32.h5ad", csr_f32()?),
        ("dense_f64.h5ad", dense_f64()?),
        ("obs_columns.h5ad", obs_columns()?),
        ("unicode.h5ad", unicode()?),
        ("full.h5ad", full()?),
        ("empty.h5ad", AnnDataElements::empty(0, 0)),
    ])
}

fn write_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, adata) in samples()? {
        write_h5ad(dir.join(name), &adata, &WriteOptions::default())?;
    }
    Ok(())
}

/// The positions listed in `path`, one a line.
fn positions(path: &Path) -> Result<Selection> {
    let text = std::fs::read_to_string(path)?;
    let list = text
        .lines()
        .map(|line| line.trim().parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Selection::positions(list))
}

/// See the module docs: `subset IN OBS VAR DIR`.
fn write_subsets(input: &Path, obs: &Path, var: &Path, dir: &Path) -> Result<()> {
    let (obs, var) = (positions(obs)?, positions(var)?);
    std::fs::create_dir_all(dir)?;
    let options = WriteOptions::default();
    let backed = read_h5ad_backed(input, Mode::Read, BackedOptions::default())?;
    let to_memory = backed.slice(&obs, &var)?.to_memory()?;
    to_memory.write_h5ad(dir.join("to_memory.h5ad"), &options)?;
    let in_memory = read_h5ad(input)?.subset(&obs, &var)?;
    in_memory.write_h5ad(dir.join("in_memory.h5ad"), &options)?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let done = match &args[..] {
        [dir] => write_all(dir),
        [verb, input, obs, var, dir] if verb.as_os_str() == "subset" => {
            write_subsets(input, obs, var, dir)
        }
        _ => {
            eprintln!("usage: write-samples DIR | write-samples subset IN OBS VAR DIR");
            return ExitCode::from(2);
        }
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("write-samples: {e}");
            ExitCode::FAILURE
        }
    }
}
