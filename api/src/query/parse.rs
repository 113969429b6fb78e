//! Text → [`Expr`]: the tokens of a query and a recursive-descent parser over them.

use super::ast::{CmpOp, Expr, Literal, Operand};

/// Parentheses and `not`s nested deeper than this are refused (the parser recurses).
const MAX_DEPTH: usize = 64;

/// The only term of `terms`, or all of them joined by `join` (`Expr::And`, `Expr::Or`).
fn one_or(mut terms: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    match terms.pop() {
        Some(only) if terms.is_empty() => only,
        Some(last) => {
            terms.push(last);
            join(terms)
        }
        None => join(terms),
    }
}

/// A parse failure: the character position (from 1) and what went wrong there.
#[derive(Debug, PartialEq)]
pub(super) struct ParseError {
    pub at: usize,
    pub what: String,
}

fn fail<T>(at: usize, what: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        at,
        what: what.into(),
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A bare word: a column, or text when no column has that name.
    Name(String),
    /// A backquoted column name.
    Column(String),
    Str(String),
    Num(f64),
    Bool(bool),
    Cmp(CmpOp),
    And,
    Or,
    Not,
    In,
    Minus,
    Open,
    Close,
    OpenList,
    CloseList,
    Comma,
    End,
}

impl Tok {
    /// How the token is named in "expected …, found …" errors.
    fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("'{n}'"),
            Tok::Column(n) => format!("`{n}`"),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Num(x) => format!("the number {x}"),
            Tok::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            Tok::Cmp(op) => format!("'{}'", op.symbol()),
            Tok::And => "'and'".into(),
            Tok::Or => "'or'".into(),
            Tok::Not => "'not'".into(),
            Tok::In => "'in'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Open => "'('".into(),
            Tok::Close => "')'".into(),
            Tok::OpenList => "'['".into(),
            Tok::CloseList => "']'".into(),
            Tok::Comma => "','".into(),
            Tok::End => "the end of the query".into(),
        }
    }
}

/// A quoted string at the start of `chars` (its quote first) with Python's escapes, as pandas
/// reads it (`\\`, `\'`, `\"`, `\n`, `\t`, `\r`, `\0`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`; other
/// backslashes are kept), and the characters it spans. `at` is its position, for errors.
fn string_literal(chars: &[char], at: usize) -> Result<(String, usize), ParseError> {
    let quote = chars[0];
    let mut text = String::new();
    let mut i = 1;
    while let Some(&c) = chars.get(i) {
        if c == quote {
            return Ok((text, i + 1));
        }
        if c != '\\' {
            text.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = chars.get(i + 1) else { break };
        let hex = |n: usize| -> Result<char, ParseError> {
            let digits: String = chars
                .get(i + 2..i + 2 + n)
                .unwrap_or_default()
                .iter()
                .collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .filter(|_| digits.len() == n)
                .and_then(char::from_u32)
                .map_or_else(
                    || fail(at + i, format!("'\\{e}' needs {n} hexadecimal digits")),
                    Ok,
                )
        };
        let (ch, used) = match e {
            '\\' | '\'' | '"' => (e, 2),
            'n' => ('\n', 2),
            't' => ('\t', 2),
            'r' => ('\r', 2),
            '0' => ('\0', 2),
            'x' => (hex(2)?, 4),
            'u' => (hex(4)?, 6),
            'U' => (hex(8)?, 10),
            _ => {
                text.push('\\');
                i += 1;
                continue;
            }
        };
        text.push(ch);
        i += used;
    }
    fail(at, format!("unterminated quote {quote}"))
}

/// Splits `s` into tokens, each with its character position (from 1).
fn lex(s: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let (tok, len) = match (c, two.as_str()) {
            (_, "==") => (Tok::Cmp(CmpOp::Eq), 2),
            (_, "!=") => (Tok::Cmp(CmpOp::Ne), 2),
            (_, "<=") => (Tok::Cmp(CmpOp::Le), 2),
            (_, ">=") => (Tok::Cmp(CmpOp::Ge), 2),
            ('<', _) => (Tok::Cmp(CmpOp::Lt), 1),
            ('>', _) => (Tok::Cmp(CmpOp::Gt), 1),
            ('=', _) => return fail(at, "'=' is not an operator (compare with '==')"),
            ('&', _) => (Tok::And, 1),
            ('|', _) => (Tok::Or, 1),
            ('~', _) => (Tok::Not, 1),
            ('-', _) => (Tok::Minus, 1),
            ('(', _) => (Tok::Open, 1),
            (')', _) => (Tok::Close, 1),
            ('[', _) => (Tok::OpenList, 1),
            (']', _) => (Tok::CloseList, 1),
            (',', _) => (Tok::Comma, 1),
            ('`', _) => {
                let Some(len) = chars[i + 1..].iter().position(|&d| d == c) else {
                    return fail(at, format!("unterminated quote {c}"));
                };
                let text: String = chars[i + 1..i + 1 + len].iter().collect();
                (Tok::Column(text), len + 2)
            }
            ('\'' | '"', _) => {
                let (text, len) = string_literal(&chars[i..], at)?;
                (Tok::Str(text), len)
            }
            _ if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let len = number_len(&chars[i..]);
                let text: String = chars[i..i + len].iter().collect();
                match text.parse::<f64>() {
                    Ok(x) => (Tok::Num(x), len),
                    Err(_) => return fail(at, format!("'{text}' is not a number")),
                }
            }
            _ if c.is_alphanumeric() || c == '_' => {
                let len = chars[i..]
                    .iter()
                    .position(|&d| !(d.is_alphanumeric() || d == '_' || d == '.'))
                    .unwrap_or(chars.len() - i);
                let word: String = chars[i..i + len].iter().collect();
                let tok = match word.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "in" => Tok::In,
                    "True" => Tok::Bool(true),
                    "False" => Tok::Bool(false),
                    // pandas' query knows these as numpy's infinity (a column so named is
                    // `inf` in backquotes).
                    "inf" | "Inf" => Tok::Num(f64::INFINITY),
                    _ => Tok::Name(word),
                };
                (tok, len)
            }
            _ => return fail(at, format!("unexpected character '{c}'")),
        };
        out.push((at, tok));
        i += len;
    }
    out.push((chars.len() + 1, Tok::End));
    Ok(out)
}

/// The length of the number at the start of `c`: digits, a fraction, an exponent, and the
/// word characters glued to it (so `12abc` is one bad number, not a number and a name).
fn number_len(c: &[char]) -> usize {
    let mut i = 0;
    while i < c.len() {
        let exponent_sign = (c[i] == '+' || c[i] == '-') && i > 0 && matches!(c[i - 1], 'e' | 'E');
        if c[i].is_alphanumeric() || c[i] == '.' || c[i] == '_' || exponent_sign {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Parses a whole query.
pub(super) fn parse(s: &str) -> Result<Expr, ParseError> {
    let tokens = lex(s)?;
    let mut p = Parser { tokens, pos: 0 };
    let e = p.or(0)?;
    match p.peek() {
        Tok::End => Ok(e),
        Tok::Close => fail(p.at(), "unmatched ')'"),
        t => fail(
            p.at(),
            format!(
                "expected 'and', 'or' or the end of the query, found {}",
                t.describe()
            ),
        ),
    }
}

struct Parser {
    tokens: Vec<(usize, Tok)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].1
    }

    fn at(&self) -> usize {
        self.tokens[self.pos].0
    }

    fn next(&mut self) -> (usize, Tok) {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expected<T>(&self, what: &str) -> Result<T, ParseError> {
        fail(
            self.at(),
            format!("expected {what}, found {}", self.peek().describe()),
        )
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut terms = vec![self.and(depth)?];
        while *self.peek() == Tok::Or {
            self.next();
            terms.push(self.and(depth)?);
        }
        Ok(one_or(terms, Expr::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut terms = vec![self.not(depth)?];
        while *self.peek() == Tok::And {
            self.next();
            terms.push(self.not(depth)?);
        }
        Ok(one_or(terms, Expr::And))
    }

    fn not(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return fail(self.at(), format!("nested deeper than {MAX_DEPTH} levels"));
        }
        match self.peek() {
            Tok::Not => {
                self.next();
                Ok(Expr::Not(Box::new(self.not(depth + 1)?)))
            }
            Tok::Open => {
                self.next();
                let e = self.or(depth + 1)?;
                if *self.peek() != Tok::Close {
                    return self.expected("')'");
                }
                self.next();
                Ok(e)
            }
            _ => self.comparison(),
        }
    }

    /// `a`, `a OP b [OP c …]` (a chain is the conjunction of its links), `a in [..]` or
    /// `a not in [..]`.
    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let first = self.operand()?;
        match self.peek().clone() {
            Tok::In => {
                self.next();
                let values = self.list()?;
                Ok(Expr::In(first, values))
            }
            Tok::Not => {
                self.next();
                if *self.peek() != Tok::In {
                    return self.expected("'in' after 'not'");
                }
                self.next();
                let values = self.list()?;
                Ok(Expr::Not(Box::new(Expr::In(first, values))))
            }
            Tok::Cmp(_) => {
                let mut left = first;
                let mut links = Vec::new();
                while let Tok::Cmp(op) = *self.peek() {
                    self.next();
                    let right = self.operand()?;
                    links.push(Expr::Cmp(left, op, right.clone()));
                    left = right;
                }
                Ok(one_or(links, Expr::And))
            }
            _ => match first {
                Operand::Name(..) | Operand::Column(..) => Ok(Expr::Truth(first)),
                Operand::Literal(..) => self.expected("a comparison after a value"),
            },
        }
    }

    fn operand(&mut self) -> Result<Operand, ParseError> {
        let at = self.at();
        match self.peek().clone() {
            Tok::Name(n) => {
                self.next();
                Ok(Operand::Name(n, at))
            }
            Tok::Column(n) => {
                self.next();
                Ok(Operand::Column(n, at))
            }
            Tok::Str(_) | Tok::Num(_) | Tok::Bool(_) | Tok::Minus => {
                Ok(Operand::Literal(self.literal()?, at))
            }
            _ => self.expected("a column or a value"),
        }
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let value = match self.peek().clone() {
            Tok::Str(s) => Literal::Str(s),
            Tok::Num(x) => Literal::Num(x),
            Tok::Bool(b) => Literal::Bool(b),
            // Bare words in a list are text (there are no columns inside `in [..]`).
            Tok::Name(n) => Literal::Str(n),
            Tok::Minus => {
                self.next();
                return match *self.peek() {
                    Tok::Num(x) => {
                        self.next();
                        Ok(Literal::Num(-x))
                    }
                    _ => self.expected("a number after '-'"),
                };
            }
            _ => return self.expected("a value"),
        };
        self.next();
        Ok(value)
    }

    /// `[v, …]` or `(v, …)`: the values after `in`.
    fn list(&mut self) -> Result<Vec<Literal>, ParseError> {
        let close = match self.peek() {
            Tok::OpenList => Tok::CloseList,
            Tok::Open => Tok::Close,
            _ => return self.expected("a list '[…]' after 'in'"),
        };
        self.next();
        let mut values = Vec::new();
        loop {
            if *self.peek() == close {
                self.next();
                return Ok(values);
            }
            values.push(self.literal()?);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                t if *t == close => {}
                _ => return self.expected(&format!("',' or {}", close.describe())),
            }
        }
    }
}
