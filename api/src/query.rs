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
/// Quotes around the column or the value are removed. A value that is not a category of a
/// categorical column is an error (it would select no row, or every row).
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

    /// Parses `COLUMN OP VALUE`: `OP` is the first `==` or `!=` outside quotes; the column and
    /// the value are bare text (trimmed) or wholly quoted with `'` or `"`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |at: usize, what: &str| {
            // Positions are counted in characters, from 1.
            let pos = s[..at].chars().count() + 1;
            Error::invalid(format!("query '{s}': {what} at character {pos}"))
        };
        let mut quote = None;
        let mut found = None;
        for (i, c) in s.char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if s[i..].starts_with("==") => {
                    found = Some((i, Op::Eq));
                    break;
                }
                None if s[i..].starts_with("!=") => {
                    found = Some((i, Op::Ne));
                    break;
                }
                None => {}
            }
        }
        let Some((at, op)) = found else {
            return Err(Error::invalid(format!(
                "query '{s}' must read COLUMN == VALUE or COLUMN != VALUE"
            )));
        };
        let column = operand(s, 0, at, "a column name before the operator", &bad)?;
        let value = operand(s, at + 2, s.len(), "a value after the operator", &bad)?;
        Ok(Query { column, op, value })
    }
}

/// The operand in `s[start..end]`: bare text (trimmed, no quotes, no operator) or one
/// quoted string. `expected` names it in the error when it is missing.
fn operand(
    s: &str,
    start: usize,
    end: usize,
    expected: &str,
    bad: &dyn Fn(usize, &str) -> Error,
) -> Result<String> {
    let text = &s[start..end];
    let first = start + (text.len() - text.trim_start().len());
    let t = text.trim();
    let Some(q) = t.chars().next() else {
        return Err(bad(first, &format!("expected {expected}")));
    };
    if q == '\'' || q == '"' {
        let Some(close) = t[1..].find(q) else {
            return Err(bad(first, &format!("unterminated quote {q}")));
        };
        if close + 2 < t.len() {
            return Err(bad(
                first + close + 2,
                "unexpected text after the quoted string",
            ));
        }
        return Ok(t[1..=close].to_string());
    }
    for (i, c) in t.char_indices() {
        if c == '\'' || c == '"' {
            return Err(bad(
                first + i,
                &format!("unexpected quote {c} (quote the whole operand)"),
            ));
        }
        if t[i..].starts_with("==") || t[i..].starts_with("!=") {
            return Err(bad(first + i, "unexpected second operator"));
        }
    }
    Ok(t.to_string())
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
                if !hits.contains(&true) {
                    return Err(self.not_a_category(&c.categories));
                }
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

    /// The error for a value absent from the categories: names a few of them.
    fn not_a_category(&self, categories: &ArrayData) -> Error {
        const SHOWN: usize = 8;
        let n = categories.len();
        let mut listed: Vec<String> = match categories {
            ArrayData::String(s) => s.iter().take(SHOWN).map(|c| format!("'{c}'")).collect(),
            other => other
                .to_f64()
                .unwrap_or_default()
                .iter()
                .take(SHOWN)
                .map(f64::to_string)
                .collect(),
        };
        if n > SHOWN {
            listed.push(format!("and {} more", n - SHOWN));
        }
        Error::invalid(format!(
            "query value '{}' is not a category of column '{}' (categories: {})",
            self.value,
            self.column,
            listed.join(", ")
        ))
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

    #[test]
    fn operands_are_bare_or_wholly_quoted() {
        let q: Query = "  cell_type=='B cell' ".parse().unwrap();
        assert_eq!((q.column(), q.value.as_str()), ("cell_type", "B cell"));
        let q: Query = "\"a == b\" != ''".parse().unwrap();
        assert_eq!((q.column(), q.op, q.value.as_str()), ("a == b", Op::Ne, ""));
        let q: Query = "name == \"it's\"".parse().unwrap();
        assert_eq!(q.value, "it's");
    }

    #[test]
    fn malformed_queries_name_the_position_and_what_was_expected() {
        for (query, expected) in [
            (
                "cell_type ==",
                "expected a value after the operator at character 13",
            ),
            (
                "cell_type ==   ",
                "expected a value after the operator at character 16",
            ),
            (
                " == B",
                "expected a column name before the operator at character 2",
            ),
            (
                "cell_type == 'B cell",
                "unterminated quote ' at character 14",
            ),
            (
                "cell_type == 'B' x",
                "unexpected text after the quoted string at character 17",
            ),
            (
                "cell_type == B'",
                "unexpected quote ' (quote the whole operand) at character 15",
            ),
            ("a == b == c", "unexpected second operator at character 8"),
            ("a != b == c", "unexpected second operator at character 8"),
        ] {
            let e = query.parse::<Query>().unwrap_err().to_string();
            assert_eq!(e, format!("invalid argument: query '{query}': {expected}"));
        }
    }

    #[test]
    fn a_value_that_is_not_a_category_is_an_error() {
        for query in ["cell type == 'NK cell'", "cell type != NK"] {
            let e = query.parse::<Query>().unwrap().mask(&frame()).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid argument: query value '{}' is not a category of column 'cell type' \
                     (categories: 'B cell', 'T cell')",
                    query.parse::<Query>().unwrap().value
                )
            );
        }
        let many: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        let mut df = DataFrame::from_index(vec!["a".into()]);
        let cats = Categorical::new(vec![3], ArrayData::from(many), false).unwrap();
        df.insert("k", Column::Categorical(cats)).unwrap();
        let e = "k == c99".parse::<Query>().unwrap().mask(&df).unwrap_err();
        assert!(e.to_string().ends_with("'c6', 'c7', and 12 more)"), "{e}");
        assert_eq!(
            "k == c3".parse::<Query>().unwrap().mask(&df).unwrap(),
            [true]
        );
    }
}
