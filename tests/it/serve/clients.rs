//! The byte budget of answers against clients: slow, stalled, trickling and many at once.

use super::*;

/// Asks pbmc_like_csr for every gene in `format` (binary 8 MB, JSON tens of MB: more than
/// the connection's buffers take) and reads nothing.
fn ask_for_every_gene(addr: SocketAddr, format: &str) -> TcpStream {
    let all: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    let mut stalled = TcpStream::connect(addr).unwrap();
    write!(
        stalled,
        "GET /datasets/pbmc_like_csr/genes?positions={}&format={format} HTTP/1.1\r\nHost: t\r\n\r\n",
        all.join(",")
    )
    .unwrap();
    stalled
}

#[test]
fn an_answer_being_sent_holds_its_bytes_not_the_reads_estimate() {
    let server = serve(&["pbmc_like_csr.h5ad"], |o| o.response_bytes = 1 << 30);
    let _stalled = ask_for_every_gene(server.addr, "binary");
    // 1000 genes × 2000 cells of float32 and a header; the read reserved 24 bytes a value,
    // which it holds while it reads, then gives back all but the body's.
    let body = 1000 * 2000 * 4;
    let start = Instant::now();
    let mut held = in_flight(server.addr);
    while !(body..body + (64 << 10)).contains(&held) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{held} bytes held"
        );
        std::thread::sleep(Duration::from_millis(20));
        held = in_flight(server.addr);
    }
    // And keeps holding it while the client reads nothing.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(in_flight(server.addr), held);
}

/// A dataset `wide` of 20,000 × 500 dense float32 values, and a connection that has asked it
/// for every gene: a binary answer of 40 MB, larger than the sockets' buffers.
fn ask_for_a_wide_answer(
    dir: &Path,
    tweak: impl FnOnce(&mut ServeOptions),
) -> (Running, TcpStream) {
    let path = dir.join("wide.h5ad");
    let (n, k) = (20_000, 500);
    let mut a = AnnData::new(n, k);
    let x = ndarray::Array2::from_shape_fn((n, k), |(i, j)| ((i * 7 + j) % 13) as f32);
    a.set_x(Some(Matrix::Dense(ArrayData::from(x)))).unwrap();
    a.write_h5ad(&path, &WriteOptions::default()).unwrap();
    let server = serve(&[], |o| {
        o.datasets = vec![path.to_str().unwrap().parse().unwrap()];
        o.send_timeout = Duration::from_millis(1500);
        o.response_bytes = 1 << 30;
        tweak(o);
    });
    let genes: Vec<String> = (0..k).map(|j| j.to_string()).collect();
    let mut client = TcpStream::connect(server.addr).unwrap();
    write!(
        client,
        "GET /datasets/wide/genes?positions={} HTTP/1.1\r\nHost: t\r\n\r\n",
        genes.join(",")
    )
    .unwrap();
    (server, client)
}

#[test]
fn a_slow_client_that_keeps_reading_gets_the_whole_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (n, k) = (20_000, 500);
    // 1 MiB every 60 ms: the answer takes over 2 s, more than the send timeout, but the
    // client never stops taking it (the server sees it take more each time the sockets'
    // buffers have drained enough to wake the writer: well within the timeout), and faster
    // than the least rate (default 1 MiB/s).
    let (_server, mut slow) = ask_for_a_wide_answer(dir.path(), |_| {});
    let start = Instant::now();
    let (mut got, mut buf) = (0, vec![0u8; 1 << 20]);
    while got < n * k * 4 {
        match slow.read(&mut buf).unwrap() {
            0 => break,
            read => got += read,
        }
        std::thread::sleep(Duration::from_millis(60));
    }
    assert!(
        got >= n * k * 4,
        "{got} bytes arrived of more than {}",
        n * k * 4
    );
    assert!(start.elapsed() > Duration::from_millis(1500));
}

#[test]
fn a_client_that_stops_reading_releases_its_answer_after_the_send_timeout() {
    let server = serve(&["pbmc_like_csr.h5ad"], |o| {
        o.send_timeout = Duration::from_millis(1500);
        o.response_bytes = 1 << 30;
    });
    let mut stalled = ask_for_every_gene(server.addr, "json");
    let start = Instant::now();
    let mut held = 0;
    while held == 0 && start.elapsed() < Duration::from_secs(10) {
        held = in_flight(server.addr);
    }
    assert!(
        held > 10 << 20,
        "the answer is reserved while it is sent: {held}"
    );
    // Nothing read: once the timeout passes, the reservation (and the answer) is dropped.
    while in_flight(server.addr) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the stalled answer was never released"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(start.elapsed() >= Duration::from_millis(1000));
    // The server still answers, and the stalled connection ends short of the whole answer.
    assert_eq!(get(server.addr, "/healthz").status, 200);
    let mut got = vec![];
    let _ = stalled.read_to_end(&mut got);
    assert!(got.len() < 20 << 20, "{} bytes arrived", got.len());
}

#[test]
fn a_client_that_trickles_releases_its_answer_at_the_least_rate() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mut trickle) = ask_for_a_wide_answer(dir.path(), |o| o.min_send_rate = 16 << 20);
    trickle
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // 512 KiB every 250 ms (2 MiB/s): never idle for the send timeout, but far below the
    // least rate, so the answer is dropped after 1.5 s + its size at 16 MiB/s, short.
    let start = Instant::now();
    let (mut got, mut buf) = (vec![], vec![0u8; 512 << 10]);
    loop {
        match trickle.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(250));
    }
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap();
    assert!(length > 20_000 * 500 * 4, "{head}");
    let body = got.len() - head_end;
    assert!(
        body < length,
        "the whole answer ({length} bytes) arrived in {:?}",
        start.elapsed()
    );
    assert!(
        body > 2 << 20,
        "the client was cut off before it fell behind: {body}"
    );
    assert_eq!(in_flight(server.addr), 0);
}

#[test]
fn many_clients_at_once_get_their_own_answers() {
    let server = serve(&["pbmc_like_csr.h5ad"], |o| o.cache_bytes = 256 << 10);
    let memory = read_h5ad(fixture("pbmc_like_csr.h5ad")).unwrap();
    let x = memory.x().unwrap().clone();
    std::thread::scope(|s| {
        for t in 0..8 {
            let x = &x;
            let addr = server.addr;
            s.spawn(move || {
                for k in 0..6 {
                    let g = (t * 97 + k * 31) % 1000;
                    let got = get(addr, &format!("/datasets/pbmc_like_csr/genes/{g}")).arrays();
                    assert_eq!(
                        got[0].values::<f32>().unwrap(),
                        column_f32(x, g),
                        "gene {g}"
                    );
                }
            });
        }
    });
}

#[test]
fn a_stalled_download_neither_holds_its_file_nor_the_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_path_buf();
    let server = serve(&["pbmc_like_csr.h5ad"], |o| {
        o.send_timeout = Duration::from_millis(1000);
        o.scratch_dir = Some(scratch);
    });
    // The whole file as a download, and a JSON answer of tens of MB, neither read.
    let mut download = TcpStream::connect(server.addr).unwrap();
    let body = "{}";
    write!(
        download,
        "POST /datasets/pbmc_like_csr/subset HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let stalled = ask_for_every_gene(server.addr, "json");
    let start = Instant::now();
    while in_flight(server.addr) == 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
    }
    // Once the download's head arrives, its scratch file is already unlinked.
    let mut head = [0u8; 12];
    download.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let stop = Instant::now();
    drop(server);
    assert!(
        stop.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        stop.elapsed()
    );
    drop((download, stalled));
}

#[test]
fn a_trickling_client_is_disconnected_and_connections_are_capped() {
    let server = serve(&["all=all_elements.h5ad"], |o| {
        o.header_timeout = Duration::from_millis(300);
        o.max_connections = 2;
    });
    // Half a request head, then nothing: closed once the head's deadline passes.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(slow, "GET /healthz HTTP/1.1\r\nHost:").unwrap();
    let start = Instant::now();
    let mut got = vec![];
    let _ = slow.read_to_end(&mut got);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    drop(slow);
    // Two connections held open; a third is closed without an answer.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut third = TcpStream::connect(server.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = write!(
        third,
        "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    );
    let mut answer = vec![];
    let _ = third.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    drop(held);
    // Once they close, requests are answered again.
    let start = Instant::now();
    loop {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = write!(
            s,
            "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        );
        let mut answer = vec![];
        let _ = s.read_to_end(&mut answer);
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no answer after the held connections closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
