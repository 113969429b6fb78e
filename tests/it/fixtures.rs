//! Every fixture, current and legacy, read with annpage and compared with the summary that the
//! real anndata made of the same file (`fixtures/expected/<name>.json`, see
//! `fixtures/summarize.py` for the schema).
//!
//! One test reads everything and reports every failing file (with every difference found in
//! it) in a single message; a second one writes each file back with annpage and checks that
//! reading the copy gives the same summary.

use std::collections::BTreeSet;
use std::fmt::{Debug, Display};
use std::path::{Path, PathBuf};

use annpage_engine::data::{
    ArrayData, Column, DType, DataFrame, Element, Matrix, NullableKind, RawData, RawNode, Scalar,
    SparseFormat, SparseMatrix,
};
use annpage_engine::file::read_h5ad;
use annpage_engine::format::{write_h5ad, AnnDataElements, WriteOptions};
use annpage_tests::fixtures_dir;
use serde_json::Value;

/// How many leading values the summaries spell out (`HEAD` in `summarize.py`).
const HEAD: usize = 5;

/// Relative tolerance for sums (summation order differs between numpy and us).
const REL_TOL: f64 = 1e-6;

/// The fixture files: `fixtures/*.h5ad` and `fixtures/legacy/*.h5ad`, sorted.
fn fixture_files() -> Vec<PathBuf> {
    let root = fixtures_dir();
    let mut files: Vec<PathBuf> = [root.clone(), root.join("legacy")]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .map(|entry| entry.expect("directory entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "h5ad"))
                .collect::<Vec<_>>()
        })
        .collect();
    files.sort();
    files
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .expect("fixture has a name")
        .to_string_lossy()
        .into_owned()
}

fn expected_path(path: &Path) -> PathBuf {
    fixtures_dir()
        .join("expected")
        .join(format!("{}.json", file_stem(path)))
}

fn load_expected(path: &Path) -> Result<Value, String> {
    let json = expected_path(path);
    let text = std::fs::read_to_string(&json).map_err(|e| {
        format!(
            "no expected summary {} ({e}); run fixtures/generate.py",
            json.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", json.display()))
}

/// Collects every difference between a summary and what annpage read.
#[derive(Default)]
struct Check {
    problems: Vec<String>,
}

impl Check {
    fn fail(&mut self, at: &str, msg: impl Display) {
        self.problems.push(format!("{at}: {msg}"));
    }

    fn eq<T: PartialEq + Debug>(&mut self, at: &str, what: &str, expected: T, actual: T) {
        if expected != actual {
            self.fail(at, format!("{what}: expected {expected:?}, got {actual:?}"));
        }
    }

    fn values(&mut self, at: &str, what: &str, expected: &Value, actual: &[Value]) {
        let Some(expected) = expected.as_array() else {
            return self.fail(at, format!("{what}: summary has no list"));
        };
        let same = expected.len() == actual.len()
            && expected.iter().zip(actual).all(|(e, a)| same_value(e, a));
        if !same {
            self.fail(
                at,
                format!(
                    "{what}: expected {}, got {}",
                    Value::from(expected.clone()),
                    Value::from(actual.to_vec())
                ),
            );
        }
    }

    fn number(&mut self, at: &str, what: &str, expected: &Value, actual: f64) {
        if !same_value(expected, &float_json(actual)) {
            self.fail(at, format!("{what}: expected {expected}, got {actual}"));
        }
    }

    fn keys<'a>(
        &mut self,
        at: &str,
        expected: &'a Value,
        actual: impl Iterator<Item = &'a String>,
    ) -> Vec<(&'a String, &'a Value)> {
        let Some(expected) = expected.as_object() else {
            self.fail(at, "summary has no key map");
            return Vec::new();
        };
        let want: BTreeSet<&String> = expected.keys().collect();
        let got: BTreeSet<&String> = actual.collect();
        if want != got {
            self.fail(at, format!("keys: expected {want:?}, got {got:?}"));
        }
        expected
            .iter()
            .filter(|(k, _)| got.contains(k))
            .collect::<Vec<_>>()
    }
}

/// Equality of JSON values where numbers compare with a relative tolerance.
fn same_value(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => {
            if let (Some(e), Some(a)) = (e.as_i64(), a.as_i64()) {
                return e == a;
            }
            if let (Some(e), Some(a)) = (e.as_u64(), a.as_u64()) {
                return e == a;
            }
            let (e, a) = (
                e.as_f64().unwrap_or(f64::NAN),
                a.as_f64().unwrap_or(f64::NAN),
            );
            e == a || (e - a).abs() <= REL_TOL * e.abs().max(a.abs()).max(1e-300)
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| same_value(x, y))
        }
        _ => expected == actual,
    }
}

/// A float as the summaries write it: NaN as null, infinities as "inf" / "-inf".
fn float_json(v: f64) -> Value {
    if v.is_nan() {
        Value::Null
    } else if v.is_infinite() {
        Value::from(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        Value::from(v)
    }
}

/// The first `n` values of an array in row-major order, as JSON.
fn head(a: &ArrayData, n: usize) -> Vec<Value> {
    match a {
        ArrayData::Bool(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::I8(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::I16(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::I32(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::I64(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::U8(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::U16(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::U32(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::U64(x) => x.iter().take(n).map(|&v| Value::from(v)).collect(),
        ArrayData::F32(x) => x.iter().take(n).map(|&v| float_json(v as f64)).collect(),
        ArrayData::F64(x) => x.iter().take(n).map(|&v| float_json(v)).collect(),
        ArrayData::String(x) => x.iter().take(n).map(|v| Value::from(v.as_str())).collect(),
    }
}

/// One value of a 1-d array, as JSON.
fn value_at(a: &ArrayData, i: usize) -> Value {
    head(&a.select(0, &[i]), 1).pop().unwrap_or(Value::Null)
}

/// Whether a numpy dtype name found in a summary is a string dtype (`object` for
/// variable-length strings, `<U7` / `|S7` for fixed-length ones from legacy files).
fn is_string_dtype(name: &str) -> bool {
    name == "object" || name == "str" || name.starts_with("<U") || name.starts_with("|S")
}

/// Compares a numpy dtype name from a summary with an annpage dtype.
fn check_dtype(c: &mut Check, at: &str, what: &str, expected: &Value, actual: DType) {
    let want = expected.as_str().unwrap_or("?");
    let ok = if actual == DType::String {
        is_string_dtype(want)
    } else {
        want == actual.name()
    };
    if !ok {
        c.fail(at, format!("{what}: expected {want}, got {actual}"));
    }
}

fn check_names(c: &mut Check, at: &str, expected: &Value, index: &ArrayData) {
    c.eq(
        at,
        "count",
        expected["count"].as_u64(),
        Some(index.len() as u64),
    );
    c.values(at, "first names", &expected["first"], &head(index, HEAD));
}

/// The pandas name of a nullable column's dtype (`Int64`, `UInt8`, `boolean`, `string`).
fn nullable_dtype_name(kind: NullableKind, values: &ArrayData) -> String {
    match kind {
        NullableKind::Boolean => "boolean".to_owned(),
        NullableKind::String => "string".to_owned(),
        NullableKind::Integer => {
            let name = values.dtype().name();
            match name.strip_prefix('u') {
                Some(rest) => format!("UInt{}", rest.trim_start_matches("int")),
                None => format!("Int{}", name.trim_start_matches("int")),
            }
        }
    }
}

/// The first values of a column (missing ones as null) and its number of missing values.
fn column_view(col: &Column) -> (Vec<Value>, usize) {
    match col {
        Column::Array(a) => {
            let missing = match a.dtype() {
                DType::F32 | DType::F64 => a
                    .to_f64()
                    .map_or(0, |v| v.iter().filter(|x| x.is_nan()).count()),
                _ => 0,
            };
            (head(a, HEAD), missing)
        }
        Column::Categorical(cat) => {
            let values = cat
                .codes
                .iter()
                .take(HEAD)
                .map(|&code| match usize::try_from(code) {
                    Ok(i) if i < cat.categories.len() => value_at(&cat.categories, i),
                    _ => Value::Null,
                })
                .collect();
            (values, cat.codes.iter().filter(|&&c| c < 0).count())
        }
        Column::Nullable(n) => {
            let values = head(n.values(), HEAD)
                .into_iter()
                .zip(n.mask())
                .map(|(v, &missing)| if missing { Value::Null } else { v })
                .collect();
            (values, n.mask().iter().filter(|&&m| m).count())
        }
    }
}

fn check_columns(c: &mut Check, at: &str, expected: &Value, df: &DataFrame) {
    let Some(expected) = expected.as_array() else {
        return c.fail(at, "summary has no column list");
    };
    let want: Vec<&str> = expected.iter().filter_map(|e| e["name"].as_str()).collect();
    let got: Vec<&str> = df.columns().keys().map(String::as_str).collect();
    if want != got {
        c.fail(at, format!("columns: expected {want:?}, got {got:?}"));
    }
    for e in expected {
        let name = e["name"].as_str().unwrap_or("?");
        let Some(col) = df.column(name) else { continue };
        let at = format!("{at}['{name}']");
        let dtype = e["dtype"].as_str().unwrap_or("?");
        match col {
            Column::Array(a) => check_dtype(c, &at, "dtype", &e["dtype"], a.dtype()),
            Column::Categorical(cat) => {
                c.eq(&at, "dtype", dtype, "category");
                check_dtype(
                    c,
                    &at,
                    "categories dtype",
                    &e["categories_dtype"],
                    cat.categories.dtype(),
                );
                c.eq(&at, "ordered", e["ordered"].as_bool(), Some(cat.ordered));
                c.eq(
                    &at,
                    "number of categories",
                    e["n_categories"].as_u64(),
                    Some(cat.categories.len() as u64),
                );
            }
            Column::Nullable(n) => c.eq(
                &at,
                "dtype",
                dtype.to_owned(),
                nullable_dtype_name(n.kind(), n.values()),
            ),
        }
        let (values, missing) = column_view(col);
        c.values(&at, "values", &e["values"], &values);
        c.eq(
            &at,
            "missing values",
            e["n_missing"].as_u64(),
            Some(missing as u64),
        );
    }
}

/// Sum of the finite values and counts of NaN, +inf, -inf.
fn finite_sum(values: impl Iterator<Item = f64>) -> (f64, [u64; 3]) {
    let mut sum = 0.0;
    let mut counts = [0u64; 3];
    for v in values {
        if v.is_nan() {
            counts[0] += 1;
        } else if v == f64::INFINITY {
            counts[1] += 1;
        } else if v == f64::NEG_INFINITY {
            counts[2] += 1;
        } else {
            sum += v;
        }
    }
    (sum, counts)
}

/// Per-row finite sums of the first `n` rows of a sparse matrix.
fn sparse_row_sums(m: &SparseMatrix, n: usize) -> Vec<f64> {
    let rows = n.min(m.shape().0);
    let mut sums = vec![0.0; rows];
    let data = m.data().to_f64().unwrap_or_default();
    let data = data.as_slice().unwrap_or(&[]);
    for (major, w) in m.indptr().windows(2).enumerate() {
        let (start, end) = (w[0] as usize, w[1] as usize);
        let slice = data[start..end].iter().zip(&m.indices()[start..end]);
        for (&value, &minor) in slice {
            let row = match m.format() {
                SparseFormat::Csr => major,
                SparseFormat::Csc => minor as usize,
            };
            if row < rows && value.is_finite() {
                sums[row] += value;
            }
        }
    }
    sums
}

fn check_matrix(c: &mut Check, at: &str, expected: &Value, m: &Matrix) {
    let (kind, dtype, shape, nnz) = match m {
        Matrix::Dense(a) => ("dense", a.dtype(), a.shape().to_vec(), None),
        Matrix::Sparse(s) => (
            match s.format() {
                SparseFormat::Csr => "csr",
                SparseFormat::Csc => "csc",
            },
            s.data().dtype(),
            vec![s.shape().0, s.shape().1],
            Some(s.nnz() as u64),
        ),
    };
    c.eq(at, "kind", expected["kind"].as_str(), Some(kind));
    check_dtype(c, at, "dtype", &expected["dtype"], dtype);
    c.eq(at, "shape", shape_of(&expected["shape"]), Some(shape));
    c.eq(at, "nnz", expected["nnz"].as_u64(), nnz);
    let (values, row_sums) = match m {
        Matrix::Dense(a) => {
            let f = a.to_f64().unwrap_or_default();
            let rows: Vec<f64> = f
                .outer_iter()
                .take(HEAD)
                .map(|row| finite_sum(row.iter().copied()).0)
                .collect();
            (f.iter().copied().collect::<Vec<_>>(), rows)
        }
        Matrix::Sparse(s) => {
            let f = s.data().to_f64().unwrap_or_default();
            (f.iter().copied().collect(), sparse_row_sums(s, HEAD))
        }
    };
    let (sum, nonfinite) = finite_sum(values.into_iter());
    c.number(at, "sum", &expected["sum"], sum);
    let row_sums: Vec<Value> = row_sums.into_iter().map(Value::from).collect();
    c.values(at, "row sums", &expected["row_sums"], &row_sums);
    let nf = &expected["nonfinite"];
    c.eq(
        at,
        "NaN/+inf/-inf counts",
        [nf["nan"].as_u64(), nf["inf"].as_u64(), nf["-inf"].as_u64()],
        nonfinite.map(Some),
    );
}

fn shape_of(v: &Value) -> Option<Vec<usize>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_u64().map(|n| n as usize))
        .collect()
}

fn scalar_json(s: &Scalar) -> (&'static str, Value) {
    match s {
        Scalar::Bool(v) => ("bool", Value::from(*v)),
        Scalar::I8(v) => ("int", Value::from(*v)),
        Scalar::I16(v) => ("int", Value::from(*v)),
        Scalar::I32(v) => ("int", Value::from(*v)),
        Scalar::I64(v) => ("int", Value::from(*v)),
        Scalar::U8(v) => ("int", Value::from(*v)),
        Scalar::U16(v) => ("int", Value::from(*v)),
        Scalar::U32(v) => ("int", Value::from(*v)),
        Scalar::U64(v) => ("int", Value::from(*v)),
        Scalar::F32(v) => ("float", float_json(*v as f64)),
        Scalar::F64(v) => ("float", float_json(*v)),
        Scalar::String(v) => ("string", Value::from(v.as_str())),
    }
}

fn encoding_type(node: &RawNode) -> Option<String> {
    node.attrs()
        .get("encoding-type")
        .and_then(Scalar::from_array)
        .and_then(|s| match s {
            Scalar::String(t) => Some(t),
            _ => None,
        })
}

/// Compares one element of a mapping slot with its summary (see `element()` in
/// `summarize.py`).
fn check_element(c: &mut Check, at: &str, expected: &Value, elem: &Element) {
    let kind = expected["kind"].as_str().unwrap_or("?");
    match (kind, elem) {
        ("dict", Element::Dict(m)) => {
            for (k, e) in c.keys(at, &expected["items"], m.keys()) {
                check_element(c, &format!("{at}/{k}"), e, &m[k.as_str()]);
            }
        }
        ("null", Element::Opaque(node)) => {
            c.eq(
                at,
                "encoding-type",
                Some("null".to_owned()),
                encoding_type(node),
            );
        }
        ("string", Element::Scalar(s @ Scalar::String(_))) => {
            c.values(
                at,
                "value",
                &Value::from(vec![expected["value"].clone()]),
                &[scalar_json(s).1],
            );
        }
        ("scalar", Element::Scalar(s)) => {
            let (family, value) = scalar_json(s);
            c.eq(at, "type", expected["type"].as_str(), Some(family));
            c.values(
                at,
                "value",
                &Value::from(vec![expected["value"].clone()]),
                &[value],
            );
        }
        ("array", Element::Array(a)) => {
            check_dtype(c, at, "dtype", &expected["dtype"], a.dtype());
            c.eq(
                at,
                "shape",
                shape_of(&expected["shape"]),
                Some(a.shape().to_vec()),
            );
            c.values(at, "values", &expected["values"], &head(a, HEAD));
        }
        ("sparse", Element::Sparse(s)) => {
            let format = match s.format() {
                SparseFormat::Csr => "csr",
                SparseFormat::Csc => "csc",
            };
            c.eq(at, "format", expected["format"].as_str(), Some(format));
            check_dtype(c, at, "dtype", &expected["dtype"], s.data().dtype());
            c.eq(
                at,
                "shape",
                shape_of(&expected["shape"]),
                Some(vec![s.shape().0, s.shape().1]),
            );
            c.eq(at, "nnz", expected["nnz"].as_u64(), Some(s.nnz() as u64));
            let data = s.data().to_f64().unwrap_or_default();
            c.number(
                at,
                "sum",
                &expected["sum"],
                finite_sum(data.iter().copied()).0,
            );
        }
        ("dataframe", Element::DataFrame(df)) => {
            c.eq(
                at,
                "shape",
                shape_of(&expected["shape"]),
                Some(vec![df.nrows(), df.columns().len()]),
            );
            check_names(c, &format!("{at}.index"), &expected["index"], df.index());
            check_columns(c, at, &expected["columns"], df);
        }
        ("categorical", Element::Categorical(cat)) => {
            c.eq(
                at,
                "length",
                shape_of(&expected["shape"]),
                Some(vec![cat.codes.len()]),
            );
            check_dtype(
                c,
                at,
                "categories dtype",
                &expected["categories_dtype"],
                cat.categories.dtype(),
            );
            c.eq(
                at,
                "ordered",
                expected["ordered"].as_bool(),
                Some(cat.ordered),
            );
            c.eq(
                at,
                "number of categories",
                expected["n_categories"].as_u64(),
                Some(cat.categories.len() as u64),
            );
            let (values, _) = column_view(&Column::Categorical(cat.clone()));
            c.values(at, "values", &expected["values"], &values);
        }
        ("nullable", Element::Nullable(n)) => {
            c.eq(
                at,
                "dtype",
                expected["dtype"].as_str().map(str::to_owned),
                Some(nullable_dtype_name(n.kind(), n.values())),
            );
            c.eq(
                at,
                "length",
                shape_of(&expected["shape"]),
                Some(vec![n.values().len()]),
            );
            let (values, _) = column_view(&Column::Nullable(n.clone()));
            c.values(at, "values", &expected["values"], &values);
        }
        (
            "rec-array",
            Element::Opaque(RawNode::Dataset {
                data: RawData::Compound { shape, fields },
                ..
            }),
        ) => {
            c.eq(
                at,
                "shape",
                shape_of(&expected["shape"]),
                Some(shape.clone()),
            );
            let want: Option<Vec<String>> = expected["fields"].as_array().map(|f| {
                f.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            });
            c.eq(
                at,
                "fields",
                want,
                Some(fields.iter().map(|(n, _)| n.clone()).collect()),
            );
        }
        ("awkward", Element::Opaque(node @ RawNode::Group { .. })) => {
            c.eq(
                at,
                "encoding-type",
                Some("awkward-array".to_owned()),
                encoding_type(node),
            );
            c.eq(
                at,
                "length",
                expected["length"].as_u64().map(|n| n as usize),
                node.declared_len(),
            );
        }
        (kind, elem) => c.fail(at, format!("expected a {kind}, got a {}", elem.kind())),
    }
}

fn check_mapping<'a>(
    c: &mut Check,
    at: &str,
    expected: &Value,
    actual: impl Iterator<Item = (&'a String, Element)>,
) {
    let actual: Vec<(&String, Element)> = actual.collect();
    for (k, e) in c.keys(at, expected, actual.iter().map(|(k, _)| *k)) {
        if let Some((_, elem)) = actual.iter().find(|(name, _)| *name == k) {
            check_element(c, &format!("{at}/{k}"), e, elem);
        }
    }
}

/// Every difference between a summary and the elements annpage read.
fn compare(expected: &Value, adata: &AnnDataElements) -> Vec<String> {
    let mut c = Check::default();
    c.eq(
        "/",
        "shape",
        shape_of(&expected["shape"]),
        Some(vec![adata.obs.nrows(), adata.var.nrows()]),
    );
    check_names(
        &mut c,
        "obs_names",
        &expected["obs_names"],
        adata.obs.index(),
    );
    check_names(
        &mut c,
        "var_names",
        &expected["var_names"],
        adata.var.index(),
    );
    check_columns(&mut c, "/obs", &expected["obs"], &adata.obs);
    check_columns(&mut c, "/var", &expected["var"], &adata.var);
    match (&expected["X"], &adata.x) {
        (Value::Null, None) => {}
        (Value::Null, Some(_)) => c.fail("/X", "expected no X, got one"),
        (_, None) => c.fail("/X", "expected an X, got none"),
        (e, Some(x)) => check_matrix(&mut c, "/X", e, x),
    }
    let mappings = [
        ("/obsm", &adata.obsm),
        ("/varm", &adata.varm),
        ("/uns", &adata.uns),
    ];
    for (at, m) in mappings {
        let key = &at[1..];
        check_mapping(
            &mut c,
            at,
            &expected[key],
            m.iter().map(|(k, v)| (k, v.clone())),
        );
    }
    let matrices = [
        ("/obsp", &adata.obsp),
        ("/varp", &adata.varp),
        ("/layers", &adata.layers),
    ];
    for (at, m) in matrices {
        let key = &at[1..];
        check_mapping(
            &mut c,
            at,
            &expected[key],
            m.iter().map(|(k, v)| (k, Element::from(v.clone()))),
        );
    }
    match (&expected["raw"], &adata.raw) {
        (Value::Null, None) => {}
        (Value::Null, Some(_)) => c.fail("/raw", "expected no raw, got one"),
        (_, None) => c.fail("/raw", "expected a raw, got none"),
        (e, Some(raw)) => {
            c.eq(
                "/raw",
                "shape",
                shape_of(&e["shape"]),
                Some(vec![raw.x.shape().0, raw.var.nrows()]),
            );
            check_names(&mut c, "/raw/var_names", &e["var_names"], raw.var.index());
            check_columns(&mut c, "/raw/var", &e["var"], &raw.var);
            check_mapping(
                &mut c,
                "/raw/varm",
                &e["varm"],
                raw.varm.iter().map(|(k, v)| (k, v.clone())),
            );
            check_matrix(&mut c, "/raw/X", &e["X"], &raw.x);
        }
    }
    c.problems
}

/// Reads every fixture with `read` and compares it with its summary; panics with one message
/// naming every failing file.
fn check_all(what: &str, read: impl Fn(&Path) -> Result<AnnDataElements, String>) {
    let files = fixture_files();
    assert!(
        files.len() >= 25,
        "expected the whole fixture set, found only {} files under {}",
        files.len(),
        fixtures_dir().display()
    );
    assert!(
        files
            .iter()
            .any(|f| f.parent().is_some_and(|p| p.ends_with("legacy"))),
        "no legacy fixtures found"
    );
    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .strip_prefix(fixtures_dir())
            .unwrap_or(file)
            .display()
            .to_string();
        let problems = match load_expected(file) {
            Err(e) => vec![e],
            Ok(expected) => {
                let mut problems = Vec::new();
                let recorded = expected["file"].as_str().unwrap_or("?");
                if Some(recorded) != file.file_name().and_then(|n| n.to_str()) {
                    problems.push(format!("summary was made for '{recorded}'"));
                }
                match read(file) {
                    Ok(adata) => problems.extend(compare(&expected, &adata)),
                    Err(e) => problems.push(format!("cannot read: {e}")),
                }
                problems
            }
        };
        if !problems.is_empty() {
            failures.push(format!("{name}:\n    {}", problems.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {} fixtures differ from anndata's reading:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fixture_reads_as_anndata_reads_it() {
    check_all("read_h5ad", |path| {
        read_h5ad(path).map_err(|e| e.to_string())
    });
}

#[test]
fn every_fixture_survives_a_write_and_read_back() {
    let dir = tempfile::tempdir().expect("temporary directory");
    check_all("read_h5ad → write_h5ad → read_h5ad", |path| {
        let adata = read_h5ad(path).map_err(|e| format!("first read: {e}"))?;
        let out = dir.path().join(path.file_name().expect("file name"));
        write_h5ad(&out, &adata, &WriteOptions::default()).map_err(|e| format!("write: {e}"))?;
        read_h5ad(&out).map_err(|e| format!("reading the copy: {e}"))
    });
}

#[test]
fn every_summary_has_its_fixture() {
    let files: BTreeSet<String> = fixture_files().iter().map(|p| file_stem(p)).collect();
    let dir = fixtures_dir().join("expected");
    let orphans: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| file_stem(&p))
        .filter(|stem| !files.contains(stem))
        .collect();
    assert!(
        orphans.is_empty(),
        "summaries without a fixture in {}: {orphans:?}",
        dir.display()
    );
}

#[test]
fn summaries_compare_numbers_with_tolerance_and_names_missing_values() {
    // The comparison helpers themselves: a wrong helper would let every fixture pass.
    assert!(same_value(&Value::from(1.0), &Value::from(1.0 + 1e-9)));
    assert!(!same_value(&Value::from(1.0), &Value::from(1.001)));
    assert!(same_value(&Value::from(u64::MAX), &Value::from(u64::MAX)));
    assert!(!same_value(&Value::from(3), &Value::from(4)));
    assert_eq!(float_json(f64::NAN), Value::Null);
    assert_eq!(float_json(f64::NEG_INFINITY), Value::from("-inf"));
    let a = ArrayData::from(vec![1.5f32, f32::NAN, f32::INFINITY]);
    assert_eq!(
        head(&a, 5),
        vec![Value::from(1.5), Value::Null, Value::from("inf")]
    );
    assert_eq!(
        nullable_dtype_name(NullableKind::Integer, &ArrayData::from(vec![1u8])),
        "UInt8"
    );
    assert_eq!(
        nullable_dtype_name(NullableKind::Integer, &ArrayData::from(vec![1i32])),
        "Int32"
    );
    let m = SparseMatrix::new(
        SparseFormat::Csc,
        (2, 2),
        vec![0, 1, 3],
        vec![1, 0, 1],
        ArrayData::from(vec![1.0f64, 2.0, 4.0]),
    )
    .expect("valid matrix");
    // [[0, 2], [1, 4]]
    assert_eq!(sparse_row_sums(&m, 5), vec![2.0, 5.0]);
    assert!(is_string_dtype("<U7") && is_string_dtype("object") && !is_string_dtype("int8"));
}
