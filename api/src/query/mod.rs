//! Row filters in the grammar of pandas' `DataFrame.query`: `n_genes > 200 and total_counts <
//! 10000`, `cell_type in ["B", "T"]`, `not (batch == 2 or ok)`.
//!
//! Text is parsed into an `ast::Expr` (`parse.rs`), then evaluated over a frame's columns
//! into a boolean mask (`eval.rs`) with pandas' rules for missing values.

mod ast;
mod eval;
mod parse;

use std::fmt;

use annpage_engine::data::DataFrame;
use annpage_engine::{Error, Result};

use ast::Expr;

/// A filter over the rows of a data frame (`obs` or `var`), in the subset of pandas'
/// `DataFrame.query` grammar that users write:
///
/// - comparisons `==`, `!=`, `<`, `<=`, `>`, `>=` between a column and a value (or two
///   columns), chained as in Python (`0 < n <= 10`);
/// - `COL in [v, …]` and `COL not in [v, …]`;
/// - `and`/`&`, `or`/`|`, `not`/`~`, parentheses; a bool column alone is a condition;
/// - column names bare (`n_genes`) or in backquotes (`` `cell type` ``); `index` is the row
///   names; values are numbers, quoted strings (`'B cell'` or `"B cell"`) or `True`/`False`.
///   A bare word that is no column is read as text (`cell_type == B`), unlike pandas.
///
/// Evaluation follows pandas' `query`: a missing value of a nullable integer or bool column
/// makes its comparison unknown (three-valued `and`/`or`/`not`; unknown rows are left out at
/// the end), and so does a missing string in an ordering (`<`, `>=`…), while it is unequal to
/// every value (`==` false, `!=` true); a missing category and NaN are unequal to everything
/// (`!=` true, orderings false); `in` is never unknown (missing values are in no list); bools
/// compare as 0 and 1. Where pandas would quietly
/// select nothing annpage reports an error: comparing text with numbers, an `==`/`!=` value
/// that is not a category of a categorical column, ordering an unordered categorical.
///
/// ```
/// use annpage::query::Query;
/// use annpage::data::{ArrayData, Column, DataFrame};
///
/// let mut df = DataFrame::from_index(vec!["a", "b", "c"]);
/// df.insert("n", Column::Array(ArrayData::from(vec![1i64, 5, 9]))).unwrap();
/// df.insert("kind", Column::Array(ArrayData::from(vec!["x", "y", "x"]))).unwrap();
/// let q: Query = "n > 2 and kind in ['x', 'z'] or index == 'a'".parse().unwrap();
/// assert_eq!(q.mask(&df).unwrap(), vec![true, false, true]);
/// let err = "n >".parse::<Query>().unwrap_err().to_string();
/// assert_eq!(err, "invalid argument: query 'n >': expected a column or a value, found the end of the query at character 4");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    text: String,
    expr: Expr,
}

impl std::str::FromStr for Query {
    type Err = Error;

    /// Parses a query; the error names the character position (from 1) and what was expected.
    fn from_str(s: &str) -> Result<Self> {
        let expr = parse::parse(s).map_err(|e| {
            Error::invalid(format!("query '{s}': {} at character {}", e.what, e.at))
        })?;
        Ok(Query {
            text: s.to_string(),
            expr,
        })
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Query {
    /// `true` for every row the query selects.
    pub fn mask(&self, df: &DataFrame) -> Result<Vec<bool>> {
        eval::mask(&self.expr, df)
            .map_err(|e| Error::invalid(format!("query '{}': {e}", self.text)))
    }
}

#[cfg(test)]
mod tests;
