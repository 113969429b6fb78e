use super::*;
use annpage_engine::data::{ArrayData, Categorical, Column, Nullable, NullableKind, StringNa};

fn frame() -> DataFrame {
    let mut df = DataFrame::from_index(vec!["a", "b", "c", "d"]);
    let cell_type = Categorical::new(
        vec![0, 1, -1, 0],
        ArrayData::from(vec!["B cell", "T cell"]),
        false,
    )
    .unwrap();
    df.insert("cell type", Column::Categorical(cell_type))
        .unwrap();
    let ok = ArrayData::from(vec![true, false, true, true]);
    df.insert("ok", Column::Array(ok)).unwrap();
    let score = ArrayData::from(vec![0.5f32, 1.0, f32::NAN, 2.0]);
    df.insert("score", Column::Array(score)).unwrap();
    let batch = Nullable::new(
        NullableKind::Integer,
        ArrayData::from(vec![1i64, 1, 0, 2]),
        vec![false, false, true, false],
    )
    .unwrap();
    df.insert("batch", Column::Nullable(batch)).unwrap();
    let name = Nullable::new(
        NullableKind::String(StringNa::Na),
        ArrayData::from(vec!["x", "y", "", "x"]),
        vec![false, false, true, false],
    )
    .unwrap();
    df.insert("name", Column::Nullable(name)).unwrap();
    let level = Categorical::new(
        vec![0, 2, 1, -1],
        ArrayData::from(vec!["low", "mid", "high"]),
        true,
    )
    .unwrap();
    df.insert("level", Column::Categorical(level)).unwrap();
    let pct = ArrayData::from(vec![0.1f32, 0.3, 0.5, 0.1]);
    df.insert("pct", Column::Array(pct)).unwrap();
    // `cell type`'s categories in another order.
    let pred = Categorical::new(
        vec![1, 1, 0, -1],
        ArrayData::from(vec!["T cell", "B cell"]),
        false,
    )
    .unwrap();
    df.insert("pred", Column::Categorical(pred)).unwrap();
    df
}

fn mask(q: &str) -> Vec<bool> {
    q.parse::<Query>()
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .mask(&frame())
        .unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn error(q: &str) -> String {
    match q.parse::<Query>() {
        Err(e) => e.to_string(),
        Ok(query) => query.mask(&frame()).unwrap_err().to_string(),
    }
}

#[test]
fn comparisons_of_every_kind_of_column() {
    assert_eq!(
        mask("`cell type` == \"B cell\""),
        [true, false, false, true]
    );
    assert_eq!(mask("`cell type` != 'B cell'"), [false, true, true, false]);
    assert_eq!(mask("ok == True"), [true, false, true, true]);
    assert_eq!(mask("ok"), [true, false, true, true]);
    assert_eq!(mask("~ok"), [false, true, false, false]);
    assert_eq!(mask("score == 0.5"), [true, false, false, false]);
    // NaN is unequal to everything.
    assert_eq!(mask("score != 0.5"), [false, true, true, true]);
    assert_eq!(mask("score >= 1"), [false, true, false, true]);
    assert_eq!(mask("0.5 < score <= 2"), [false, true, false, true]);
    assert_eq!(
        mask("index in ['a', 'd'] or name == 'y'"),
        [true, true, false, true]
    );
}

#[test]
fn missing_values_follow_pandas() {
    // Nullable integers: unknown, three-valued, left out at the end.
    assert_eq!(mask("batch == 1"), [true, true, false, false]);
    assert_eq!(mask("batch != 1"), [false, false, false, true]);
    assert_eq!(mask("not batch == 1"), [false, false, false, true]);
    assert_eq!(mask("batch == 1 or ok"), [true, true, true, true]);
    assert_eq!(mask("batch in [0, 2]"), [false, false, false, true]);
    assert_eq!(mask("batch not in [0, 2]"), [true, true, true, false]);
    // Missing strings: unequal to everything, unknown in orderings.
    assert_eq!(mask("name != 'x'"), [false, true, true, false]);
    assert_eq!(mask("not name == 'x'"), [false, true, true, false]);
    assert_eq!(mask("name < 'y'"), [true, false, false, true]);
    assert_eq!(mask("not name < 'y'"), [false, true, false, false]);
    assert_eq!(mask("`cell type` != 'T cell'"), [true, false, true, true]);
    // Ordered categoricals compare by category order.
    assert_eq!(mask("level >= 'mid'"), [false, true, true, false]);
    assert_eq!(mask("level < 'high'"), [true, false, true, false]);
}

#[test]
fn values_compare_as_numpy_compares_them() {
    // A float32 column and a Python float compare in float32 (0.1 rounds as the column's).
    assert_eq!(mask("pct <= 0.1"), [true, false, false, true]);
    assert_eq!(mask("pct == 0.3"), [false, true, false, false]);
    assert_eq!(mask("pct > 0.3"), [false, false, true, false]);
    // pandas' query knows numpy's infinity.
    assert_eq!(mask("score < inf"), [true, true, false, true]);
    assert_eq!(mask("score > -Inf"), [true, true, false, true]);
    // Two columns of pandas' `string` dtype: NA beside anything is NA, left out.
    assert_eq!(mask("name != name"), [false, false, false, false]);
    assert_eq!(mask("name == name"), [true, true, false, true]);
    // Categoricals over the same categories compare by value (missing: unequal, unordered).
    assert_eq!(mask("`cell type` == pred"), [true, false, false, false]);
    assert_eq!(mask("`cell type` != pred"), [false, true, true, true]);
    assert_eq!(mask("level <= level"), [true, true, true, false]);
    assert!(error("`cell type` < pred").contains("unordered categoricals"));
    assert!(error("`cell type` == level").contains("different categories"));
    // A value that is not a category is refused, `!=` too (pandas selects every row).
    assert!(error("`cell type` != 'NK'").contains("is not a category"));
}

#[test]
fn strings_take_pythons_escapes() {
    // As pandas reads the query (a Python expression): `\x79` is `y`, `\'` a quote.
    assert_eq!(mask("name == '\\x79'"), [false, true, false, false]);
    assert_eq!(mask("name == \"\\u0078\""), [true, false, false, true]);
    assert_eq!(
        mask("`cell type` == 'B\\x20cell'"),
        [true, false, false, true]
    );
    assert_eq!(mask("name == 'it\\'s'"), [false; 4]);
    assert_eq!(mask("name in ['\\\\', \"a\\\"b\"]"), [false; 4]);
    assert!(error("name == '\\x7'").contains("2 hexadecimal digits"));
    assert!(error("name == 'open\\'").contains("unterminated quote"));
}

#[test]
fn bare_words_are_columns_or_text() {
    assert_eq!(mask("name == x"), [true, false, false, true]);
    let e = error("nope == 1");
    assert!(e.contains("'nope' is not in the frame"), "{e}");
    let e = error("`nope` == 1");
    assert!(e.contains("'nope' is not in the frame"), "{e}");
}

#[test]
fn queries_that_cannot_match_are_errors() {
    for (q, words) in [
        (
            "score == 'high'",
            "column 'score' holds numbers; it cannot be compared with the text 'high'",
        ),
        (
            "name == 3",
            "column 'name' holds text; it cannot be compared with the number 3 (quote it)",
        ),
        (
            "`cell type` == 'NK cell'",
            "'NK cell' is not a category of column 'cell type' (categories: 'B cell', 'T cell')",
        ),
        ("`cell type` < 'B cell'", "unordered categorical"),
        ("level > 'top'", "'top' is not a category of column 'level'"),
        ("score", "column 'score' is not a bool column"),
        ("1 == 1", "one side must be a column"),
    ] {
        let e = error(q);
        assert!(e.contains(words), "{q}: {e}");
        assert!(
            e.starts_with(&format!("invalid argument: query '{q}': ")),
            "{e}"
        );
    }
    let many: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    let mut df = DataFrame::from_index(vec!["a"]);
    let cats = Categorical::new(vec![3], ArrayData::from(many), false).unwrap();
    df.insert("k", Column::Categorical(cats)).unwrap();
    let e = "k == c99".parse::<Query>().unwrap().mask(&df).unwrap_err();
    assert!(e.to_string().ends_with("'c6', 'c7', and 12 more)"), "{e}");
    assert_eq!(
        "k == c3".parse::<Query>().unwrap().mask(&df).unwrap(),
        [true]
    );
}

#[test]
fn malformed_queries_name_the_position_and_what_was_expected() {
    for (query, expected) in [
        (
            "cell_type ==",
            "expected a column or a value, found the end of the query at character 13",
        ),
        (
            "cell_type == 'B cell",
            "unterminated quote ' at character 14",
        ),
        (
            "== B",
            "expected a column or a value, found '==' at character 1",
        ),
        (
            "a = 1",
            "'=' is not an operator (compare with '==') at character 3",
        ),
        (
            "(a == 1",
            "expected ')', found the end of the query at character 8",
        ),
        ("a == 1)", "unmatched ')' at character 7"),
        (
            "a in 1",
            "expected a list '[…]' after 'in', found the number 1 at character 6",
        ),
        (
            "a in [1 2]",
            "expected ',' or ']', found the number 2 at character 9",
        ),
        (
            "a not 1",
            "expected 'in' after 'not', found the number 1 at character 7",
        ),
        (
            "a == 1 b",
            "expected 'and', 'or' or the end of the query, found 'b' at character 8",
        ),
        ("a == 12abc", "'12abc' is not a number at character 6"),
        ("a == $", "unexpected character '$' at character 6"),
    ] {
        let e = query.parse::<Query>().unwrap_err().to_string();
        assert_eq!(e, format!("invalid argument: query '{query}': {expected}"));
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}a == 1{}", "(".repeat(100), ")".repeat(100));
    let e = deep.parse::<Query>().unwrap_err().to_string();
    assert!(e.contains("nested deeper than 64 levels"), "{e}");
    let fine = format!("{}ok{}", "(".repeat(30), ")".repeat(30));
    assert_eq!(
        fine.parse::<Query>().unwrap().mask(&frame()).unwrap(),
        [true, false, true, true]
    );
    let nots = format!("{}ok", "not ".repeat(100));
    assert!(nots.parse::<Query>().is_err());
}

proptest::proptest! {
    #[test]
    fn parsing_never_panics(s in "\\PC{0,40}") {
        if let Ok(q) = s.parse::<Query>() {
            let _ = q.mask(&frame());
        }
    }

    #[test]
    fn parsing_query_like_text_never_panics(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "ok", "score", "`cell type`", "name", "index", "==", "!=", "<", ">=", "and", "or",
                "not", "in", "[", "]", "(", ")", ",", "'x'", "\"B cell\"", "1", "-2.5", "True",
                "~", "&", "|", "1e3",
            ]),
            0..16,
        )
    ) {
        let s = parts.join(" ");
        if let Ok(q) = s.parse::<Query>() {
            let _ = q.mask(&frame());
        }
    }
}

#[test]
fn long_flat_conditions_nest_no_deeper() {
    // 20,000 terms of `and`, of `or` and of a chained comparison: each a flat list (a tree of
    // one node per term overflowed the stack when walked or dropped).
    let n = 20_000;
    let ands = vec!["score > 0.1"; n].join(" and ");
    assert_eq!(mask(&ands), [true, true, false, true]);
    let ors = vec!["score > 1.5"; n].join(" or ");
    assert_eq!(mask(&ors), [false, false, false, true]);
    let chain = format!("0 < {}", vec!["score"; n].join(" <= "));
    assert_eq!(mask(&chain), [true, true, false, true]);
}
