use super::*;
use annpage_engine::data::{ArrayData, SparseFormat, SparseMatrix};
use ndarray::array;

/// numpy's two-pass `var(ddof=1)`.
fn two_pass_var(col: &[f64]) -> f64 {
    let n = col.len() as f64;
    let m = col.iter().sum::<f64>() / n;
    col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)
}

/// How a test chunk is stored.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Dense,
    /// CSR without the zeros.
    Csr,
    /// CSR that also stores every third zero explicitly.
    CsrExplicitZeros,
    Csc,
}

/// `rows` (row-major, `cols` wide) as a chunk of the given layout, values as f64.
fn chunk(rows: &[f64], cols: usize, layout: Layout) -> Matrix {
    let n = rows.len() / cols;
    let dense =
        || ArrayData::F64(ndarray::ArrayD::from_shape_vec(vec![n, cols], rows.to_vec()).unwrap());
    let csr = |explicit_zeros: bool| {
        let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
        for (k, &x) in rows.iter().enumerate() {
            if x != 0.0 || (explicit_zeros && k % 3 == 0) {
                indices.push((k % cols) as u32);
                data.push(x);
            }
            if k % cols == cols - 1 {
                indptr.push(indices.len() as u64);
            }
        }
        SparseMatrix::new(
            SparseFormat::Csr,
            (n, cols),
            indptr,
            indices,
            ArrayData::from(data),
        )
        .unwrap()
    };
    match layout {
        Layout::Dense => Matrix::Dense(dense()),
        Layout::Csr => Matrix::Sparse(csr(false)),
        Layout::CsrExplicitZeros => Matrix::Sparse(csr(true)),
        Layout::Csc => {
            let (mut indptr, mut indices, mut data) = (vec![0u64], Vec::new(), Vec::new());
            for j in 0..cols {
                for i in 0..n {
                    let x = rows[i * cols + j];
                    if x != 0.0 {
                        indices.push(i as u32);
                        data.push(x);
                    }
                }
                indptr.push(indices.len() as u64);
            }
            Matrix::Sparse(
                SparseMatrix::new(
                    SparseFormat::Csc,
                    (n, cols),
                    indptr,
                    indices,
                    ArrayData::from(data),
                )
                .unwrap(),
            )
        }
    }
}

/// Accumulates `rows` in chunks of `chunk_rows` rows of the given layout.
fn accumulate(
    acc: QcAccumulator,
    rows: &[f64],
    cols: usize,
    chunk_rows: usize,
    layout: Layout,
) -> QcStats {
    let mut acc = acc;
    for block in rows.chunks(chunk_rows * cols) {
        acc.add_chunk(&chunk(block, cols, layout)).unwrap();
    }
    acc.finish()
}

/// Columns that are hard for a one-pass variance: a large mean with a small spread, counts
/// with zeros, all zeros, zero in the first rows and then a large mean (the first shift is
/// far off), a small mean with a few large values, and a constant.
fn hard_columns(n: usize) -> (Vec<f64>, usize) {
    const COLS: usize = 6;
    let mut rows = Vec::with_capacity(n * COLS);
    for i in 0..n {
        rows.extend([
            1e8 + (i % 7) as f64,
            if i % 3 == 0 { 0.0 } else { i as f64 },
            0.0,
            if i < 20 {
                0.0
            } else {
                3e9 + (i % 5) as f64 * 0.25
            },
            if i % 37 == 5 {
                1e6
            } else {
                (i % 2) as f64 * 0.1
            },
            42.5,
        ]);
    }
    (rows, COLS)
}

/// Checks `s` against the definitions computed directly from `rows`.
fn check_against_definitions(s: &QcStats, rows: &[f64], cols: usize, what: &str) {
    let n = rows.len() / cols;
    for (i, row) in rows.chunks(cols).enumerate() {
        let nz = row.iter().filter(|&&x| x != 0.0).count() as u64;
        assert_eq!(s.n_genes[i], nz, "{what}: n_genes of cell {i}");
        assert_eq!(
            s.total_counts[i],
            row.iter().sum::<f64>(),
            "{what}: cell {i}"
        );
    }
    assert_eq!(s.n_genes.len(), n, "{what}");
    for c in 0..cols {
        let col: Vec<f64> = rows.iter().skip(c).step_by(cols).copied().collect();
        let nz = col.iter().filter(|&&x| x != 0.0).count() as u64;
        assert_eq!(s.n_cells[c], nz, "{what}: n_cells of gene {c}");
        let mean = col.iter().sum::<f64>() / n as f64;
        assert!(
            (s.mean[c] - mean).abs() <= 1e-12 * mean.abs(),
            "{what}: mean of gene {c}: {} vs {mean}",
            s.mean[c]
        );
        let want = two_pass_var(&col);
        let got = s.var[c];
        assert!(
            (got - want).abs() <= 1e-9 * want.abs(),
            "{what}: var of gene {c}: {got} vs {want}"
        );
    }
}

#[test]
fn chunked_equals_whole_and_two_pass() {
    let (rows, cols) = hard_columns(101);
    for layout in [
        Layout::Dense,
        Layout::Csr,
        Layout::CsrExplicitZeros,
        Layout::Csc,
    ] {
        for chunk_rows in [1, 17, 101] {
            for threads in [1, 3] {
                // Split even small chunks, so that the threaded path is the one tested.
                let mut acc = QcAccumulator::new(cols).with_threads(threads);
                acc.split_above = 1;
                let s = accumulate(acc, &rows, cols, chunk_rows, layout);
                let what = format!("{layout:?}, {chunk_rows} rows a chunk, {threads} threads");
                check_against_definitions(&s, &rows, cols, &what);
                assert_eq!(s.var[2], 0.0, "{what}");
                assert_eq!(s.var[5], 0.0, "{what}");
            }
        }
    }
}

#[test]
fn threads_give_the_same_counts_and_means() {
    // Integer values: the sums are exact in any order, so splitting changes nothing but the
    // last bits of the variance.
    let (cols, n) = (50, 4000);
    let rows: Vec<f64> = (0..n * cols)
        .map(|k| ((k * 2_654_435_761usize) >> 7) % 9)
        .map(|v| if v < 5 { 0.0 } else { (v - 4) as f64 })
        .collect();
    let run = |threads: usize| {
        let mut acc = QcAccumulator::with_n_obs(n, cols).with_threads(threads);
        acc.split_above = 100;
        accumulate(acc, &rows, cols, 1000, Layout::Csr)
    };
    let (one, four) = (run(1), run(4));
    assert_eq!(one.n_genes, four.n_genes);
    assert_eq!(one.total_counts, four.total_counts);
    assert_eq!(one.n_cells, four.n_cells);
    assert_eq!(one.mean, four.mean);
    for (a, b) in one.var.iter().zip(&four.var) {
        assert!((a - b).abs() <= 1e-12 * a.abs(), "{a} vs {b}");
    }
    check_against_definitions(&four, &rows, cols, "4 threads");
}

#[test]
fn every_dtype_is_reduced_in_place() {
    // [[1, 0, 2], [0, 0, 3], [4, 5, 0]]
    let values = [1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 4.0, 5.0, 0.0];
    let want = accumulate(QcAccumulator::new(3), &values, 3, 3, Layout::Dense);
    let Matrix::Sparse(pattern) = chunk(&values, 3, Layout::Csr) else {
        unreachable!()
    };
    let dense = ndarray::ArrayD::from_shape_vec(vec![3, 3], values.to_vec()).unwrap();
    let stored = ndarray::ArrayD::from_shape_vec(vec![5], vec![1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    // The same matrix, dense and CSR, in each dtype.
    macro_rules! as_dtype {
        ($variant:ident, $t:ty) => {
            (
                ArrayData::$variant(dense.mapv(|x| x as $t)),
                ArrayData::$variant(stored.mapv(|x| x as $t)),
            )
        };
    }
    for (dense, stored) in [
        as_dtype!(U8, u8),
        as_dtype!(I16, i16),
        as_dtype!(I64, i64),
        as_dtype!(U64, u64),
        as_dtype!(F32, f32),
    ] {
        let dtype = dense.dtype();
        let mut acc = QcAccumulator::new(3);
        acc.add_chunk(&Matrix::Dense(dense)).unwrap();
        assert_eq!(acc.finish(), want, "dense {dtype:?}");
        let csr = SparseMatrix::new(
            SparseFormat::Csr,
            (3, 3),
            pattern.indptr().to_vec(),
            pattern.indices().to_vec(),
            stored,
        )
        .unwrap();
        let mut acc = QcAccumulator::new(3);
        acc.add_chunk(&Matrix::Sparse(csr)).unwrap();
        assert_eq!(acc.finish(), want, "CSR {dtype:?}");
    }
    // Bools count as 0 and 1.
    let b = array![[true, false], [true, true]].into_dyn();
    let mut acc = QcAccumulator::new(2);
    acc.add_chunk(&Matrix::Dense(ArrayData::Bool(b))).unwrap();
    let s = acc.finish();
    assert_eq!(s.n_genes, vec![1, 2]);
    assert_eq!(s.total_counts, vec![1.0, 2.0]);
    assert_eq!(s.mean, vec![1.0, 0.5]);
    assert_eq!(s.var, vec![0.0, 0.5]);
}

#[test]
fn nan_stays_nan() {
    let rows = [1.0, f64::NAN, 2.0, 3.0, 4.0, 5.0];
    for layout in [Layout::Dense, Layout::Csr] {
        let s = accumulate(QcAccumulator::new(2), &rows, 2, 2, layout);
        assert!(s.mean[1].is_nan() && s.var[1].is_nan(), "{layout:?}: {s:?}");
        assert_eq!(s.mean[0], 7.0 / 3.0);
        assert!(s.total_counts[0].is_nan());
    }
}

#[test]
fn n_obs_is_allocated_once_and_enforced() {
    let (rows, cols) = hard_columns(30);
    let mut acc = QcAccumulator::with_n_obs(30, cols);
    let (cap_genes, cap_totals) = (acc.n_genes.capacity(), acc.total_counts.capacity());
    for block in rows.chunks(7 * cols) {
        acc.add_chunk(&chunk(block, cols, Layout::Csr)).unwrap();
    }
    assert_eq!(acc.n_genes.capacity(), cap_genes);
    assert_eq!(acc.total_counts.capacity(), cap_totals);
    let err = acc
        .add_chunk(&chunk(&rows[..cols], cols, Layout::Csr))
        .unwrap_err();
    assert!(err.to_string().contains("30 rows announced"), "{err}");
    let s = acc.finish();
    assert_eq!(
        s,
        accumulate(QcAccumulator::new(cols), &rows, cols, 7, Layout::Csr)
    );

    // Fewer rows than announced: the results of the rows added.
    let mut acc = QcAccumulator::with_n_obs(100, cols);
    acc.add_chunk(&chunk(&rows, cols, Layout::Dense)).unwrap();
    assert_eq!(acc.finish().n_genes.len(), 30);
}

#[test]
fn csr_and_csc_chunks_agree_with_dense() {
    // [[1, 0, 2], [0, 0, 3]]
    let csr = SparseMatrix::new(
        SparseFormat::Csr,
        (2, 3),
        vec![0, 2, 3],
        vec![0, 2, 2],
        ArrayData::from(vec![1i32, 2, 3]),
    )
    .unwrap();
    let csc = SparseMatrix::new(
        SparseFormat::Csc,
        (2, 3),
        vec![0, 1, 1, 3],
        vec![0, 0, 1],
        ArrayData::from(vec![1i32, 2, 3]),
    )
    .unwrap();
    let dense = Matrix::Dense(ArrayData::from(array![[1i32, 0, 2], [0, 0, 3]]));
    let run = |m: Matrix| {
        let mut a = QcAccumulator::new(3);
        a.add_chunk(&m).unwrap();
        a.finish()
    };
    let d = run(dense);
    assert_eq!(run(Matrix::Sparse(csr)), d);
    assert_eq!(run(Matrix::Sparse(csc)), d);
    assert_eq!(d.n_genes, vec![2, 1]);
    assert_eq!(d.total_counts, vec![3.0, 3.0]);
    assert_eq!(d.mean, vec![0.5, 0.0, 2.5]);
    assert_eq!(d.var, vec![0.5, 0.0, 0.5]);
}

#[test]
fn wrong_width_and_strings_are_errors() {
    let mut a = QcAccumulator::new(4);
    let err = a
        .add_chunk(&Matrix::Dense(ArrayData::from(array![[1.0f64, 2.0]])))
        .unwrap_err();
    assert!(err.to_string().contains("2 columns"), "{err}");
    let strings = ArrayData::from(array![["a".to_string(), "b".to_string()]].into_dyn());
    let err = QcAccumulator::new(2)
        .add_chunk(&Matrix::Dense(strings))
        .unwrap_err();
    assert!(err.to_string().contains("strings"), "{err}");
}

#[test]
fn parts_in_their_own_genes_append_to_the_whole() {
    // 5 genes; rows 0..3 hold all of them, rows 3..6 only genes (4, 1, 2) in that order.
    let rows_a = [
        1.0,
        0.0,
        2.0,
        1e6,
        3.0,
        0.0,
        5.0,
        0.0,
        1e6 + 1.0,
        0.0,
        4.0,
        1.0,
        0.0,
        1e6,
        2.0,
    ];
    let rows_b = [7.0, 0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 3.0, 3.0];
    let mut whole_rows = rows_a.to_vec();
    for r in rows_b.chunks(3) {
        whole_rows.extend([0.0, r[1], r[2], 0.0, r[0]]);
    }
    let mut whole = QcAccumulator::new(5);
    whole
        .add_chunk(&chunk(&whole_rows, 5, Layout::Csr))
        .unwrap();
    let whole = whole.finish();

    let mut joined = QcAccumulator::with_n_obs(6, 5);
    joined.add_chunk(&chunk(&rows_a, 5, Layout::Dense)).unwrap();
    let mut part = QcAccumulator::new(3);
    part.add_chunk(&chunk(&rows_b, 3, Layout::Csc)).unwrap();
    joined.append(part, &[Some(4), Some(1), Some(2)]).unwrap();
    let joined = joined.finish();

    assert_eq!(joined.n_genes, whole.n_genes);
    assert_eq!(joined.total_counts, whole.total_counts);
    assert_eq!(joined.n_cells, whole.n_cells);
    for j in 0..5 {
        let col: Vec<f64> = whole_rows.iter().skip(j).step_by(5).copied().collect();
        let var = two_pass_var(&col);
        assert!(
            (joined.var[j] - var).abs() <= 1e-9 * var.abs().max(1.0),
            "gene {j}"
        );
        assert!((joined.mean[j] - whole.mean[j]).abs() <= 1e-12 * whole.mean[j].abs().max(1.0));
    }
}

/// A part whose genes an inner join partly drops: its per-cell results count the genes
/// kept only (every layout, in chunks, on threads), its per-gene results go to the genes
/// kept, as the part's kept columns alone give them.
#[test]
fn parts_with_genes_dropped_count_the_kept_ones_per_cell() {
    // 7 genes; the join keeps genes 0, 2, 3, 6 (at 1, 0, 3, 2 in the collection).
    let cols = 7;
    let n = 60;
    let rows: Vec<f64> = (0..n * cols)
        .map(|k| match (k * 7919) % 11 {
            0..=4 => 0.0,
            5 => 1e9,
            v => (v * (k % 13)) as f64 * 0.5,
        })
        .collect();
    let genes = [Some(1), None, Some(0), Some(3), None, None, Some(2)];
    let counted: Vec<bool> = genes.iter().map(Option::is_some).collect();
    // The reference: the kept columns, in the collection's order, reduced as they are.
    let mut kept_rows = Vec::new();
    for row in rows.chunks(cols) {
        kept_rows.extend([row[2], row[0], row[6], row[3]]);
    }
    let want = accumulate(QcAccumulator::new(4), &kept_rows, 4, n, Layout::Dense);
    for layout in [
        Layout::Dense,
        Layout::Csr,
        Layout::CsrExplicitZeros,
        Layout::Csc,
    ] {
        for (chunk_rows, threads) in [(n, 1), (7, 1), (n, 4)] {
            let part = QcAccumulator::new(cols)
                .with_counted_genes(counted.clone())
                .with_threads(threads);
            let mut part = part;
            part.split_above = 1;
            for block in rows.chunks(chunk_rows * cols) {
                part.add_chunk(&chunk(block, cols, layout)).unwrap();
            }
            let mut joined = QcAccumulator::new(4);
            joined.append(part, &genes).unwrap();
            let got = joined.finish();
            let what = format!("{layout:?}, {chunk_rows} rows a chunk, {threads} threads");
            assert_eq!(got.n_genes, want.n_genes, "{what}");
            assert_eq!(got.n_cells, want.n_cells, "{what}");
            for (i, (a, b)) in got.total_counts.iter().zip(&want.total_counts).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "{what}: cell {i}"
                );
            }
            for j in 0..4 {
                assert!((got.mean[j] - want.mean[j]).abs() <= 1e-12 * want.mean[j].abs().max(1.0));
                assert!((got.var[j] - want.var[j]).abs() <= 1e-9 * want.var[j].abs().max(1.0));
            }
        }
    }
    // Counted genes for another width are refused.
    let mut wrong = QcAccumulator::new(cols).with_counted_genes(vec![true; 3]);
    assert!(wrong
        .add_chunk(&chunk(&rows[..cols], cols, Layout::Csr))
        .is_err());
}

#[test]
fn a_part_whose_genes_do_not_fit_is_refused() {
    let part = || {
        let mut p = QcAccumulator::new(2);
        p.add_chunk(&chunk(&[1.0, 2.0], 2, Layout::Dense)).unwrap();
        p
    };
    let mut acc = QcAccumulator::with_n_obs(1, 3);
    assert!(acc.clone().append(part(), &[Some(0)]).is_err()); // one position for two genes
    assert!(acc.clone().append(part(), &[Some(1), Some(1)]).is_err()); // two genes to one
    assert!(acc.clone().append(part(), &[Some(0), Some(3)]).is_err()); // outside the genes
    acc.append(part(), &[Some(2), Some(0)]).unwrap();
    assert!(acc.append(part(), &[Some(0), Some(1)]).is_err()); // more rows than announced
}

#[test]
fn thread_counts_are_capped() {
    let acc = QcAccumulator::new(3).with_threads(usize::MAX);
    assert_eq!(acc.threads, annpage_engine::paged::max_threads());
    assert_eq!(QcAccumulator::new(3).with_threads(0).threads, 1);
}

#[test]
fn an_infinite_value_in_an_earlier_chunk_gives_numpys_mean() {
    // numpy: mean([inf, 1, 2]) = inf, var(...) = nan, whatever the chunks.
    let mut acc = QcAccumulator::new(1);
    for x in [f64::INFINITY, 1.0, 2.0] {
        acc.add_chunk(&Matrix::Dense(ArrayData::from(ndarray::array![[x]])))
            .unwrap();
    }
    let s = acc.finish();
    assert_eq!(s.mean, [f64::INFINITY]);
    assert!(s.var[0].is_nan());
    let mut acc = QcAccumulator::new(1);
    for x in [f64::INFINITY, f64::NEG_INFINITY] {
        acc.add_chunk(&Matrix::Dense(ArrayData::from(ndarray::array![[x]])))
            .unwrap();
    }
    assert!(acc.finish().mean[0].is_nan());
}

#[test]
fn an_accumulator_for_more_rows_than_memory_holds_does_not_abort() {
    let mut acc = QcAccumulator::with_n_obs(usize::MAX, 2);
    let m = Matrix::Dense(ArrayData::from(ndarray::arr2(&[[1.0f32, 0.0]]).into_dyn()));
    acc.add_chunk(&m).unwrap();
    assert_eq!(acc.finish().n_genes, vec![1]);
}
