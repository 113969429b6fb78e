//! Numeric answers: gene columns, cell blocks and embeddings, read through the backed plan.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use annpage::data::{ArrayData, Element, Matrix, SparseFormat};
use annpage::Selection;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::{list, number, positions, Answer, App, Format, Weight};
use crate::catalog::Dataset;
use crate::encode::NamedArray;
use crate::error::ApiError;
use crate::source::Source;

/// `GET /datasets/{d}/genes/{gene}`: one gene (a name, or a position) over every cell.
pub(super) async fn gene(
    State(app): State<Arc<App>>,
    Path((d, gene)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let d = app.catalog.get(&d)?;
    let genes = vec![d.gene(&gene)?];
    read_genes(app, d, genes, query).await
}

/// `GET /datasets/{d}/genes?names=A,B` (or `positions=0,7`): several genes in one pass.
pub(super) async fn genes(
    State(app): State<Arc<App>>,
    Path(d): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let d = app.catalog.get(&d)?;
    let mut genes = vec![];
    for name in list(&query, "names") {
        genes.push(d.gene(&name)?);
    }
    genes.extend(positions(&query, "positions", d.handle.n_vars(), "gene")?);
    if genes.is_empty() {
        return Err(ApiError::bad_request(
            "name the genes: names=A,B or positions=0,1",
        ));
    }
    read_genes(app, d, genes, query).await
}

/// `values`: a genes × cells float32 array.
async fn read_genes(
    app: Arc<App>,
    d: Arc<Dataset>,
    genes: Vec<usize>,
    query: HashMap<String, String>,
) -> Result<Response, ApiError> {
    let format = Format::of(&query)?;
    let layer = query.get("layer").cloned();
    // X's genes from the gene-major copy once it is ready: that gene's values only.
    let (source, weight) = match (&layer, d.gene_major.get()) {
        (None, Some(copy)) => (Source::File(copy.clone()), Weight::Light),
        _ => {
            d.reader().check_matrix(&d.name, layer.as_deref())?;
            (d.reader().clone(), Weight::Heavy)
        }
    };
    let n_obs = d.handle.n_obs();
    // The dense answer (4 bytes a value, and its encoding), and for a dense X what the read
    // holds before it is spread out (the stored values and their float64 copy).
    let bytes = 24 * genes.len() as u64 * n_obs as u64 * format.factor();
    let what = format!("{} genes of {}", genes.len(), d.name);
    let (answer, permit) = app
        .read(&what, bytes, weight, move || {
            let columns = source.read_genes(layer.as_deref(), &genes)?;
            let values = genes_by_cells(&columns)?;
            let shape = vec![genes.len() as u64, n_obs as u64];
            Ok(Answer::arrays(
                vec![NamedArray::from_vec("values", shape, values)],
                format,
            ))
        })
        .await?;
    Ok(answer.send(permit, &app))
}

/// The columns of a cells × genes matrix as rows of float32 (genes × cells); values stored
/// twice are summed, as scipy's `toarray` does.
fn genes_by_cells(m: &Matrix) -> Result<Vec<f32>, ApiError> {
    let (n, k) = match m {
        Matrix::Dense(a) => (a.shape()[0], a.shape().get(1).copied().unwrap_or(1)),
        Matrix::Sparse(s) => s.shape(),
    };
    let mut out = vec![0f32; n * k];
    let not_numbers = || ApiError::unprocessable("the matrix does not hold numbers");
    match m {
        Matrix::Dense(a) => {
            let v = a.to_f64().ok_or_else(not_numbers)?;
            for ((i, j), &x) in v.indexed_iter().map(|(ix, x)| ((ix[0], ix[1]), x)) {
                out[j * n + i] = x as f32;
            }
        }
        Matrix::Sparse(s) => {
            let data = float32(s.data())?;
            let (indptr, indices) = (s.indptr(), s.indices());
            for major in 0..indptr.len().saturating_sub(1) {
                for p in indptr[major] as usize..indptr[major + 1] as usize {
                    let minor = indices[p] as usize;
                    let (i, j) = match s.format() {
                        SparseFormat::Csr => (major, minor),
                        SparseFormat::Csc => (minor, major),
                    };
                    out[j * n + i] += data[p];
                }
            }
        }
    }
    Ok(out)
}

/// Stored values as float32: borrowed when they are float32 already.
fn float32(data: &ArrayData) -> Result<Cow<'_, [f32]>, ApiError> {
    if let Some(values) = match data {
        ArrayData::F32(a) => a.as_slice(),
        _ => None,
    } {
        return Ok(Cow::Borrowed(values));
    }
    let values = data
        .to_f64()
        .ok_or_else(|| ApiError::unprocessable("the matrix does not hold numbers"))?;
    Ok(Cow::Owned(values.iter().map(|&v| v as f32).collect()))
}

/// Stored values as an owned float32 vector: their own buffer when they are float32 already.
fn float32_vec(data: ArrayData) -> Result<Vec<f32>, ApiError> {
    match data {
        ArrayData::F32(a) if a.is_standard_layout() => {
            let n = a.len();
            let (v, offset) = a.into_raw_vec_and_offset();
            // Standard layout: the values are contiguous from the offset.
            let start = offset.unwrap_or(0);
            if start == 0 && v.len() == n {
                return Ok(v);
            }
            Ok(v[start..start + n].to_vec())
        }
        other => Ok(float32(&other)?.into_owned()),
    }
}

/// `GET /datasets/{d}/cells?positions=…|names=…&genes=…`: a CSR block of float32 values
/// (`data`, `indices`, `indptr`, and `shape`), cells in the order asked.
pub(super) async fn cells(
    State(app): State<Arc<App>>,
    Path(d): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let format = Format::of(&query)?;
    let d = app.catalog.get(&d)?;
    let names = list(&query, "names");
    let rows = positions(&query, "positions", d.handle.n_obs(), "cell")?;
    let rows = match (names.is_empty(), rows.is_empty()) {
        (false, true) => Selection::names(names),
        (true, false) => Selection::positions(rows),
        _ => {
            return Err(ApiError::bad_request(
                "give the cells as names=… or positions=… (one of them)",
            ))
        }
    };
    let mut genes = vec![];
    for g in list(&query, "genes") {
        genes.push(d.gene(&g)?);
    }
    let cols = if genes.is_empty() {
        Selection::All
    } else {
        Selection::positions(genes)
    };
    let layer = query.get("layer").cloned();
    d.reader().check_matrix(&d.name, layer.as_deref())?;
    // Names are looked up among every cell's, and the block's size read from the offsets: on
    // a blocking thread, as a light reader.
    let (reader, asked) = (d.clone(), layer.clone());
    let (view, stored) = app
        .probe(move || {
            let view = reader.reader().slice(&rows, &cols)?;
            let stored = view.stored_values(asked.as_deref())?;
            Ok((view, stored))
        })
        .await?;
    let (n, k) = view.shape();
    // The block as read, as CSR, its float32 values and the encoded answer: 32 bytes a value.
    let stored = stored.min(n as u64 * k as u64);
    let bytes = (stored * 32 + (n as u64 + 1) * 16) * format.factor();
    let what = format!("{n} cells of {}", d.name);
    let (answer, permit) = app
        .read(&what, bytes, Weight::Heavy, move || {
            let csr = view
                .read(layer.as_deref())?
                .into_sparse(SparseFormat::Csr)?;
            let (_, _, indptr, indices, data) = csr.into_parts();
            let data = float32_vec(data)?;
            let nnz = data.len() as u64;
            let arrays = vec![
                NamedArray::from_vec("data", vec![nnz], data),
                NamedArray::from_vec("indices", vec![nnz], indices),
                NamedArray::from_vec("indptr", vec![n as u64 + 1], indptr),
                NamedArray::new("shape", vec![2], &[n as u64, k as u64]),
            ];
            Ok(Answer::arrays(arrays, format))
        })
        .await?;
    Ok(answer.send(permit, &app))
}

/// `GET /datasets/{d}/obsm/{key}?max_points=N&dims=0,1`: an embedding as float32 cells × dims,
/// every k-th cell when there are more than `max_points` (their positions in `positions`).
pub(super) async fn obsm(
    State(app): State<Arc<App>>,
    Path((d, key)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let format = Format::of(&query)?;
    let d = app.catalog.get(&d)?;
    if !d.handle.obsm_keys()?.contains(&key) {
        return Err(ApiError::not_found(format!(
            "no obsm '{key}' in {}",
            d.name
        )));
    }
    let n_obs = d.handle.n_obs();
    let stride = match number(&query, "max_points")? {
        Some(0) => return Err(ApiError::bad_request("max_points must be at least 1")),
        Some(max) => n_obs.div_ceil(max).max(1),
        None => 1,
    };
    let dims = list(&query, "dims")
        .iter()
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("dims: '{v}' is not a position")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let what = format!("obsm '{key}' of {}", d.name);
    // The width from the first row (a read of one block, off the runtime), or from no row.
    let (reader, probe) = (d.clone(), key.clone());
    let width = app
        .probe(move || {
            let first = match n_obs {
                0 => Selection::All,
                _ => Selection::positions([0]),
            };
            let first = reader.reader().slice(&first, &Selection::All)?;
            element_width(&first.obsm(&probe)?)
        })
        .await
        .map_err(|e| e.about(&what))?;
    if let Some(bad) = dims.iter().find(|&&j| j >= width) {
        return Err(ApiError::bad_request(format!(
            "dims: {bad} is out of range: obsm '{key}' has {width} columns"
        )));
    }
    let n_picked = n_obs.div_ceil(stride) as u64;
    let k = if dims.is_empty() { width } else { dims.len() };
    // The rows read (all columns, as stored and as float64) and the answer with positions.
    let bytes = n_picked * (width as u64 * 16 + k as u64 * 8 + 24) * format.factor();
    let (answer, permit) = app
        .read(&what, bytes, Weight::Heavy, move || {
            let picked: Vec<usize> = (0..n_obs).step_by(stride).collect();
            let rows = if stride == 1 {
                Selection::All
            } else {
                Selection::positions(picked.iter().copied())
            };
            let element = d.reader().slice(&rows, &Selection::All)?.obsm(&key)?;
            let values = embedding(element, &dims)?;
            let n = picked.len() as u64;
            let positions: Vec<u64> = picked.iter().map(|&p| p as u64).collect();
            let arrays = vec![
                NamedArray::from_vec("values", vec![n, k as u64], values),
                NamedArray::from_vec("positions", vec![n], positions),
            ];
            Ok(Answer::arrays(arrays, format))
        })
        .await?;
    Ok(answer.send(permit, &app))
}

fn element_width(e: &Element) -> Result<usize, ApiError> {
    match e {
        Element::Array(a) => Ok(a.shape().get(1).copied().unwrap_or(1)),
        Element::Sparse(s) => Ok(s.shape().1),
        _ => Err(ApiError::unprocessable(
            "not an array of numbers (a data frame?)",
        )),
    }
}

/// The columns `dims` (all when empty) of a cells × k element, row by row, as float32.
fn embedding(e: Element, dims: &[usize]) -> Result<Vec<f32>, ApiError> {
    let dense = match e {
        Element::Array(a) => a,
        Element::Sparse(s) => Matrix::Sparse(s).to_dense()?,
        _ => return Err(ApiError::unprocessable("not an array of numbers")),
    };
    let v = dense
        .to_f64()
        .ok_or_else(|| ApiError::unprocessable("its values are not numbers"))?;
    let v = v
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| ApiError::unprocessable("not 2-d"))?;
    let all: Vec<usize> = (0..v.ncols()).collect();
    let dims = if dims.is_empty() { &all[..] } else { dims };
    Ok(v.rows()
        .into_iter()
        .flat_map(|row| dims.iter().map(move |&j| row[j] as f32))
        .collect())
}
