//! Selections: slices, positions, masks and names normalised, composed and checked, as Python indexes.

use proptest::prelude::*;

use super::*;

fn names(ns: &[&str]) -> Vec<crate::data::CompactString> {
    ns.iter().map(|&s| s.into()).collect()
}

fn positions(s: Selection, len: usize) -> Vec<usize> {
    s.resolve(len, None).unwrap().to_vec()
}

/// Every slice of a length-6 axis against Python's `list(range(6))[start:stop:step]`,
/// computed once in Python and written out here.
#[test]
fn slices_match_python() {
    /// `start`, `stop`, `step` and the positions Python selects.
    type Case = (Option<isize>, Option<isize>, isize, &'static [usize]);
    let cases: &[Case] = &[
        (None, None, 1, &[0, 1, 2, 3, 4, 5]),
        (None, None, -1, &[5, 4, 3, 2, 1, 0]),
        (Some(1), Some(5), 2, &[1, 3]),
        (Some(-2), None, 1, &[4, 5]),
        (None, Some(-4), 1, &[0, 1]),
        (Some(-100), Some(100), 3, &[0, 3]),
        (Some(4), Some(1), -2, &[4, 2]),
        (Some(10), None, -3, &[5, 2]),
        (None, Some(-7), -1, &[5, 4, 3, 2, 1, 0]),
        (Some(2), Some(2), 1, &[]),
        (Some(5), Some(1), 1, &[]),
        (Some(1), Some(5), -1, &[]),
        (Some(-1), Some(-3), -1, &[5, 4]),
        (Some(0), None, 7, &[0]),
        (Some(-6), Some(-5), -1, &[]),
    ];
    for &(start, stop, step, expected) in cases {
        let got = positions(Selection::slice(start, stop, step), 6);
        assert_eq!(got, expected, "{start:?}:{stop:?}:{step}");
    }
}

#[test]
fn slices_of_an_empty_axis_are_empty() {
    assert!(positions(Selection::slice(None, None, -1), 0).is_empty());
    assert!(positions(Selection::slice(Some(-1), Some(3), 1), 0).is_empty());
    assert!(AxisIndex::full(0).is_full());
}

#[test]
fn zero_step_is_rejected() {
    let e = Selection::slice(None, None, 0)
        .resolve(3, None)
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid argument: slice step cannot be zero");
}

#[test]
fn slices_stay_ranges_without_allocating() {
    let idx = Selection::slice(Some(1), None, 3)
        .resolve(1_000_000, None)
        .unwrap();
    assert_eq!(
        idx.kind(),
        IndexKind::Strided {
            start: 1,
            step: 3,
            len: 333_333
        }
    );
    assert_eq!(idx.get(333_332), Some(999_997));
    assert_eq!(idx.get(333_333), None);
    assert_eq!(idx.iter().len(), 333_333);
}

#[test]
fn positions_wrap_negatives_and_check_bounds() {
    assert_eq!(
        positions(Selection::Positions(vec![-1, 0, -5, 2, 2]), 5),
        [4, 0, 0, 2, 2]
    );
    let e = Selection::Positions(vec![0, 5])
        .resolve(5, None)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid argument: position 5 is out of range for an axis of length 5"
    );
    let e = Selection::Positions(vec![-6]).resolve(5, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid argument: position -6 is out of range for an axis of length 5"
    );
    assert!(Selection::positions([usize::MAX]).resolve(5, None).is_err());
}

#[test]
fn evenly_spaced_positions_become_ranges() {
    let idx = Selection::positions([6, 4, 2]).resolve(7, None).unwrap();
    assert_eq!(
        idx.kind(),
        IndexKind::Strided {
            start: 6,
            step: -2,
            len: 3
        }
    );
    let idx = Selection::positions([0, 1, 2]).resolve(3, None).unwrap();
    assert!(idx.is_full());
    let idx = Selection::positions([3]).resolve(7, None).unwrap();
    assert_eq!(idx.kind(), IndexKind::Range(3..4));
    let idx = Selection::positions([2, 2, 2]).resolve(7, None).unwrap();
    assert_eq!(idx.kind(), IndexKind::Positions(&[2, 2, 2]));
    let idx = Selection::positions([]).resolve(7, None).unwrap();
    assert_eq!(idx.kind(), IndexKind::Range(0..0));
    assert!(idx.is_empty());
}

#[test]
fn masks_must_match_the_axis() {
    assert_eq!(
        positions(Selection::Mask(vec![false, true, true, false, true]), 5),
        [1, 2, 4]
    );
    assert!(Selection::Mask(vec![true; 4])
        .resolve(4, None)
        .unwrap()
        .is_full());
    let e = Selection::Mask(vec![true; 3]).resolve(4, None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid argument: boolean mask has 3 entries, the axis has 4"
    );
}

#[test]
fn names_resolve_in_the_order_asked() {
    let axis = names(&["a", "b", "c", "d"]);
    let idx = Selection::names(["c", "a", "c"])
        .resolve(4, Some(&axis))
        .unwrap();
    assert_eq!(idx.to_vec(), [2, 0, 2]);
}

#[test]
fn unknown_names_are_all_listed() {
    let axis = names(&["a", "b"]);
    let e = Selection::names(["a", "x", "y"])
        .resolve(2, Some(&axis))
        .unwrap_err();
    assert_eq!(e.to_string(), "2 of 3 names not found: [\"x\", \"y\"]");
    let e = Selection::names(["a"]).resolve(2, None).unwrap_err();
    assert!(e.to_string().contains("this axis has no names"), "{e}");
}

#[test]
fn duplicated_names_are_ambiguous_only_when_asked_for() {
    let axis = names(&["a", "b", "a"]);
    assert_eq!(
        Selection::names(["b"])
            .resolve(3, Some(&axis))
            .unwrap()
            .to_vec(),
        [1]
    );
    let e = Selection::names(["a"]).resolve(3, Some(&axis)).unwrap_err();
    assert!(e.to_string().contains("\"a\" occurs more than once"), "{e}");
}

#[test]
fn compose_keeps_ranges() {
    let outer = Selection::slice(Some(2), None, 3)
        .resolve(20, None)
        .unwrap(); // 2,5,..,17
    let inner = Selection::slice(None, None, -2)
        .resolve(outer.len(), None)
        .unwrap();
    let both = outer.compose(&inner).unwrap();
    assert_eq!(both.to_vec(), [17, 11, 5]);
    assert_eq!(
        both.kind(),
        IndexKind::Strided {
            start: 17,
            step: -6,
            len: 3
        }
    );
    assert_eq!(both.axis_len(), 20);
}

#[test]
fn compose_mixes_ranges_and_positions() {
    let range = Selection::from(10..20).resolve(30, None).unwrap();
    let ps = Selection::positions([9, 0, 0]).resolve(10, None).unwrap();
    assert_eq!(range.compose(&ps).unwrap().to_vec(), [19, 10, 10]);

    let ps = Selection::positions([5, 1, 8, 8])
        .resolve(30, None)
        .unwrap();
    let tail = Selection::slice(Some(1), None, 1).resolve(4, None).unwrap();
    assert_eq!(ps.compose(&tail).unwrap().to_vec(), [1, 8, 8]);
    // Positions that land evenly spaced become a range again.
    let pick = Selection::positions([1, 0]).resolve(4, None).unwrap();
    let composed = ps.compose(&pick).unwrap();
    assert_eq!(
        composed.kind(),
        IndexKind::Strided {
            start: 1,
            step: 4,
            len: 2
        }
    );
}

#[test]
fn compose_checks_lengths() {
    let outer = AxisIndex::range(0..3, 10).unwrap();
    let e = outer.compose(&AxisIndex::full(4)).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
}

#[test]
fn constructors_check_bounds() {
    assert!(AxisIndex::range(2..11, 10).is_err());
    assert!(AxisIndex::from_positions(vec![0, 10], 10).is_err());
    assert_eq!(
        AxisIndex::from_positions(vec![3, 1], 10).unwrap().to_vec(),
        [3, 1]
    );
}

#[test]
fn displays_read_like_python() {
    assert_eq!(Selection::All.to_string(), ":");
    assert_eq!(Selection::slice(Some(1), None, -2).to_string(), "1::-2");
    assert_eq!(Selection::from(0..5).to_string(), "0:5");
    assert_eq!(Selection::Positions(vec![3, -1]).to_string(), "[3, -1]");
    assert_eq!(
        Selection::positions(0..10).to_string(),
        "[0, 1, 2, 3, 4, 5, 6, 7, … (+2 more)]"
    );
    assert_eq!(
        Selection::Mask(vec![true, false]).to_string(),
        "mask(1 of 2)"
    );
    assert_eq!(Selection::names(["a"]).to_string(), "[\"a\"]");

    assert_eq!(AxisIndex::full(4).to_string(), "all 4");
    assert_eq!(AxisIndex::range(1..3, 4).unwrap().to_string(), "1..3 of 4");
    let s = Selection::slice(None, None, -2).resolve(10, None).unwrap();
    assert_eq!(s.to_string(), "9..=1 step -2 of 10");
    let p = AxisIndex::from_positions(vec![4, 0, 0], 10).unwrap();
    assert_eq!(p.to_string(), "[4, 0, 0] of 10");
}

/// One selection of an axis of `n` positions: a slice (any start, stop and step, negative
/// ones included), or positions (unsorted, repeated).
fn selection(n: usize) -> impl Strategy<Value = Selection> {
    let n_i = n as isize;
    let bound = -(n_i + 2)..=(n_i + 2);
    let slice = (
        prop::option::of(bound.clone()),
        prop::option::of(bound),
        prop_oneof![-4isize..=-1, 1isize..=4],
    )
        .prop_map(|(start, stop, step)| Selection::slice(start, stop, step));
    let positions = prop::collection::vec(0..n.max(1), 0..2 * n + 2)
        .prop_map(move |ps| Selection::positions(ps.into_iter().filter(|&p| p < n)));
    prop_oneof![slice, positions]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Composing two selections selects what applying them one after the other selects.
    #[test]
    fn compose_equals_selecting_twice(
        (n, outer, inner) in (0usize..40).prop_flat_map(|n| (
            Just(n),
            selection(n),
        )).prop_flat_map(|(n, outer)| {
            let len = outer.resolve(n, None).map_or(0, |o| o.len());
            (Just(n), Just(outer), selection(len))
        }),
    ) {
        let outer = outer.resolve(n, None).unwrap();
        let inner = inner.resolve(outer.len(), None).unwrap();
        let composed = outer.compose(&inner).unwrap();
        let by_hand: Vec<usize> = inner.iter().map(|i| outer.get(i).unwrap()).collect();
        prop_assert_eq!(composed.to_vec(), by_hand);
        prop_assert_eq!(composed.axis_len(), n);
        prop_assert_eq!(composed.len(), inner.len());
    }
}
