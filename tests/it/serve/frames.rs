//! `/obs` and `/var`: columns of every kind as JSON, a frame's reservation, rows alone.

use super::*;

/// The JSON of a column as `/obs` answers it: values (NaN and infinities as null), nullable
/// values with null where missing, categoricals as codes and categories.
fn column_json(column: &Column) -> serde_json::Value {
    fn values(a: &ArrayData) -> Vec<serde_json::Value> {
        let strings = a.to_python_strings();
        match a.to_f64() {
            Some(v) if !matches!(a, ArrayData::Bool(_)) => v
                .iter()
                .zip(&strings)
                .map(|(&x, s)| match (x.is_finite(), a) {
                    (false, _) => serde_json::Value::Null,
                    (true, ArrayData::F32(_) | ArrayData::F64(_)) => serde_json::json!(x),
                    (true, _) => serde_json::from_str(s).unwrap(),
                })
                .collect(),
            _ => match a {
                ArrayData::Bool(b) => b.iter().map(|&v| serde_json::json!(v)).collect(),
                _ => strings.iter().map(|s| serde_json::json!(s)).collect(),
            },
        }
    }
    match column {
        Column::Array(a) => serde_json::json!({ "kind": "array", "values": values(a) }),
        Column::Categorical(c) => serde_json::json!({
            "kind": "categorical", "codes": c.codes, "categories": values(&c.categories)
        }),
        Column::Nullable(n) => {
            let mut v = values(n.values());
            for (value, &missing) in v.iter_mut().zip(n.mask()) {
                if missing {
                    *value = serde_json::Value::Null;
                }
            }
            serde_json::json!({ "kind": "nullable", "values": v })
        }
    }
}

#[test]
fn obs_columns_of_every_kind_answer_as_json() {
    let server = serve(
        &["cols=obs_var_columns.h5ad", "nulls=nullable_strings.h5ad"],
        |_| {},
    );
    let mut kinds = BTreeSet::new();
    for (name, file) in [
        ("cols", "obs_var_columns.h5ad"),
        ("nulls", "nullable_strings.h5ad"),
    ] {
        let memory = read_h5ad(fixture(file)).unwrap();
        for (axis, frame) in [("obs", memory.obs()), ("var", memory.var())] {
            let all = get(server.addr, &format!("/datasets/{name}/{axis}")).json();
            assert_eq!(
                all["columns"].as_array().unwrap().len(),
                frame.columns().len()
            );
            for (i, (column_name, column)) in frame.columns().iter().enumerate() {
                let want = column_json(column);
                let got = &all["columns"][i];
                assert_eq!(got["name"], serde_json::json!(column_name));
                assert_eq!(got["kind"], want["kind"], "{file} {column_name}");
                for key in ["values", "codes", "categories"] {
                    assert_eq!(
                        got.get(key),
                        want.get(key),
                        "{file} {axis} {column_name} {key}"
                    );
                }
                kinds.insert(want["kind"].as_str().unwrap().to_string());
            }
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}

#[test]
fn a_frame_reserves_what_its_strings_take() {
    // 2,000 cells with a note of 2,000 characters each: 4 MB of JSON, though a frame of
    // 2,000 values of one column is small by count.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.h5ad");
    let n = 2_000;
    let mut a = AnnData::new(n, 3);
    let mut obs = DataFrame::from_index((0..n).map(|i| format!("cell_{i}")));
    let notes: Vec<String> = (0..n).map(|i| format!("{i:04}").repeat(500)).collect();
    obs.insert("note", Column::Array(ArrayData::from(notes.clone())))
        .unwrap();
    a.set_obs(obs).unwrap();
    a.write_h5ad(&path, &WriteOptions::default()).unwrap();
    let at = |budget: usize| {
        serve(&[], |o| {
            o.datasets = vec![path.to_str().unwrap().parse().unwrap()];
            o.response_bytes = budget;
        })
    };
    let small = at(2 << 20);
    let reply = get(small.addr, "/datasets/notes/obs?columns=note&index=false");
    assert_eq!(
        reply.status,
        413,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert!(
        reply.error().contains("notes's obs frame"),
        "{}",
        reply.error()
    );
    assert_eq!(in_flight(small.addr), 0);
    // A budget whose large share (7/8 of it) holds the notes' text and strings once each,
    // not a doubled buffer on top.
    let snug = at(12 << 20);
    let reply = get(snug.addr, "/datasets/notes/obs?columns=note&index=false");
    assert_eq!(reply.status, 200, "{}", reply.error());
    let large = at(64 << 20);
    let reply = get(large.addr, "/datasets/notes/obs");
    assert_eq!(reply.status, 200, "{}", reply.error());
    let obs = reply.json();
    assert!(obs["columns"][0]["values"] == serde_json::json!(notes));
    assert_eq!(obs["index"][1999], "cell_1999");
}

#[test]
fn obs_rows_are_answered_alone() {
    let server = serve(&["all=all_elements.h5ad"], |_| {});
    let memory = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    // Two rows, in the order asked: their names and values (categories as the view keeps them).
    let two = get(server.addr, "/datasets/all/obs?rows=7,2").json();
    let sub = memory
        .subset(&Selection::positions([7, 2]), &Selection::All)
        .unwrap();
    assert_eq!(two["index"], serde_json::json!(sub.obs_names()));
    for (i, (name, column)) in sub.obs().columns().iter().enumerate() {
        let want = column_json(column);
        assert_eq!(two["columns"][i]["name"], serde_json::json!(name));
        for key in ["values", "codes", "categories"] {
            assert_eq!(two["columns"][i].get(key), want.get(key), "{name} {key}");
        }
    }
    // No rows: every column's name and kind, no values.
    let none = get(server.addr, "/datasets/all/obs?rows=&index=false").json();
    let kinds: Vec<_> = none["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let names: Vec<_> = memory.obs().columns().keys().map(String::as_str).collect();
    assert_eq!(kinds, names);
    assert!(none.get("index").is_none());
    let reply = get(server.addr, "/datasets/all/var?rows=12");
    assert_eq!(reply.status, 400);
    assert!(reply
        .error()
        .contains("var position 12 is out of range (0..12)"));
}
