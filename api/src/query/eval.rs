//! A query evaluated over a frame's rows, with pandas' rules for missing values.

use annpage_engine::data::{ArrayData, Categorical, Column, DataFrame, NullableKind, StringNa};

use super::ast::{CmpOp, Expr, Literal, Operand};

/// Three-valued truth: `None` is unknown (a missing value of a nullable integer or bool
/// column), as pandas' `NA` in logical operations.
type Tri = Option<bool>;

/// An evaluation failure, described without the query (the caller adds it).
type Eval<T> = Result<T, String>;

/// The rows `expr` selects: unknown rows are left out, as pandas leaves out `NA`.
pub(super) fn mask(expr: &Expr, df: &DataFrame) -> Eval<Vec<bool>> {
    Ok(eval(expr, df)?
        .into_iter()
        .map(|t| t == Some(true))
        .collect())
}

/// The terms of an `and`/`or` evaluated in turn and combined row by row with `f`.
fn fold(terms: &[Expr], df: &DataFrame, f: impl Fn(Tri, Tri) -> Tri + Copy) -> Eval<Vec<Tri>> {
    let mut terms = terms.iter();
    let Some(first) = terms.next() else {
        return Ok(Vec::new());
    };
    let mut acc = eval(first, df)?;
    for t in terms {
        acc = zip(acc, eval(t, df)?, f);
    }
    Ok(acc)
}

fn eval(e: &Expr, df: &DataFrame) -> Eval<Vec<Tri>> {
    Ok(match e {
        Expr::Not(a) => eval(a, df)?.into_iter().map(|t| t.map(|b| !b)).collect(),
        Expr::And(terms) => fold(terms, df, |x, y| match (x, y) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        })?,
        Expr::Or(terms) => fold(terms, df, |x, y| match (x, y) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        })?,
        Expr::Truth(op) => match resolve(op, df)? {
            Side::Num {
                values,
                na,
                boolean: true,
                ..
            } => values
                .iter()
                .enumerate()
                .map(|(i, &v)| (!is_na(na, i)).then_some(v != 0.0))
                .collect(),
            side => {
                return Err(format!(
                    "{} is not a bool column: compare it with a value",
                    side.describe()
                ))
            }
        },
        Expr::Cmp(a, op, b) => {
            let (l, r) = (resolve(a, df)?, resolve(b, df)?);
            if let (Side::Const(_), Side::Const(_)) = (&l, &r) {
                return Err(no_column([a, b], df));
            }
            compare(&l, *op, &r, df.nrows())?
        }
        Expr::In(a, list) => member(&resolve(a, df)?, list)?,
    })
}

fn zip(a: Vec<Tri>, b: Vec<Tri>, f: impl Fn(Tri, Tri) -> Tri) -> Vec<Tri> {
    a.into_iter().zip(b).map(|(x, y)| f(x, y)).collect()
}

/// An operand made ready to compare.
enum Side<'a> {
    /// Numbers (bools as 0 and 1); `na` marks the missing values of a nullable column.
    Num {
        name: String,
        values: Vec<f64>,
        na: Option<&'a [bool]>,
        boolean: bool,
        /// A value compared with the column as numpy compares a Python float with its dtype:
        /// in the column's precision (float32 and float16 round it first).
        precision: fn(f64) -> f64,
    },
    /// Text; `None` is a missing value (see [`missing_text`]).
    Text {
        name: String,
        values: Vec<Option<&'a str>>,
        /// Whether a missing value is pandas' `NA` (the `string` dtype), which a comparison
        /// of two columns propagates, rather than `NaN`.
        pd_na: bool,
    },
    Cat {
        name: String,
        cat: &'a Categorical,
    },
    Const(Literal),
}

impl Side<'_> {
    fn describe(&self) -> String {
        match self {
            Side::Num { name, .. } | Side::Text { name, .. } | Side::Cat { name, .. } => {
                format!("column '{name}'")
            }
            Side::Const(lit) => describe(lit),
        }
    }
}

fn describe(lit: &Literal) -> String {
    match lit {
        Literal::Num(x) => format!("the number {x}"),
        Literal::Str(s) => format!("the text '{s}'"),
        Literal::Bool(b) => if *b { "True" } else { "False" }.into(),
    }
}

fn is_na(na: Option<&[bool]>, i: usize) -> bool {
    na.is_some_and(|m| m[i])
}

/// The error for a comparison of two constants: one of them was meant to be a column.
fn no_column(operands: [&Operand; 2], df: &DataFrame) -> String {
    let name = operands.iter().find_map(|o| match o {
        Operand::Name(n, _) | Operand::Column(n, _) => Some(n.as_str()),
        Operand::Literal(..) => None,
    });
    match name {
        Some(n) => format!(
            "'{n}' is not in the frame (columns: {})",
            df.columns().keys().cloned().collect::<Vec<_>>().join(", ")
        ),
        None => "a comparison of two values: one side must be a column".into(),
    }
}

fn resolve<'a>(op: &Operand, df: &'a DataFrame) -> Eval<Side<'a>> {
    let (name, strict) = match op {
        Operand::Literal(lit, _) => return Ok(Side::Const(lit.clone())),
        Operand::Name(n, _) => (n, false),
        Operand::Column(n, _) => (n, true),
    };
    if let Some(column) = df.column(name) {
        return Ok(side_of(name, column));
    }
    if name == "index" {
        return Ok(Side::Text {
            name: name.clone(),
            values: df
                .index_names()
                .ok_or("the index is not text")?
                .iter()
                .map(|s| Some(s.as_str()))
                .collect(),
            pd_na: false,
        });
    }
    if strict {
        return Err(no_column([op, op], df));
    }
    // A bare word that names no column is text (`cell_type == B`).
    Ok(Side::Const(Literal::Str(name.clone())))
}

fn side_of<'a>(name: &str, column: &'a Column) -> Side<'a> {
    let name = name.to_string();
    match column {
        Column::Array(ArrayData::String(s)) => Side::Text {
            name,
            values: s.iter().map(|v| Some(v.as_str())).collect(),
            pd_na: false,
        },
        Column::Array(a) => Side::Num {
            name,
            values: a
                .to_f64()
                .map(|v| v.iter().copied().collect())
                .unwrap_or_default(),
            na: None,
            boolean: matches!(a, ArrayData::Bool(_)),
            precision: match a {
                ArrayData::F32(_) => |x| f64::from(x as f32),
                ArrayData::F16(_) => |x| half::f16::from_f64(x).to_f64(),
                _ => std::convert::identity,
            },
        },
        Column::Nullable(n) => match (n.kind(), n.values()) {
            (NullableKind::String(na), ArrayData::String(s)) => Side::Text {
                name,
                values: s
                    .iter()
                    .zip(n.mask())
                    .map(|(v, &missing)| (!missing).then_some(v.as_str()))
                    .collect(),
                pd_na: na == StringNa::Na,
            },
            (kind, values) => Side::Num {
                name,
                values: values
                    .to_f64()
                    .map(|v| v.iter().copied().collect())
                    .unwrap_or_default(),
                na: Some(n.mask()),
                boolean: kind == NullableKind::Boolean,
                precision: std::convert::identity,
            },
        },
        Column::Categorical(cat) => Side::Cat { name, cat },
    }
}

/// A literal as a number, for numeric and bool columns.
fn number(lit: &Literal) -> Option<f64> {
    match lit {
        Literal::Num(x) => Some(*x),
        Literal::Bool(b) => Some(f64::from(u8::from(*b))),
        Literal::Str(_) => None,
    }
}

fn mismatch(side: &Side<'_>, lit: &Literal) -> String {
    let holds = match side {
        Side::Text { .. } => "text",
        Side::Cat { cat, .. } if matches!(cat.categories, ArrayData::String(_)) => "text",
        _ => "numbers",
    };
    format!(
        "{} holds {holds}; it cannot be compared with {}{}",
        side.describe(),
        describe(lit),
        if holds == "text" { " (quote it)" } else { "" }
    )
}

/// A comparison with a missing string, as pandas' `query` does it: `==` is false, `!=` true,
/// an ordering unknown.
fn missing_text(op: CmpOp) -> Tri {
    match op {
        CmpOp::Eq => Some(false),
        CmpOp::Ne => Some(true),
        _ => None,
    }
}

/// IEEE comparison: NaN is unequal to everything.
fn ieee(a: f64, op: CmpOp, b: f64) -> bool {
    a.partial_cmp(&b).map_or(op == CmpOp::Ne, |o| op.holds(o))
}

fn compare(l: &Side<'_>, op: CmpOp, r: &Side<'_>, n: usize) -> Eval<Vec<Tri>> {
    match (l, r) {
        (Side::Const(_), Side::Const(_)) => Err("one side of a comparison must be a column".into()),
        (Side::Const(_), _) => compare(r, op.flipped(), l, n),
        (
            Side::Num {
                values,
                na,
                precision,
                ..
            },
            Side::Const(lit),
        ) => {
            let x = precision(number(lit).ok_or_else(|| mismatch(l, lit))?);
            Ok(values
                .iter()
                .enumerate()
                .map(|(i, &v)| (!is_na(*na, i)).then(|| ieee(v, op, x)))
                .collect())
        }
        (Side::Text { values, .. }, Side::Const(lit)) => {
            let Literal::Str(s) = lit else {
                return Err(mismatch(l, lit));
            };
            Ok(values
                .iter()
                .map(|v| match v {
                    Some(v) => Some(op.holds((*v).cmp(s.as_str()))),
                    None => missing_text(op),
                })
                .collect())
        }
        (Side::Cat { name, cat }, Side::Const(lit)) => {
            if !matches!(op, CmpOp::Eq | CmpOp::Ne) && !cat.ordered {
                return Err(format!(
                    "column '{name}' is an unordered categorical: it can only be compared with == and !="
                ));
            }
            // A value that is not a category (a typo, most often) is refused, with `!=` too,
            // where pandas selects no row or every row.
            let p = category_of(l, cat, lit)?
                .ok_or_else(|| not_a_category(name, cat, lit))? as i32;
            Ok(cat
                .codes
                .iter()
                .map(|&c| {
                    Some(if c < 0 {
                        op == CmpOp::Ne
                    } else {
                        op.holds(c.cmp(&p))
                    })
                })
                .collect())
        }
        (
            Side::Num {
                values: a, na: na_a, ..
            },
            Side::Num {
                values: b, na: na_b, ..
            },
        ) => Ok((0..n)
            .map(|i| (!is_na(*na_a, i) && !is_na(*na_b, i)).then(|| ieee(a[i], op, b[i])))
            .collect()),
        (
            Side::Text {
                values: a,
                pd_na: na_a,
                ..
            },
            Side::Text {
                values: b,
                pd_na: na_b,
                ..
            },
        ) => Ok(a
            .iter()
            .zip(b)
            .map(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => Some(op.holds(x.cmp(y))),
                // pandas' NA beside any value is NA (`s != s` selects none of them).
                _ if *na_a || *na_b => None,
                _ => missing_text(op),
            })
            .collect()),
        (Side::Cat { name: a, cat: ca }, Side::Cat { name: b, cat: cb }) => {
            compare_categoricals((a, ca), op, (b, cb))
        }
        _ => Err(format!(
            "{} and {} cannot be compared (compare columns of the same kind, or a column with a value)",
            l.describe(),
            r.describe()
        )),
    }
}

/// Two categorical columns compared as pandas compares them: only over the same categories
/// (any order for `==` and `!=` of unordered ones; the same order, ordered, for orderings);
/// a missing value is unequal to everything and in no order.
fn compare_categoricals(
    (a, ca): (&str, &Categorical),
    op: CmpOp,
    (b, cb): (&str, &Categorical),
) -> Eval<Vec<Tri>> {
    let differ = || {
        format!(
            "columns '{a}' and '{b}' are categoricals over different categories: pandas compares \
             categoricals only over the same categories (and orders them only when ordered alike)"
        )
    };
    let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
    if ordering && !(ca.ordered && cb.ordered) {
        return Err(format!(
            "columns '{a}' and '{b}' are unordered categoricals: they can only be compared with == and !="
        ));
    }
    let keys = |c: &Categorical| -> Vec<String> {
        match &c.categories {
            ArrayData::String(s) => s.iter().map(|v| v.to_string()).collect(),
            other => other
                .to_f64()
                .unwrap_or_default()
                .iter()
                .map(|v| format!("{v:?}"))
                .collect(),
        }
    };
    let (ka, kb) = (keys(ca), keys(cb));
    let mut sorted = (ka.clone(), kb.clone());
    sorted.0.sort_unstable();
    sorted.1.sort_unstable();
    if sorted.0 != sorted.1 || (ordering && ka != kb) {
        return Err(differ());
    }
    // b's codes as positions among a's categories.
    let at: Vec<i32> = kb
        .iter()
        .map(|k| ka.iter().position(|x| x == k).map_or(-1, |p| p as i32))
        .collect();
    Ok(ca
        .codes
        .iter()
        .zip(&cb.codes)
        .map(|(&x, &y)| {
            let y = usize::try_from(y).map_or(-1, |y| at[y]);
            Some(if x < 0 || y < 0 {
                op == CmpOp::Ne
            } else {
                op.holds(x.cmp(&y))
            })
        })
        .collect())
}

/// The position of `lit` among the categories, `None` when it is not one; an error when it is
/// of the wrong kind (text against numeric categories or the reverse).
fn category_of(side: &Side<'_>, cat: &Categorical, lit: &Literal) -> Eval<Option<usize>> {
    match (&cat.categories, lit) {
        (ArrayData::String(c), Literal::Str(s)) => Ok(c.iter().position(|v| v == s)),
        (ArrayData::String(_), _) => Err(mismatch(side, lit)),
        (numbers, lit) => {
            let x = number(lit).ok_or_else(|| mismatch(side, lit))?;
            let values = numbers.to_f64().ok_or_else(|| mismatch(side, lit))?;
            Ok(values.iter().position(|&v| v == x))
        }
    }
}

/// The error for a value absent from the categories: names a few of them.
fn not_a_category(name: &str, cat: &Categorical, lit: &Literal) -> String {
    const SHOWN: usize = 8;
    let n = cat.categories.len();
    let mut listed: Vec<String> = match &cat.categories {
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
    let value = match lit {
        Literal::Str(s) => format!("'{s}'"),
        other => describe(other),
    };
    format!(
        "{value} is not a category of column '{name}' (categories: {})",
        listed.join(", ")
    )
}

/// `side in [list]`: two-valued, missing values are in no list.
fn member(side: &Side<'_>, list: &[Literal]) -> Eval<Vec<Tri>> {
    match side {
        Side::Const(_) => Err("'in' needs a column on its left".into()),
        Side::Num { values, na, .. } => {
            let set = list
                .iter()
                .map(|lit| number(lit).ok_or_else(|| mismatch(side, lit)))
                .collect::<Eval<Vec<f64>>>()?;
            Ok(values
                .iter()
                .enumerate()
                .map(|(i, v)| Some(!is_na(*na, i) && set.contains(v)))
                .collect())
        }
        Side::Text { values, .. } => {
            let set = text_list(side, list)?;
            Ok(values
                .iter()
                .map(|v| Some(v.is_some_and(|v| set.contains(&v))))
                .collect())
        }
        Side::Cat { cat, .. } => {
            let mut hit = vec![false; cat.categories.len()];
            for lit in list {
                if let Some(p) = category_of(side, cat, lit)? {
                    hit[p] = true;
                }
            }
            Ok(cat
                .codes
                .iter()
                .map(|&c| Some(usize::try_from(c).is_ok_and(|c| hit[c])))
                .collect())
        }
    }
}

fn text_list<'l>(side: &Side<'_>, list: &'l [Literal]) -> Eval<Vec<&'l str>> {
    list.iter()
        .map(|lit| match lit {
            Literal::Str(s) => Ok(s.as_str()),
            other => Err(mismatch(side, other)),
        })
        .collect()
}
