//! Matrices and arrays (X, layers, obsm/varm, obsp/varp): reindexing onto the result's names
//! with anndata's fills and dtypes, stacking, block diagonals and anndata's equality.

use annpage_engine::data::{ArrayData, DType, Element, Matrix, SparseFormat, SparseMatrix};
use annpage_engine::{map_array, Error, Result};
use ndarray::{ArrayD, Axis, IxDyn};

use super::plan::Reindexer;
use super::sparse::{dense_to_csr, reindex_sparse, sparse_equal, to_csr, to_format, vstack_csr};
use super::values::{self, check_2d, concat_same, Obj};
use super::FillValue;

/// A matrix-like value while it is being concatenated: what anndata holds as a numpy array, a
/// numpy `object` array (booleans beside NaN fills) or a scipy sparse matrix.
#[derive(Clone, Debug)]
pub(super) enum Mat {
    Dense(ArrayData),
    Object(ArrayD<Obj>),
    Sparse(SparseMatrix),
}

impl Mat {
    pub(super) fn from_matrix(m: Matrix) -> Mat {
        match m {
            Matrix::Dense(a) => Mat::Dense(a),
            Matrix::Sparse(s) => Mat::Sparse(s),
        }
    }

    /// The matrix-like elements of obsm/varm/uns (`None` for frames and others).
    pub(super) fn from_element(e: Element) -> Option<Mat> {
        match e {
            Element::Array(a) if a.ndim() > 0 => Some(Mat::Dense(a)),
            Element::Sparse(s) => Some(Mat::Sparse(s)),
            _ => None,
        }
    }

    /// Back into a stored matrix; an `object` array cannot be written (anndata fails too).
    pub(super) fn into_matrix(self) -> Result<Matrix> {
        match self {
            Mat::Dense(a) => Ok(Matrix::Dense(a)),
            Mat::Sparse(s) => Ok(Matrix::Sparse(s)),
            Mat::Object(o) => Err(object_error(&o)),
        }
    }

    /// Back into an element (see [`Mat::into_matrix`]).
    pub(super) fn into_element(self) -> Result<Element> {
        Ok(match self.into_matrix()? {
            Matrix::Dense(a) => Element::Array(a),
            Matrix::Sparse(s) => Element::Sparse(s),
        })
    }

    /// The length along `axis` (0 or 1; a 1-d array has one column).
    pub(super) fn len(&self, axis: usize) -> usize {
        let shape = match self {
            Mat::Dense(a) => a.shape().to_vec(),
            Mat::Object(o) => o.shape().to_vec(),
            Mat::Sparse(s) => vec![s.shape().0, s.shape().1],
        };
        shape
            .get(axis)
            .copied()
            .unwrap_or(if axis == 1 { 1 } else { 0 })
    }

    /// Rows and columns swapped (a 2-d dense array is copied, a sparse one relabelled).
    pub(super) fn transpose(self) -> Result<Mat> {
        Ok(match self {
            Mat::Dense(a) => {
                check_2d(a.shape())?;
                Mat::Dense(map_array!(a, x => x.reversed_axes().as_standard_layout().into_owned()))
            }
            Mat::Object(o) => Mat::Object(o.reversed_axes().as_standard_layout().into_owned()),
            Mat::Sparse(s) => Mat::Sparse(s.transpose()),
        })
    }
}

fn object_error(o: &ArrayD<Obj>) -> Error {
    let kinds: Vec<&str> = {
        let mut k: Vec<&str> = o.iter().map(Obj::kind).collect();
        k.sort_unstable();
        k.dedup();
        k
    };
    Error::unsupported(format!(
        "the result would hold Python objects ({}), which anndata cannot write either",
        kinds.join(", ")
    ))
}

/// Takes positions along `axis`, writing `fill` where `new_to_old` has none.
fn take_fill<T: Clone>(
    a: &ArrayD<T>,
    axis: usize,
    new_to_old: &[Option<usize>],
    fill: T,
) -> ArrayD<T> {
    let mut shape = a.shape().to_vec();
    shape[axis] = new_to_old.len();
    let mut out = ArrayD::from_elem(IxDyn(&shape), fill);
    for (new, old) in new_to_old.iter().enumerate() {
        if let Some(old) = old {
            out.index_axis_mut(Axis(axis), new)
                .assign(&a.index_axis(Axis(axis), *old));
        }
    }
    out
}

/// Reindexes a dense (or object) array along `axis` as anndata 0.13's
/// `Reindexer._apply_to_array_api` (`where(missing, asarray(fill), take(...))`): kept as is
/// when nothing changes; an array with nothing along the axis becomes an array of `fill` (of
/// its dtype: int64 or float64); otherwise missing positions take `fill` and the dtype is
/// numpy's promotion with `fill`'s (float32 with NaN: float64; int32 with an integer: int64;
/// bools with NaN: float64). anndata 0.12 promoted with pandas' `take` instead.
fn reindex_dense(m: Mat, axis: usize, r: &Reindexer, fill: FillValue) -> Result<Mat> {
    let shape = match &m {
        Mat::Dense(a) => a.shape().to_vec(),
        Mat::Object(o) => o.shape().to_vec(),
        Mat::Sparse(_) => return Err(Error::invalid("reindex_dense of a sparse matrix")),
    };
    if shape.len() <= axis {
        return Err(Error::unsupported(format!(
            "aligning a {}-d array along axis {axis}",
            shape.len()
        )));
    }
    if r.keeps(shape[axis]) {
        return Ok(m);
    }
    let mut new_shape = shape.clone();
    new_shape[axis] = r.new_len();
    if shape[axis] == 0 {
        return Ok(Mat::Dense(values::full(
            values::fill_dtype(fill),
            &new_shape,
            fill,
        )?));
    }
    let map = r.new_to_old();
    Ok(match m {
        Mat::Object(o) => Mat::Object(take_fill(&o, axis, map, Obj::of_fill(fill))),
        Mat::Dense(a) if !r.fills() => {
            let picked: Vec<usize> = map.iter().flatten().copied().collect();
            Mat::Dense(a.select(axis, &picked))
        }
        Mat::Dense(a) => match values::result_type(a.dtype(), values::fill_dtype(fill)) {
            Some(dtype) => {
                let a = values::cast(&a, dtype)?;
                let f = values::full(dtype, &[], fill)?;
                Mat::Dense(fill_as(&a, &f, axis, map)?)
            }
            None => Mat::Object(take_fill(
                &values::to_objects(&a),
                axis,
                map,
                Obj::of_fill(fill),
            )),
        },
        Mat::Sparse(_) => unreachable!("handled above"),
    })
}

/// [`take_fill`] with the fill given as a 0-d array of `a`'s dtype.
fn fill_as(
    a: &ArrayData,
    fill: &ArrayData,
    axis: usize,
    map: &[Option<usize>],
) -> Result<ArrayData> {
    macro_rules! go {
        ($($v:ident),*) => {
            match (a, fill) {
                $((ArrayData::$v(x), ArrayData::$v(f)) => {
                    let f = f.iter().next().cloned().ok_or_else(|| Error::invalid("empty fill"))?;
                    ArrayData::$v(take_fill(x, axis, map, f))
                })*
                _ => return Err(Error::invalid("fill of another dtype")),
            }
        };
    }
    Ok(go!(
        Bool, I8, I16, I32, I64, U8, U16, U32, U64, F16, F32, F64, String
    ))
}

/// Concatenates pieces along rows after aligning their columns, as anndata's `concat_arrays`:
/// `None` pieces stand for an element one input lacks (an empty `rows × 0` boolean array).
/// With any sparse piece the result is CSR (dense pieces converted), filled with `fill`
/// (default 0); otherwise a dense array filled with `fill` (default NaN). The dtype is
/// numpy's result over the pieces.
pub(super) fn stack_rows(
    pieces: Vec<(Option<Mat>, usize, &Reindexer)>,
    fill: Option<FillValue>,
) -> Result<Mat> {
    let any_sparse = pieces
        .iter()
        .any(|(m, _, _)| matches!(m, Some(Mat::Sparse(_))));
    if any_sparse {
        let fill = fill.unwrap_or(FillValue::Int(0));
        let mut parts = Vec::with_capacity(pieces.len());
        for (m, rows, r) in pieces {
            let s = match m {
                None => SparseMatrix::empty(SparseFormat::Csr, (rows, 0), DType::Bool),
                Some(Mat::Dense(a)) => dense_to_csr(&a)?,
                Some(Mat::Sparse(s)) => s,
                Some(Mat::Object(o)) => return Err(object_error(&o)),
            };
            parts.push(to_format(
                reindex_sparse(s, 1, r, fill)?,
                SparseFormat::Csr,
            )?);
        }
        if parts.len() == 1 {
            // One piece (a chunk streamed alone): it is the result, no copy.
            return Ok(Mat::Sparse(parts.pop().expect("one piece")));
        }
        return Ok(Mat::Sparse(vstack_csr(parts)?));
    }
    let fill = fill.unwrap_or(FillValue::Float(f64::NAN));
    let mut parts = Vec::with_capacity(pieces.len());
    for (m, rows, r) in pieces {
        let m = m.unwrap_or_else(|| Mat::Dense(ArrayData::zeros(DType::Bool, &[rows, 0])));
        parts.push(reindex_dense(m, 1, r, fill)?);
    }
    if let [Mat::Dense(_)] = parts.as_slice() {
        return Ok(parts.pop().expect("one piece"));
    }
    concat_dense(parts, 0)
}

/// Concatenates dense (or object) arrays along `axis` with numpy's dtype rules.
fn concat_dense(parts: Vec<Mat>, axis: usize) -> Result<Mat> {
    if parts.iter().any(|m| matches!(m, Mat::Object(_))) {
        let objs: Vec<ArrayD<Obj>> = parts
            .into_iter()
            .map(|m| match m {
                Mat::Object(o) => o,
                Mat::Dense(a) => values::to_objects(&a),
                Mat::Sparse(_) => unreachable!("dense pieces only"),
            })
            .collect();
        let views: Vec<_> = objs.iter().map(|o| o.view()).collect();
        return Ok(Mat::Object(
            ndarray::concatenate(Axis(axis), &views).map_err(|e| Error::shape(e.to_string()))?,
        ));
    }
    let arrays: Vec<ArrayData> = parts
        .into_iter()
        .map(|m| match m {
            Mat::Dense(a) => a,
            _ => unreachable!("dense pieces only"),
        })
        .collect();
    let Some(dtype) = values::result_type_all(arrays.iter().map(ArrayData::dtype)) else {
        let objs: Vec<ArrayD<Obj>> = arrays.iter().map(values::to_objects).collect();
        let views: Vec<_> = objs.iter().map(|o| o.view()).collect();
        return Ok(Mat::Object(
            ndarray::concatenate(Axis(axis), &views).map_err(|e| Error::shape(e.to_string()))?,
        ));
    };
    let cast: Vec<ArrayData> = arrays
        .iter()
        .map(|a| values::cast(a, dtype))
        .collect::<Result<_>>()?;
    Ok(Mat::Dense(concat_same(&cast, axis)?))
}

/// scipy's `block_diag(..., format="csr")` of square pieces; `None` pieces (an element one
/// input lacks) are empty boolean blocks of their size.
pub(super) fn block_diag(pieces: Vec<(Option<Mat>, usize)>) -> Result<SparseMatrix> {
    let mut blocks = Vec::with_capacity(pieces.len());
    for (m, n) in pieces {
        blocks.push(match m {
            None => SparseMatrix::empty(SparseFormat::Csr, (n, n), DType::Bool),
            Some(Mat::Dense(a)) => dense_to_csr(&a)?,
            Some(Mat::Sparse(s)) => to_csr(&s)?,
            Some(Mat::Object(o)) => return Err(object_error(&o)),
        });
    }
    let width: usize = blocks.iter().map(|b| b.shape().1).sum();
    let mut offset = 0u32;
    let mut shifted = Vec::with_capacity(blocks.len());
    for b in blocks {
        let (fmt, (rows, cols), indptr, indices, data) = b.into_parts();
        let indices = indices.into_iter().map(|i| i + offset).collect();
        offset += cols as u32;
        shifted.push(SparseMatrix::new(
            fmt,
            (rows, width),
            indptr,
            indices,
            data,
        )?);
    }
    if shifted.is_empty() {
        return Ok(SparseMatrix::empty(SparseFormat::Csr, (0, 0), DType::Bool));
    }
    vstack_csr(shifted)
}

/// Reindexes an element aligned to the other axis (varm when concatenating along obs): rows,
/// and columns too for a pairwise matrix, with anndata's default fills (NaN dense, 0 sparse).
pub(super) fn reindex_alt(m: Mat, r: &Reindexer, pairwise: bool) -> Result<Mat> {
    let once = |m: Mat, axis: usize| -> Result<Mat> {
        match m {
            Mat::Sparse(s) => Ok(Mat::Sparse(reindex_sparse(s, axis, r, 0.0.into())?)),
            other => reindex_dense(other, axis, r, f64::NAN.into()),
        }
    };
    let rows = once(m, 0)?;
    if pairwise {
        once(rows, 1)
    } else {
        Ok(rows)
    }
}

/// Stacks X or a layer along the concatenation `axis`: rows (obs) or columns (var).
pub(super) fn stack_axis(
    pieces: Vec<(Option<Mat>, usize, &Reindexer)>,
    fill: Option<FillValue>,
    axis: crate::Axis,
) -> Result<Matrix> {
    if axis == crate::Axis::Obs {
        return stack_rows(pieces, fill)?.into_matrix();
    }
    let pieces = pieces
        .into_iter()
        .map(|(m, n, r)| Ok((m.map(Mat::transpose).transpose()?, n, r)))
        .collect::<Result<Vec<_>>>()?;
    match stack_rows(pieces, fill)?.transpose()? {
        // anndata stacks columns with `hstack(..., format="csr")`.
        Mat::Sparse(s) => Ok(Matrix::Sparse(to_format(s, SparseFormat::Csr)?)),
        other => other.into_matrix(),
    }
}

/// anndata's `equal` for arrays and sparse matrices: dense ones need equal shapes, dtypes and
/// values (NaN equal to NaN); sparse ones equal shapes and values whatever their dtype or
/// format; a dense and a sparse one differ.
pub(super) fn mats_equal(a: &Mat, b: &Mat) -> Result<bool> {
    Ok(match (a, b) {
        (Mat::Dense(x), Mat::Dense(y)) => values::arrays_equal(x, y),
        (Mat::Object(x), Mat::Object(y)) => x == y,
        (Mat::Sparse(x), Mat::Sparse(y)) => {
            // scipy's `a != b` of different shapes is simply true.
            x.shape() == y.shape() && sparse_equal(&to_csr(x)?, &to_csr(y)?)?
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concat::plan::align;
    use crate::concat::Join;
    use annpage_engine::data::CompactString;

    fn csr(
        rows: usize,
        cols: usize,
        indptr: &[u64],
        indices: &[u32],
        data: Vec<f32>,
    ) -> SparseMatrix {
        SparseMatrix::new(
            SparseFormat::Csr,
            (rows, cols),
            indptr.to_vec(),
            indices.to_vec(),
            ArrayData::from(data),
        )
        .unwrap()
    }

    fn dense(s: &SparseMatrix) -> Vec<Vec<f64>> {
        let s = to_csr(s).unwrap();
        let d = values::cast(s.data(), DType::F64).unwrap();
        let ArrayData::F64(d) = d else { panic!() };
        let mut out = vec![vec![0.0; s.shape().1]; s.shape().0];
        for (i, row) in out.iter_mut().enumerate() {
            for k in s.indptr()[i] as usize..s.indptr()[i + 1] as usize {
                row[s.indices()[k] as usize] += d[k];
            }
        }
        out
    }

    /// scipy: `vstack([a, reindexer(b)])` from anndata's `gen_reindexer` docstring.
    #[test]
    fn sparse_columns_are_aligned_and_stacked() {
        let names = |v: &[&str]| {
            v.iter()
                .map(|&s| CompactString::from(s))
                .collect::<Vec<_>>()
        };
        let abc = names(&["a", "b", "c"]);
        let a = csr(3, 3, &[0, 1, 2, 3], &[0, 1, 2], vec![1.0; 3]);
        let b = csr(2, 2, &[0, 1, 2], &[0, 1], vec![1.0; 2]);
        let (joined, r) = align(&[&abc, &names(&["b", "a"])], Join::Outer, "var").unwrap();
        assert_eq!(joined, abc);
        let [ra, rb]: [Reindexer; 2] = r.try_into().unwrap();
        let out = stack_rows(
            vec![
                (Some(Mat::Sparse(a)), 3, &ra),
                (Some(Mat::Sparse(b)), 2, &rb),
            ],
            None,
        )
        .unwrap();
        let Mat::Sparse(s) = out else {
            panic!("sparse expected")
        };
        assert_eq!(s.format(), SparseFormat::Csr);
        assert_eq!(
            dense(&s),
            [
                [1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.],
                [0., 1., 0.],
                [1., 0., 0.]
            ]
        );
    }

    #[test]
    fn dense_fill_promotes_like_numpy() {
        let (x, xy) = ([CompactString::from("x")], ["x".into(), "y".into()]);
        let r = align(&[&x, &xy], Join::Outer, "var").unwrap().1.remove(0);
        let ints = Mat::Dense(ArrayData::from(ndarray::arr2(&[[1i32], [2]])));
        let Mat::Dense(out) = reindex_dense(ints.clone(), 1, &r, f64::NAN.into()).unwrap() else {
            panic!()
        };
        assert_eq!(out.dtype(), DType::F64);
        // An integer fill: numpy's promotion with int64 (anndata 0.13's `fill_value=-1`).
        let Mat::Dense(out) = reindex_dense(ints, 1, &r, FillValue::Int(-1)).unwrap() else {
            panic!()
        };
        assert_eq!(out, ArrayData::from(ndarray::arr2(&[[1i64, -1], [2, -1]])));
        let bools = Mat::Dense(ArrayData::from(ndarray::arr2(&[[true], [false]])));
        let Mat::Dense(out) = reindex_dense(bools, 1, &r, f64::NAN.into()).unwrap() else {
            panic!("bools with NaN: float64")
        };
        assert_eq!(out.to_f64().unwrap()[[0, 0]], 1.0);
        assert!(out.to_f64().unwrap()[[0, 1]].is_nan());
        let diag = block_diag(vec![
            (
                Some(Mat::Dense(ArrayData::from(ndarray::arr2(&[
                    [0f32, 2.],
                    [3., 0.],
                ])))),
                2,
            ),
            (None, 1),
        ])
        .unwrap();
        assert_eq!(diag.data().dtype(), DType::F32);
        assert_eq!(dense(&diag), [[0., 2., 0.], [3., 0., 0.], [0., 0., 0.]]);
    }

    #[test]
    fn csc_round_trips_through_csr() {
        let s = csr(2, 3, &[0, 2, 3], &[2, 0, 1], vec![1.0, 2.0, 3.0]);
        let csc = to_format(s.clone(), SparseFormat::Csc).unwrap();
        assert_eq!(csc.format(), SparseFormat::Csc);
        assert_eq!(dense(&csc), dense(&s));
        assert!(mats_equal(&Mat::Sparse(csc), &Mat::Sparse(s)).unwrap());
    }
}
