//! [`QcStats`] as two tab-separated files, the output of `annpage stats`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use annpage_engine::data::CompactString;
use annpage_engine::error::ResultExt;
use annpage_engine::format::write::staging::Staged;
use annpage_engine::{Error, Result};

use super::QcStats;

impl QcStats {
    /// Writes `PREFIX.obs.tsv` (per cell: `obs_name`, `n_genes`, `total_counts`) and
    /// `PREFIX.var.tsv` (per gene: `var_name`, `n_cells`, `mean`, `var`), streamed through a
    /// buffer (memory does not grow with the number of cells), each beside its target; both
    /// are renamed into place once both are complete. Returns the two paths. The names must
    /// match the statistics in number; a name holding a tab, a line break or a quote is
    /// quoted as pandas' `read_csv(sep="\t")` reads it.
    ///
    /// ```
    /// use annpage::stats::QcAccumulator;
    /// use annpage::data::{ArrayData, Matrix};
    ///
    /// let mut acc = QcAccumulator::new(2);
    /// acc.add_chunk(&Matrix::Dense(ArrayData::from(ndarray::array![[1.0f32, 0.0], [3.0, 4.0]])))?;
    /// let dir = tempfile::tempdir().unwrap();
    /// let [obs, var] = acc.finish().write_tsv(
    ///     &["c0".into(), "c1".into()],
    ///     &["g0".into(), "g1".into()],
    ///     &dir.path().join("qc"),
    /// )?;
    /// let obs = std::fs::read_to_string(obs).unwrap();
    /// assert_eq!(obs, "obs_name\tn_genes\ttotal_counts\nc0\t1\t1\nc1\t2\t7\n");
    /// let var = std::fs::read_to_string(var).unwrap();
    /// assert!(var.starts_with("var_name\tn_cells\tmean\tvar\ng0\t2\t2\t2\n"));
    /// # Ok::<(), annpage::Error>(())
    /// ```
    pub fn write_tsv(
        &self,
        obs_names: &[CompactString],
        var_names: &[CompactString],
        prefix: &Path,
    ) -> Result<[PathBuf; 2]> {
        let counts = [
            ("cells", obs_names.len(), self.n_genes.len()),
            ("genes", var_names.len(), self.n_cells.len()),
        ];
        for (what, names, stats) in counts {
            if names != stats {
                return Err(Error::shape(format!(
                    "{names} names for the statistics of {stats} {what}"
                )));
            }
        }
        let [obs_path, var_path] = tsv_paths(prefix);
        let obs = stage(&obs_path, |out| {
            writeln!(out, "obs_name\tn_genes\ttotal_counts")?;
            let mut line = String::new();
            for ((name, &n), &total) in obs_names.iter().zip(&self.n_genes).zip(&self.total_counts)
            {
                line.clear();
                push_field(&mut line, name);
                line.push('\t');
                push_u64(&mut line, n);
                line.push('\t');
                push_number(&mut line, total);
                line.push('\n');
                out.write_all(line.as_bytes())?;
            }
            Ok(())
        })?;
        let var = stage(&var_path, |out| {
            writeln!(out, "var_name\tn_cells\tmean\tvar")?;
            let mut field = String::new();
            for (j, name) in var_names.iter().enumerate() {
                let (n, mean, var) = (self.n_cells[j], self.mean[j], self.var[j]);
                field.clear();
                push_field(&mut field, name);
                writeln!(out, "{field}\t{n}\t{mean}\t{var}")?;
            }
            Ok(())
        })?;
        // Both or neither: each is complete before either replaces its target, and a signal
        // waits for both renames.
        Staged::commit_all(vec![(obs, &obs_path), (var, &var_path)]).in_file(&obs_path)?;
        Ok([obs_path, var_path])
    }
}

/// The files [`QcStats::write_tsv`] writes for `prefix`: `PREFIX.obs.tsv`, `PREFIX.var.tsv`.
///
/// ```
/// let [obs, var] = annpage::stats::tsv_paths("out/qc".as_ref());
/// assert_eq!((obs.to_str(), var.to_str()), (Some("out/qc.obs.tsv"), Some("out/qc.var.tsv")));
/// ```
pub fn tsv_paths(prefix: &Path) -> [PathBuf; 2] {
    ["obs", "var"].map(|axis| PathBuf::from(format!("{}.{axis}.tsv", prefix.display())))
}

/// Appends `x` as `{x}` formats it (the shortest digits that read back as `x`), integers
/// (counts, the usual totals) without going through the float formatter.
fn push_number(out: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        if x < 0.0 {
            out.push('-');
        }
        push_u64(out, x.abs() as u64);
    } else {
        use std::fmt::Write as _;
        let _ = write!(out, "{x}");
    }
}

/// Appends `v` in decimal.
fn push_u64(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// Appends a name as a field: as it is, or quoted (quotes doubled) when it holds a tab, a line
/// break or a quote.
fn push_field(out: &mut String, name: &str) {
    if name.contains(['\t', '\n', '\r', '"']) {
        out.push('"');
        out.push_str(&name.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(name);
    }
}

/// Writes `path`'s content through `write` into a file beside it, to be renamed into place
/// by [`Staged::commit`].
fn stage(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<Staged> {
    let staged = Staged::beside(path).in_file(path)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(staged.path())
        .in_file(path)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write(&mut out).in_file(path)?;
    out.into_inner().map_err(|e| e.into_error()).in_file(path)?;
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::push_number;
    use crate::stats::QcAccumulator;
    use annpage_engine::data::{ArrayData, Matrix};

    fn stats() -> super::QcStats {
        let mut acc = QcAccumulator::new(2);
        let m = Matrix::Dense(ArrayData::from(ndarray::array![[1.0f32, 0.0], [3.0, 4.0]]));
        acc.add_chunk(&m).unwrap();
        acc.finish()
    }

    #[test]
    fn names_with_tabs_quotes_or_breaks_are_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let obs = ["a\tb".into(), "say \"hi\"\nthere".into()];
        let [obs_path, var_path] = stats()
            .write_tsv(&obs, &["g0".into(), "g1".into()], &dir.path().join("qc"))
            .unwrap();
        let text = std::fs::read_to_string(obs_path).unwrap();
        assert_eq!(
            text,
            "obs_name\tn_genes\ttotal_counts\n\"a\tb\"\t1\t1\n\"say \"\"hi\"\"\nthere\"\t2\t7\n"
        );
        assert!(std::fs::read_to_string(var_path)
            .unwrap()
            .contains("\ng1\t1\t"));
    }

    #[test]
    fn both_files_or_neither() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("qc");
        std::fs::create_dir(dir.path().join("qc.var.tsv")).unwrap();
        let names = ["c0".into(), "c1".into()];
        let genes = ["g0".into(), "g1".into()];
        assert!(stats().write_tsv(&names, &genes, &prefix).is_err());
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["qc.var.tsv"]);
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let cases = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            7.0,
            10.0,
            1234567.0,
            -98765.0,
            0.5,
            1e-7,
            2.5e14,
            999999999999999.0,
            1e15,
            1e16,
            1e300,
            123.456,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            4503599627370497.0,
        ];
        for x in cases {
            let mut s = String::new();
            push_number(&mut s, x);
            assert_eq!(s, format!("{x}"), "{x:e}");
        }
        for v in [0, 9, 10, u64::MAX] {
            let mut s = String::new();
            super::push_u64(&mut s, v);
            assert_eq!(s, v.to_string());
        }
    }
}
