//! Row filters on a data frame column: `cell_type == "B cell"`, `n_genes != 0`.

use std::fmt;

use annpage_engine::data::{ArrayData, Column, DataFrame};
use annpage_engine::{Error, Result};

/// The comparison of a [`Query`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// A filter `COLUMN == VALUE` or `COLUMN != VALUE` over a data frame's rows.
///
/// The value is compared as text with string and categorical columns (missing values never
/// match `==`), as a number with numeric columns and as `True`/`False` with bool columns.
/// Quotes around the value are removed.
///
/// ```
/// use annpage::query::Query;
/// use annpage::data::{ArrayData, Column, DataFrame};
///
/// let mut df = DataFrame::from_index(vec!["a".into(), "b".into(), "c".into()]);
/// df.insert("n", Column::Array(ArrayData::from(vec![1i64, 2, 1]))).unwrap();
/// let q: Query = "n == 1".parse().unwrap();
/// assert_eq!(q.mask(&df).unwrap(), vec![true, false, true]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    column: String,
    op: Op,
    value: String,
}

impl std::str::FromStr for Query {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (pos, op, len) = match (s.find("=="), s.find("!=")) {
            (Some(p), _) => (p, Op::Eq, 2),
            (None, Some(p)) => (p, Op::Ne, 2),
            _ => {
                return Err(Error::invalid(format!(
                    "query '{s}' must read COLUMN == VALUE or COLUMN != VALUE"
                )))
            }
        };
        let column = unquote(s[..pos].trim());
        let value = unquote(s[pos + len..].trim());
        if column.is_empty() {
            return Err(Error::invalid(format!("query '{s}' names no column")));
        }
        Ok(Query { column, op, value })
    }
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return t[1..t.len() - 1].to_string();
        }
    }
    t.to_string()
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "==",
            Op::Ne => "!=",
        };
        write!(f, "{} {op} {:?}", self.column, self.value)
    }
}

impl Query {
    /// The column the query reads.
    pub fn column(&self) -> &str {
        &self.column
    }

    /// `true` for every row that passes the filter.
    pub fn mask(&self, df: &DataFrame) -> Result<Vec<bool>> {
        let col = df.column(&self.column).ok_or_else(|| {
            Error::invalid(format!(
                "query column '{}' is not in the frame (columns: {})",
                self.column,
                df.columns().keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let eq: Vec<Option<bool>> = match col {
            Column::Array(a) => self.compare_array(a)?.into_iter().map(Some).collect(),
            Column::Categorical(c) => {
                let hits = self.compare_array(&c.categories)?;
                c.codes
                    .iter()
                    .map(|&code| usize::try_from(code).ok().map(|i| hits[i]))
                    .collect()
            }
            Column::Nullable(n) => self
                .compare_array(n.values())?
                .into_iter()
                .zip(n.mask())
                .map(|(hit, &missing)| (!missing).then_some(hit))
                .collect(),
        };
        Ok(eq
            .into_iter()
            .map(|e| match (self.op, e) {
                (Op::Eq, Some(hit)) => hit,
                (Op::Ne, Some(hit)) => !hit,
                (Op::Eq, None) => false,
                (Op::Ne, None) => true,
            })
            .collect())
    }

    fn compare_array(&self, a: &ArrayData) -> Result<Vec<bool>> {
        let v = &self.value;
        Ok(match a {
            ArrayData::String(s) => s.iter().map(|x| x == v).collect(),
            ArrayData::Bool(b) => {
                let want = match v.as_str() {
                    "True" | "true" | "1" => true,
                    "False" | "false" | "0" => false,
                    _ => {
                        return Err(Error::invalid(format!(
                            "column '{}' is bool; '{v}' is not True or False",
                            self.column
                        )))
                    }
                };
                b.iter().map(|&x| x == want).collect()
            }
            other => {
                let want: f64 = v.parse().map_err(|_| {
                    Error::invalid(format!(
                        "column '{}' is {}; '{v}' is not a number",
                        self.column,
                        other.dtype()
                    ))
                })?;
                let values = other.to_f64().unwrap_or_default();
                values.iter().map(|&x| x == want).collect()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use annpage_engine::data::{Categorical, Nullable, NullableKind};

    fn frame() -> DataFrame {
        let mut df = DataFrame::from_index(vec!["a".into(), "b".into(), "c".into(), "d".into()]);
        df.insert(
            "cell type",
            Column::Categorical(
                Categorical::new(
                    vec![0, 1, -1, 0],
                    ArrayData::from(vec!["B cell", "T cell"]),
                    false,
                )
                .unwrap(),
            ),
        )
        .unwrap();
        df.insert(
            "ok",
            Column::Array(ArrayData::from(vec![true, false, true, true])),
        )
        .unwrap();
        df.insert(
            "score",
            Column::Array(ArrayData::from(vec![0.5f32, 1.0, 0.5, 2.0])),
        )
        .unwrap();
        df.insert(
            "batch",
            Column::Nullable(
                Nullable::new(
                    NullableKind::Integer,
                    ArrayData::from(vec![1i64, 1, 0, 2]),
                    vec![false, false, true, false],
                )
                .unwrap(),
            ),
        )
        .unwrap();
        df
    }

    fn mask(q: &str) -> Vec<bool> {
        q.parse::<Query>().unwrap().mask(&frame()).unwrap()
    }

    #[test]
    fn categorical_strings_bools_numbers_and_nullables() {
        assert_eq!(
            mask("'cell type' == \"B cell\""),
            vec![true, false, false, true]
        );
        assert_eq!(mask("cell type != B cell"), vec![false, true, true, false]);
        assert_eq!(mask("ok == True"), vec![true, false, true, true]);
        assert_eq!(mask("score == 0.5"), vec![true, false, true, false]);
        assert_eq!(mask("batch == 1"), vec![true, true, false, false]);
        assert_eq!(mask("batch != 1"), vec![false, false, true, true]);
    }

    #[test]
    fn bad_queries_say_what_is_wrong() {
        assert!("n > 1"
            .parse::<Query>()
            .unwrap_err()
            .to_string()
            .contains("COLUMN == VALUE"));
        let e = "nope == 1"
            .parse::<Query>()
            .unwrap()
            .mask(&frame())
            .unwrap_err();
        assert!(e.to_string().contains("'nope' is not in the frame"), "{e}");
        let e = "score == high"
            .parse::<Query>()
            .unwrap()
            .mask(&frame())
            .unwrap_err();
        assert!(e.to_string().contains("not a number"), "{e}");
    }
}
