//! The parsed form of a query.

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped (`a < b` is `b > a`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            same => same,
        }
    }

    /// Whether `ordering` (of left against right) satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
        }
    }
}

/// A constant.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Literal {
    Num(f64),
    Str(String),
    Bool(bool),
}

/// One side of a comparison; the `usize` is its character position (from 1), for errors.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Operand {
    /// A bare word: a column (or `index`), else text.
    Name(String, usize),
    /// A backquoted column name.
    Column(String, usize),
    Literal(Literal, usize),
}

/// A condition over rows.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Expr {
    Cmp(Operand, CmpOp, Operand),
    In(Operand, Vec<Literal>),
    Not(Box<Expr>),
    /// All of two or more conditions (flat: a long `a and b and …` nests no deeper).
    And(Vec<Expr>),
    /// Any of two or more conditions.
    Or(Vec<Expr>),
    /// A bool column used as a condition.
    Truth(Operand),
}
