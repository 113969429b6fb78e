//! Floats as Python and numpy write them: `repr` of a float64, `str` of a float32 and a
//! float16, from Rust's shortest round-trip digits with Python's rule for ties (the even last
//! digit).

/// numpy's `str(np.float16(v))`: the shortest digits that read back as the same half float
/// (`0.1`, not the `0.0999755859375` it holds), positional for 1e-4 <= |v| < 1e3 (and 0), else
/// scientific (`2.048e+03`).
pub(crate) fn numpy_half(v: half::f16) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    let wide = f32::from(v).abs();
    if v.is_infinite() {
        return format!("{sign}inf");
    }
    let target = half::f16::from_f32(wide);
    let sci = (0..5)
        .map(|digits| format!("{wide:.digits$e}"))
        .find(|s| s.parse::<f32>().map(half::f16::from_f32) == Ok(target))
        .unwrap_or_else(|| format!("{wide:e}"));
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes an integer exponent");
    let digits = mantissa.replace('.', "");
    let digits = match digits.trim_end_matches('0') {
        "" => "0",
        d => d,
    };
    let positional = wide == 0.0 || (1e-4..1e3).contains(&wide);
    format!("{sign}{}", float_text(digits, exp, positional))
}

/// Python's `repr` of a float from Rust's shortest round-trip scientific form (`-1.5e-5`):
/// positional for decimal exponents -4..16, else `d.ddde±XX`.
pub(crate) fn python_float(sci: &str, exact: Option<f64>) -> String {
    let (sign, body) = sci.strip_prefix('-').map_or(("", sci), |rest| ("-", rest));
    let Some((mantissa, exp)) = body.split_once('e') else {
        // `inf` and `NaN`.
        return match body {
            "inf" => format!("{sign}inf"),
            _ => "nan".to_owned(),
        };
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return sci.to_owned();
    };
    let (digits, exp) = match exact {
        // Python's repr breaks a tie between two shortest forms towards the even digit.
        Some(x) => shortest_digits(body, x.abs()),
        None => (mantissa.replace('.', ""), exp),
    };
    format!(
        "{sign}{}",
        float_text(&digits, exp, (-4..16).contains(&exp))
    )
}

/// The digits and decimal exponent of Rust's shortest round-trip form `sci` (`{:e}` of a
/// non-negative value), with numpy's choice where two shortest forms are equally close to the
/// value (`exact`, the same value as an f64): the even last digit, where Rust rounds up.
fn shortest_digits(sci: &str, exact: f64) -> (String, i32) {
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` writes an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` writes an integer exponent");
    let digits = mantissa.replace('.', "");
    let n = digits.len();
    // A tie: the value has exactly one more digit, a 5, and the shortest form rounded it up.
    let longer = format!("{:.*e}", n, exact);
    let (long_mantissa, long_exp) = longer.split_once('e').expect("`{:e}` writes an exponent");
    let long_digits = long_mantissa.replace('.', "");
    if long_exp.parse::<i32>() != Ok(exp) || !long_digits.ends_with('5') {
        return (digits, exp);
    }
    let truncated = &long_digits[..n];
    let last_even = truncated
        .bytes()
        .last()
        .is_some_and(|d| (d - b'0').is_multiple_of(2));
    // Exactly halfway only if no digit follows the 5 (an f64 has at most 767 of them).
    let full = format!("{:.*e}", 800, exact);
    let full_digits = full.split_once('e').map_or("", |(m, _)| m).replace('.', "");
    let exact_tie = full_digits[n + 1..].bytes().all(|d| d == b'0');
    if exact_tie && last_even && truncated != digits {
        (truncated.to_owned(), exp)
    } else {
        (digits, exp)
    }
}

/// A non-negative float written from its significant `digits` and decimal exponent `exp`
/// (`d.ddd × 10^exp`) as Python and numpy write floats: positional (`0.00012`, `150.0`) or
/// scientific with at least two exponent digits (`1.5e-05`, `1e+16`).
fn float_text(digits: &str, exp: i32, positional: bool) -> String {
    if positional {
        // The decimal point goes after `exp + 1` digits.
        let point = exp + 1;
        let n = digits.len() as i32;
        if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point >= n {
            format!("{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        }
    } else {
        let mantissa = match digits.split_at(1) {
            (first, "") => first.to_owned(),
            (first, rest) => format!("{first}.{rest}"),
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{exp_sign}{:02}", exp.unsigned_abs())
    }
}

/// numpy's `str(np.float32(x))`: the shortest digits that read back as the same float32,
/// positional for 1e-4 <= |x| < 1e6 (and 0), else `d.ddde±XX`.
pub(crate) fn numpy_f32(x: f32) -> String {
    if x.is_nan() {
        return String::new();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let (digits, exp) = shortest_digits(&format!("{:e}", x.abs()), f64::from(x.abs()));
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let abs = f64::from(x).abs();
    let positional = x == 0.0 || (1e-4..1e6).contains(&abs);
    format!("{sign}{}", float_text(&digits, exp, positional))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ArrayData;

    /// Python's `repr`, a tie between two shortest forms broken towards the even digit.
    #[test]
    fn doubles_print_as_python_prints_them() {
        let cases = [
            // -0.136692047119140625 exactly: halfway between two 17-digit forms.
            (-35833.0 / 262144.0, "-0.13669204711914062"),
            (0.5, "0.5"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.1, "0.1"),
            (2.675, "2.675"),
            (1e22, "1e+22"),
            (5e-324, "5e-324"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        let a = ArrayData::from(cases.iter().map(|c| c.0).collect::<Vec<f64>>());
        let want: Vec<&str> = cases.iter().map(|c| c.1).collect();
        assert_eq!(a.to_python_strings(), want);
    }

    /// `str(np.float16(v))` in the venv.
    #[test]
    fn half_floats_print_as_numpy_prints_them() {
        let cases = [
            (0.1, "0.1"),
            (1000.0, "1e+03"),
            (999.5, "999.5"),
            (2048.0, "2.048e+03"),
            (0.0001, "0.0001"),
            (0.00009995, "9.996e-05"),
            (6e-8, "6e-08"),
            (65504.0, "6.55e+04"),
            (1.5, "1.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (12.34, "12.34"),
            (f32::NEG_INFINITY, "-inf"),
            (f32::NAN, "nan"),
        ];
        for (v, text) in cases {
            assert_eq!(numpy_half(half::f16::from_f32(v)), text, "{v}");
        }
    }
}
