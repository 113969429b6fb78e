//! numpy's dtype rules, casts, Python objects and natural sorting: the value-level facts that
//! concatenation shares.

use std::cmp::Ordering;

use annpage_engine::data::{ArrayData, CompactString, DType};
use annpage_engine::{Error, Result};

use super::FillValue;
use ndarray::{ArrayD, IxDyn};

use crate::natsort::natural_cmp;

/// numpy's `result_type` of two dtypes; `None` when numpy would need `object` (strings with
/// anything else).
pub(super) fn result_type(a: DType, b: DType) -> Option<DType> {
    use DType::*;
    if a == b {
        return Some(a);
    }
    Some(match (a, b) {
        (String, _) | (_, String) => return None,
        (Bool, x) | (x, Bool) => x,
        (F64, _) | (_, F64) => F64,
        (F32, x) | (x, F32) => {
            if x.size() <= 2 {
                F32
            } else {
                F64
            }
        }
        (F16, x) | (x, F16) => match x.size() {
            1 => F16,
            2 => F32,
            _ => F64,
        },
        (x, y) => {
            let (sx, sy) = (is_signed(x), is_signed(y));
            if sx == sy {
                if x.size() >= y.size() {
                    x
                } else {
                    y
                }
            } else {
                let (s, u) = if sx { (x, y) } else { (y, x) };
                if s.size() > u.size() {
                    s
                } else {
                    match u {
                        U8 => I16,
                        U16 => I32,
                        U32 => I64,
                        _ => F64,
                    }
                }
            }
        }
    })
}

/// numpy's `result_type` of several dtypes (`None`: object; no dtypes: `None` as well).
/// With floats among them numpy promotes each dtype with the floats' result rather than the
/// dtypes in pairs: uint16, int8 and float32 give float32 (each integer fits a float32),
/// where promoting uint16 with int8 first (int32) would give float64.
pub(super) fn result_type_all(dtypes: impl IntoIterator<Item = DType>) -> Option<DType> {
    fn fold(mut it: impl Iterator<Item = DType>) -> Option<DType> {
        let first = it.next()?;
        it.try_fold(first, result_type)
    }
    let dtypes: Vec<DType> = dtypes.into_iter().collect();
    match fold(dtypes.iter().copied().filter(|d| d.is_float())) {
        None => fold(dtypes.into_iter()),
        Some(float) => fold(
            dtypes
                .into_iter()
                .map(|d| result_type(d, float))
                .collect::<Option<Vec<_>>>()?
                .into_iter(),
        ),
    }
}

fn is_signed(d: DType) -> bool {
    matches!(d, DType::I8 | DType::I16 | DType::I32 | DType::I64)
}

/// pandas' `maybe_promote(dtype, NaN)`: the dtype a frame column becomes when a missing row
/// is written into it (floats stay, other numbers become float64). `None` means `object`
/// (booleans take no NaN but stay Python objects).
pub(super) fn promote_for_nan(dtype: DType) -> Option<DType> {
    match dtype {
        DType::Bool | DType::String => None,
        d if d.is_float() => Some(d),
        _ => Some(DType::F64),
    }
}

/// The dtype of numpy's `asarray(fill)`: int64 for an integer, float64 for a float, bool for
/// a bool.
pub(super) fn fill_dtype(fill: FillValue) -> DType {
    match fill {
        FillValue::Bool(_) => DType::Bool,
        FillValue::Int(_) => DType::I64,
        FillValue::Float(_) => DType::F64,
    }
}

/// A number wide enough for every numeric dtype, to cast through.
#[derive(Clone, Copy)]
enum Wide {
    I(i128),
    F(f64),
}

trait Prim: Copy {
    fn wide(self) -> Wide;
    fn from_wide(w: Wide) -> Self;
}

macro_rules! prim_int {
    ($($t:ty),*) => {$(
        impl Prim for $t {
            fn wide(self) -> Wide { Wide::I(self as i128) }
            fn from_wide(w: Wide) -> Self {
                match w { Wide::I(i) => i as $t, Wide::F(f) => f as $t }
            }
        }
    )*};
}
prim_int!(i8, i16, i32, i64, u8, u16, u32, u64);

macro_rules! prim_float {
    ($($t:ty),*) => {$(
        impl Prim for $t {
            fn wide(self) -> Wide { Wide::F(self as f64) }
            fn from_wide(w: Wide) -> Self {
                match w { Wide::I(i) => i as $t, Wide::F(f) => f as $t }
            }
        }
    )*};
}
prim_float!(f32, f64);

impl Prim for half::f16 {
    fn wide(self) -> Wide {
        Wide::F(self.into())
    }
    fn from_wide(w: Wide) -> Self {
        match w {
            Wide::I(i) => half::f16::from_f64(i as f64),
            Wide::F(f) => half::f16::from_f64(f),
        }
    }
}

impl Prim for bool {
    fn wide(self) -> Wide {
        Wide::I(self as i128)
    }
    fn from_wide(w: Wide) -> Self {
        match w {
            Wide::I(i) => i != 0,
            Wide::F(f) => f != 0.0,
        }
    }
}

fn cast_to<T: Prim>(a: &ArrayData) -> Result<ArrayD<T>> {
    fn go<S: Prim, T: Prim>(a: &ArrayD<S>) -> ArrayD<T> {
        a.mapv(|v| T::from_wide(v.wide()))
    }
    Ok(match a {
        ArrayData::Bool(x) => go(x),
        ArrayData::I8(x) => go(x),
        ArrayData::I16(x) => go(x),
        ArrayData::I32(x) => go(x),
        ArrayData::I64(x) => go(x),
        ArrayData::U8(x) => go(x),
        ArrayData::U16(x) => go(x),
        ArrayData::U32(x) => go(x),
        ArrayData::U64(x) => go(x),
        ArrayData::F16(x) => go(x),
        ArrayData::F32(x) => go(x),
        ArrayData::F64(x) => go(x),
        ArrayData::String(_) => {
            return Err(Error::unsupported(
                "converting strings to a numeric dtype while concatenating",
            ))
        }
    })
}

/// `a.astype(dtype)` between numeric dtypes (and to strings only from strings).
pub(super) fn cast(a: &ArrayData, dtype: DType) -> Result<ArrayData> {
    if a.dtype() == dtype {
        return Ok(a.clone());
    }
    Ok(match dtype {
        DType::Bool => ArrayData::Bool(cast_to(a)?),
        DType::I8 => ArrayData::I8(cast_to(a)?),
        DType::I16 => ArrayData::I16(cast_to(a)?),
        DType::I32 => ArrayData::I32(cast_to(a)?),
        DType::I64 => ArrayData::I64(cast_to(a)?),
        DType::U8 => ArrayData::U8(cast_to(a)?),
        DType::U16 => ArrayData::U16(cast_to(a)?),
        DType::U32 => ArrayData::U32(cast_to(a)?),
        DType::U64 => ArrayData::U64(cast_to(a)?),
        DType::F16 => ArrayData::F16(cast_to(a)?),
        DType::F32 => ArrayData::F32(cast_to(a)?),
        DType::F64 => ArrayData::F64(cast_to(a)?),
        DType::String => {
            return Err(Error::unsupported(format!(
                "converting {} values to strings while concatenating",
                a.dtype()
            )))
        }
    })
}

/// An array of `shape` holding `value` everywhere, as `dtype` (a float dtype for NaN).
pub(super) fn full(
    dtype: DType,
    shape: &[usize],
    value: impl Into<FillValue>,
) -> Result<ArrayData> {
    let filled = match value.into() {
        FillValue::Bool(b) => ArrayData::Bool(ArrayD::from_elem(IxDyn(shape), b)),
        FillValue::Int(i) => ArrayData::I64(ArrayD::from_elem(IxDyn(shape), i)),
        FillValue::Float(f) => ArrayData::F64(ArrayD::from_elem(IxDyn(shape), f)),
    };
    cast(&filled, dtype)
}

/// Whether two arrays have the same dtype and shape and equal values, NaN equal to NaN: how
/// pandas' `equals` compares numpy columns.
pub(super) fn arrays_equal(a: &ArrayData, b: &ArrayData) -> bool {
    if a.dtype() != b.dtype() || a.shape() != b.shape() {
        return false;
    }
    match (a, b) {
        (ArrayData::F16(x), ArrayData::F16(y)) => x
            .iter()
            .zip(y)
            .all(|(p, q)| p == q || (p.is_nan() && q.is_nan())),
        (ArrayData::F32(x), ArrayData::F32(y)) => x
            .iter()
            .zip(y)
            .all(|(p, q)| p == q || (p.is_nan() && q.is_nan())),
        (ArrayData::F64(x), ArrayData::F64(y)) => x
            .iter()
            .zip(y)
            .all(|(p, q)| p == q || (p.is_nan() && q.is_nan())),
        _ => a == b,
    }
}

/// One element of a numpy `object` array as concatenation produces them: a value pandas could
/// not keep in a typed column (strings, booleans beside missing values, mixed kinds).
#[derive(Clone, Debug)]
pub(super) enum Obj {
    /// `NaN` / `None`.
    Missing,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(CompactString),
}

impl Obj {
    /// A fill value as a Python object.
    pub(super) fn of_fill(fill: FillValue) -> Obj {
        match fill {
            FillValue::Bool(b) => Obj::Bool(b),
            FillValue::Int(i) => Obj::Int(i.into()),
            FillValue::Float(f) => Obj::float(f),
        }
    }

    /// A float, `Missing` for NaN.
    pub(super) fn float(v: f64) -> Obj {
        if v.is_nan() {
            Obj::Missing
        } else {
            Obj::Float(v)
        }
    }

    fn number(&self) -> Option<Wide> {
        match self {
            Obj::Bool(b) => Some(Wide::I(*b as i128)),
            Obj::Int(i) => Some(Wide::I(*i)),
            Obj::Float(f) => Some(Wide::F(*f)),
            _ => None,
        }
    }

    /// The value's kind, for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Obj::Missing => "missing",
            Obj::Bool(_) => "bool",
            Obj::Int(_) => "int",
            Obj::Float(_) => "float",
            Obj::Str(_) => "str",
        }
    }
}

/// Python's `==` between the values (`True == 1 == 1.0`), with missing equal to missing as
/// pandas' `equals` has it.
impl PartialEq for Obj {
    fn eq(&self, other: &Obj) -> bool {
        match (self, other) {
            (Obj::Missing, Obj::Missing) => true,
            (Obj::Str(a), Obj::Str(b)) => a == b,
            _ => match (self.number(), other.number()) {
                (Some(Wide::I(a)), Some(Wide::I(b))) => a == b,
                (Some(Wide::F(a)), Some(Wide::F(b))) => a == b,
                (Some(Wide::I(a)), Some(Wide::F(b))) | (Some(Wide::F(b)), Some(Wide::I(a))) => {
                    a as f64 == b
                }
                _ => false,
            },
        }
    }
}

/// The elements of a 1-d or n-d array as Python objects (NaN becomes missing).
pub(super) fn to_objects(a: &ArrayData) -> ArrayD<Obj> {
    fn each<T>(a: &ArrayD<T>, f: impl Fn(&T) -> Obj) -> ArrayD<Obj> {
        a.map(f)
    }
    match a {
        ArrayData::Bool(x) => each(x, |&v| Obj::Bool(v)),
        ArrayData::I8(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::I16(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::I32(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::I64(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::U8(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::U16(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::U32(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::U64(x) => each(x, |&v| Obj::Int(v.into())),
        ArrayData::F16(x) => each(x, |&v| Obj::float(v.into())),
        ArrayData::F32(x) => each(x, |&v| Obj::float(v.into())),
        ArrayData::F64(x) => each(x, |&v| Obj::float(v)),
        ArrayData::String(x) => each(x, |v| Obj::Str(v.clone())),
    }
}

/// Python's ordering of two values when both are numbers or both strings (`sorted` of a
/// pandas index); `None` when Python cannot order them.
pub(super) fn py_order(a: &Obj, b: &Obj) -> Option<Ordering> {
    match (a, b) {
        (Obj::Str(x), Obj::Str(y)) => Some(x.cmp(y)),
        _ => match (a.number()?, b.number()?) {
            (Wide::I(x), Wide::I(y)) => Some(x.cmp(&y)),
            (Wide::F(x), Wide::F(y)) => x.partial_cmp(&y),
            (Wide::I(x), Wide::F(y)) => (x as f64).partial_cmp(&y),
            (Wide::F(x), Wide::I(y)) => x.partial_cmp(&(y as f64)),
        },
    }
}

/// `natsort.natsorted` of values (a stable sort): strings by their natural key, numbers by
/// value (`natsorted([3, 1.5, 2])`). Mixed strings and numbers put numbers first, as their keys
/// (`('', n)`) sort before text.
pub(super) fn natsorted(values: &mut [Obj]) {
    values.sort_by(|a, b| match (a, b) {
        (Obj::Str(x), Obj::Str(y)) => natural_cmp(x, y),
        (Obj::Str(x), _) => {
            if x.is_empty() {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (_, Obj::Str(y)) => {
            if y.is_empty() {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => py_order(a, b).unwrap_or(Ordering::Equal),
    });
}

/// Values of one kind back into a typed array: strings, or numbers of `numeric` dtype.
pub(super) fn from_objects(values: &[Obj], numeric: Option<DType>) -> Result<ArrayData> {
    if values.iter().all(|v| matches!(v, Obj::Str(_))) && numeric.is_none() {
        return Ok(ArrayData::from(
            values
                .iter()
                .map(|v| match v {
                    Obj::Str(s) => s.clone(),
                    _ => CompactString::default(),
                })
                .collect::<Vec<_>>(),
        ));
    }
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        out.push(match v.number() {
            Some(Wide::I(i)) => i as f64,
            Some(Wide::F(f)) => f,
            None => {
                return Err(Error::unsupported(format!(
                    "a mix of {} and number values where anndata writes one dtype",
                    v.kind()
                )))
            }
        });
    }
    let exact = values.iter().all(|v| !matches!(v, Obj::Float(_)));
    let dtype = numeric.unwrap_or(if exact { DType::I64 } else { DType::F64 });
    // Integers are cast from their exact values, not through f64.
    if exact && dtype.is_integer() {
        let ints: Vec<i128> = values
            .iter()
            .map(|v| match v.number() {
                Some(Wide::I(i)) => i,
                _ => 0,
            })
            .collect();
        let wide: ArrayD<i64> = ArrayD::from_shape_vec(
            IxDyn(&[ints.len()]),
            ints.iter().map(|&i| i as i64).collect(),
        )
        .map_err(|e| Error::invalid(e.to_string()))?;
        if ints.iter().all(|&i| i64::try_from(i).is_ok()) {
            return cast(&ArrayData::I64(wide), dtype);
        }
        let unsigned: Vec<u64> = ints.iter().map(|&i| i as u64).collect();
        return cast(&ArrayData::from(unsigned), dtype);
    }
    cast(&ArrayData::from(out), dtype)
}

/// Fails unless an array is 2-d (a matrix).
pub(super) fn check_2d(shape: &[usize]) -> Result<()> {
    if shape.len() != 2 {
        return Err(Error::unsupported(format!(
            "a {}-d array where a matrix is needed",
            shape.len()
        )));
    }
    Ok(())
}

/// Concatenates arrays of one dtype along `axis` (the other axes must agree).
pub(super) fn concat_same(arrays: &[ArrayData], axis: usize) -> Result<ArrayData> {
    macro_rules! go {
        ($($v:ident),*) => {
            match arrays.first() {
                $(Some(ArrayData::$v(_)) => {
                    let views: Vec<_> = arrays
                        .iter()
                        .map(|a| match a {
                            ArrayData::$v(x) => Ok(x.view()),
                            other => Err(Error::invalid(format!("dtype {} among {}", other.dtype(), stringify!($v)))),
                        })
                        .collect::<Result<_>>()?;
                    ArrayData::$v(ndarray::concatenate(ndarray::Axis(axis), &views).map_err(|e| {
                        Error::shape(format!("cannot concatenate arrays of shapes {:?}: {e}",
                            arrays.iter().map(|a| a.shape().to_vec()).collect::<Vec<_>>()))
                    })?)
                })*
                None => return Err(Error::invalid("nothing to concatenate")),
            }
        };
    }
    Ok(go!(
        Bool, I8, I16, I32, I64, U8, U16, U32, U64, F16, F32, F64, String
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Vec<Obj> {
        v.iter().map(|&s| Obj::Str(s.into())).collect()
    }

    /// `np.result_type(*dtypes)` in the venv, where promoting in pairs would differ.
    #[test]
    fn result_type_of_several_is_numpys() {
        use DType::*;
        let cases: [(&[DType], Option<DType>); 6] = [
            (&[U16, I8, F32], Some(F32)),
            (&[U16, I8, F16], Some(F32)),
            (&[I32, F32], Some(F64)),
            (&[U8, I8, U16], Some(I32)),
            (&[Bool, I8, F16], Some(F16)),
            (&[I8, String, F32], None),
        ];
        for (dtypes, want) in cases {
            assert_eq!(result_type_all(dtypes.iter().copied()), want, "{dtypes:?}");
        }
    }

    /// pandas' `maybe_promote(np.dtype(d), np.nan)[0]` in the venv.
    #[test]
    fn nan_promotion_matches_pandas() {
        use DType::*;
        let cases = [
            (F16, Some(F16)),
            (F32, Some(F32)),
            (F64, Some(F64)),
            (I8, Some(F64)),
            (I32, Some(F64)),
            (U8, Some(F64)),
            (Bool, None),
            (String, None),
        ];
        for (dtype, expected) in cases {
            assert_eq!(promote_for_nan(dtype), expected, "{dtype}");
        }
    }

    /// `natsorted(['a10', 'a2', 'b', '10', '2', '', 'A', 'a', '1a', 'a-1'])` in the venv.
    #[test]
    fn natural_order_matches_natsort() {
        let mut v = strs(&["a10", "a2", "b", "10", "2", "", "A", "a", "1a", "a-1"]);
        natsorted(&mut v);
        assert_eq!(
            v,
            strs(&["", "1a", "2", "10", "A", "a", "a2", "a10", "a-1", "b"])
        );
        let mut n = vec![Obj::Int(3), Obj::Float(1.5), Obj::Int(2), Obj::Int(10)];
        natsorted(&mut n);
        assert_eq!(
            n,
            vec![Obj::Float(1.5), Obj::Int(2), Obj::Int(3), Obj::Int(10)]
        );
    }

    /// `np.result_type` for the pairs that matter.
    #[test]
    fn numpy_promotion() {
        use DType::*;
        for (a, b, r) in [
            (I32, U32, Some(I64)),
            (I64, U64, Some(F64)),
            (I8, F32, Some(F32)),
            (I32, F32, Some(F64)),
            (Bool, I8, Some(I8)),
            (U8, I8, Some(I16)),
            (U8, I16, Some(I16)),
            (F32, F64, Some(F64)),
            (String, I8, None),
        ] {
            assert_eq!(result_type(a, b), r, "{a} + {b}");
            assert_eq!(result_type(b, a), r, "{b} + {a}");
        }
    }

    #[test]
    fn python_equality_of_objects() {
        assert_eq!(Obj::Bool(true), Obj::Int(1));
        assert_eq!(Obj::Int(2), Obj::Float(2.0));
        assert_ne!(Obj::Str("1".into()), Obj::Int(1));
        assert_eq!(Obj::float(f64::NAN), Obj::Missing);
    }
}
