//! Opening files in backed mode: what is read at open, read-only and legacy files, inputs that
//! are not files, and the read path options choose.

use crate::support::*;

#[test]
fn opening_reads_no_matrix_data() {
    for name in FIXTURES {
        let b = open(fixture(name), 1 << 20);
        let stats = b.cache_stats();
        assert_eq!(
            (stats.bytes_read, stats.misses, stats.entries),
            (0, 0, 0),
            "{name}"
        );
        assert!(!b.is_view());
        let m = read_h5ad(fixture(name)).unwrap();
        assert_eq!(b.shape(), m.shape(), "{name}");
        assert_eq!(b.obs_names().unwrap(), m.obs_names(), "{name}");
        assert_eq!(b.var_names().unwrap(), m.var_names(), "{name}");
        assert_eq!(
            b.layer_names(),
            m.layers().keys().cloned().collect::<Vec<_>>()
        );
        assert_eq!(b.obsm_keys(), m.obsm().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.varm_keys(), m.varm().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.obsp_keys(), m.obsp().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.varp_keys(), m.varp().keys().cloned().collect::<Vec<_>>());
        assert_eq!(b.x().map(|x| x.shape()), m.x().map(Matrix::shape), "{name}");
        // Names and frames are not matrix data either.
        assert_eq!(b.cache_stats().bytes_read, 0, "{name}");
    }
}

#[test]
fn legacy_files_open_read_only() {
    let (_dir, path) = scratch("legacy/legacy_v0_6_csr.h5ad");
    let e = read_h5ad_backed(&path, Mode::ReadWrite, BackedOptions::default()).unwrap_err();
    assert!(e.to_string().contains("legacy layout"), "{e}");
    // In read mode, X is still paged.
    let b = open(&path, 1 << 20);
    assert_eq!(b.cache_stats().bytes_read, 0);
    b.obs().unwrap();
    assert_eq!(b.cache_stats().bytes_read, 0);
    b.x().unwrap().to_memory().unwrap();
    assert!(b.cache_stats().bytes_read > 0);
}

#[test]
fn missing_files_are_io_errors() {
    let e =
        read_h5ad_backed(fixture("nope.h5ad"), Mode::Read, BackedOptions::default()).unwrap_err();
    assert!(e.is_io(), "{e}");
    assert!(e.to_string().contains("nope.h5ad"));
}

#[test]
fn fifos_are_refused_before_any_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe.h5ad");
    let made = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success());
    // Opening a FIFO, for reading or writing, would block until the other end comes.
    for mode in [Mode::Read, Mode::ReadWrite] {
        let e = read_h5ad_backed(&path, mode, BackedOptions::default()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("pipe.h5ad") && msg.contains("not a regular file"),
            "{msg}"
        );
    }
    let e = read_h5ad(&path).unwrap_err().to_string();
    assert!(
        e.contains("pipe.h5ad") && e.contains("not a regular file"),
        "{e}"
    );
}

#[test]
fn read_options_choose_the_path_and_threads() {
    let path = fixture("all_elements_gzip.h5ad");
    let expected = open(&path, 1 << 20).to_memory().unwrap();
    let off = ReadOptions {
        direct: false,
        ..ReadOptions::with_threads(1)
    };
    for read in [off, ReadOptions::with_threads(3)] {
        let options = BackedOptions {
            cache_bytes: 1 << 20,
            read: read.clone(),
            ..BackedOptions::default()
        };
        let adata = read_h5ad_backed(&path, Mode::Read, options).unwrap();
        let paths = adata.x().unwrap().read_paths().unwrap();
        assert_eq!(paths.len(), 2, "{paths:?}");
        for (dataset, how) in paths {
            assert!(dataset.starts_with("/X/"), "{dataset}");
            match (read.direct, how) {
                (false, ReadPath::Hdf5 { reason }) => assert!(reason.contains("turned off")),
                (true, ReadPath::Direct { filters, threads }) => {
                    assert_eq!((filters.as_str(), threads), ("gzip", 3));
                }
                (_, how) => panic!("{dataset}: {how} with {read:?}"),
            }
        }
        assert_eq!(adata.to_memory().unwrap(), expected, "{read:?}");
    }
}

#[test]
fn info_shows_control_characters_in_names_escaped() {
    // A name may hold a terminal's escape sequences and line breaks: shown quoted, escaped.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("names.h5ad");
    let mut a = annpage::AnnData::new(2, 1);
    a.uns_mut().insert(
        "evil\u{1b}]0;title\u{7}\nname".into(),
        annpage::data::Element::Array(annpage::data::ArrayData::from(vec![1i64])),
    );
    a.write_h5ad(&out, &annpage::WriteOptions::default())
        .unwrap();
    let text = describe(&out).unwrap().to_text();
    assert!(
        text.contains(r#""evil\u{1b}]0;title\u{7}\nname""#),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'));
}
