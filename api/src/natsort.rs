//! natsort's default order (`natsort.natsorted`), which anndata uses for categories: text and
//! numbers compared piece by piece, `"a9"` before `"a10"`.

use std::borrow::Cow;
use std::cmp::Ordering;

use unicode_normalization::UnicodeNormalization;

/// One piece of natsort's key: text, or a run of ASCII digits compared as a number.
#[derive(Debug, PartialEq, Eq)]
enum NatPart<'a> {
    Text(&'a str),
    /// The digits without leading zeros.
    Number(&'a str),
}

impl Ord for NatPart<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (NatPart::Text(a), NatPart::Text(b)) => a.cmp(b),
            (NatPart::Number(a), NatPart::Number(b)) => a.len().cmp(&b.len()).then(a.cmp(b)),
            // Keys alternate text and numbers from a text start, so kinds meet only by
            // position; order them anyway to stay total.
            (NatPart::Text(_), NatPart::Number(_)) => Ordering::Less,
            (NatPart::Number(_), NatPart::Text(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for NatPart<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// natsort's default key of a string: text and digit runs alternating, starting with text
/// (an empty one when the string starts with a digit); `"a10"` sorts after `"a9"`.
fn nat_key(s: &str) -> Vec<NatPart<'_>> {
    let mut parts = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        parts.push(NatPart::Text(""));
    }
    while i < bytes.len() {
        let digit = bytes[i].is_ascii_digit();
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() == digit {
            i += 1;
        }
        let run = &s[start..i];
        parts.push(if digit {
            let trimmed = run.trim_start_matches('0');
            NatPart::Number(trimmed)
        } else {
            NatPart::Text(run)
        });
    }
    parts
}

/// natsort's default order of two strings: by [`nat_key`] (`"c2" < "c10"`); strings with equal
/// keys (`"c02"`, `"c2"`) compare equal, so a stable sort keeps their order. As natsort, both
/// are compared in Unicode's canonical decomposition (NFD): `"Müller"` before `"Mz"`, as
/// `"Mu\u{308}ller"`. (natsort's numbers in other scripts, `"٣"` or `"²"`, are compared here
/// as text.)
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (nfd(a), nfd(b));
    nat_key(&a).cmp(&nat_key(&b))
}

/// `s` in Unicode's canonical decomposition (ASCII is its own).
fn nfd(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.nfd().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_matches_natsort() {
        let mut v = vec![
            "c10", "c2", "c1", "b", "10", "9", "", "c02", "c2a", "C3", "a1b10", "a1b9",
        ];
        v.sort_unstable();
        v.sort_by(|a, b| natural_cmp(a, b));
        // natsort.natsorted(sorted(v)) in Python.
        let want = [
            "", "9", "10", "C3", "a1b9", "a1b10", "b", "c1", "c02", "c2", "c2a", "c10",
        ];
        assert_eq!(v, want);
    }

    /// natsort 8.4 compares in NFD: an accented letter sorts with its base letter.
    #[test]
    fn accented_letters_sort_as_natsort_sorts_them() {
        for (input, want) in [
            (
                vec!["Mz", "Müller", "Mu", "Mü", "Mv"],
                vec!["Mu", "Mü", "Müller", "Mv", "Mz"],
            ),
            (
                vec!["Å", "B", "A", "Z", "a", "é", "e1", "e10", "e2", "ß", "ss"],
                vec!["A", "Å", "B", "Z", "a", "e1", "e2", "e10", "é", "ss", "ß"],
            ),
        ] {
            let mut v = input.clone();
            v.sort_by(|a, b| natural_cmp(a, b));
            assert_eq!(v, want, "natsort.natsorted({input:?})");
        }
    }
}
