//! `annpage serve` through HTTP: every endpoint against the same file read in memory, the
//! errors, the byte budget of answers, a client that stops reading, and shutdown.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use annpage::query::Query;
use annpage_server::encode::{decode, NamedArray};
use annpage_server::{DatasetSpec, ServeError, ServeOptions, Server, ShutdownHandle};

use crate::support::*;

mod collection;
mod index;

/// A server answering on a thread of the test, stopped (and checked) on drop.
struct Running {
    addr: SocketAddr,
    stop: ShutdownHandle,
    thread: Option<JoinHandle<std::result::Result<(), ServeError>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
        let result = self.thread.take().unwrap().join().unwrap();
        if !std::thread::panicking() {
            result.unwrap();
        }
    }
}

fn serve(datasets: &[&str], tweak: impl FnOnce(&mut ServeOptions)) -> Running {
    let mut options = ServeOptions {
        datasets: datasets
            .iter()
            .map(|d| {
                // FILE, NAME=FILE or NAME=FILE,FILE (a collection), of fixtures.
                let (name, files) = d
                    .split_once('=')
                    .unwrap_or((d.trim_end_matches(".h5ad"), d));
                DatasetSpec {
                    name: name.into(),
                    paths: files.split(',').map(fixture).collect(),
                    concat: None,
                }
            })
            .collect(),
        cache_bytes: 8 << 20,
        threads: Some(2),
        log_requests: false,
        ..ServeOptions::default()
    };
    tweak(&mut options);
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
    let (addr, stop) = (server.local_addr(), server.shutdown_handle());
    let thread = Some(std::thread::spawn(move || {
        server.run_until(std::future::pending())
    }));
    Running { addr, stop, thread }
}

struct Reply {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn arrays(&self) -> Vec<NamedArray> {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        decode(&self.body).unwrap()
    }

    fn error(&self) -> String {
        let v = self.json();
        assert!(
            String::from_utf8_lossy(&self.body)
                .trim_end()
                .lines()
                .count()
                == 1
        );
        v["error"].as_str().unwrap().to_string()
    }
}

/// One HTTP/1.1 request on a fresh connection, read to its end.
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut raw = vec![];
    s.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut body = raw[end + 4..].to_vec();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            })
            .map(|(_, v)| v.trim().to_string())
    };
    if header("transfer-encoding").as_deref() == Some("chunked") {
        body = unchunk(&body);
    }
    Reply {
        status,
        content_type: header("content-type").unwrap_or_default(),
        body,
    }
}

fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let line = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line]).unwrap(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line + 2..line + 2 + size]);
        raw = &raw[line + 4 + size..];
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, b"")
}

/// Column `j` of a matrix in memory, as float32 (what `/genes` answers).
fn column_f32(m: &Matrix, j: usize) -> Vec<f32> {
    let dense = m.to_dense().unwrap().to_f64().unwrap();
    let dense = dense.into_dimensionality::<ndarray::Ix2>().unwrap();
    dense.column(j).iter().map(|&v| v as f32).collect()
}

#[test]
fn genes_cells_and_embeddings_equal_the_file_read_in_memory() {
    let server = serve(&["pbmc_like_csr.h5ad", "all=all_elements.h5ad"], |_| {});
    let memory = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    let x = memory.x().unwrap();

    let list = get(server.addr, "/datasets").json();
    let names: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pbmc_like_csr", "all"]);
    assert_eq!(list[1]["shape"], serde_json::json!([40, 12]));
    assert_eq!(
        list[1]["layers"],
        serde_json::json!(["counts", "spliced", "unspliced"])
    );

    // One gene by name and by position; several in one request; a layer.
    let by_name = get(server.addr, "/datasets/all/genes/gene_3").arrays();
    assert_eq!(by_name[0].shape, [1, 40]);
    assert_eq!(by_name[0].values::<f32>().unwrap(), column_f32(x, 3));
    assert_eq!(get(server.addr, "/datasets/all/genes/3").arrays(), by_name);
    let several = get(
        server.addr,
        "/datasets/all/genes?names=gene_7,gene_0&positions=3",
    )
    .arrays();
    let mut expected = column_f32(x, 7);
    expected.extend(column_f32(x, 0));
    expected.extend(column_f32(x, 3));
    assert_eq!(several[0].shape, [3, 40]);
    assert_eq!(several[0].values::<f32>().unwrap(), expected);
    let counts = memory.layers().get("counts").unwrap();
    let layer = get(server.addr, "/datasets/all/genes/gene_5?layer=counts").arrays();
    assert_eq!(layer[0].values::<f32>().unwrap(), column_f32(counts, 5));

    // A CSR block of cells in the order asked (repeats kept), two genes.
    let block = get(
        server.addr,
        "/datasets/all/cells?positions=5,0,5,39&genes=gene_2,gene_9",
    )
    .arrays();
    let sub = memory
        .subset(
            &Selection::positions([5, 0, 5, 39]),
            &Selection::names(["gene_2", "gene_9"]),
        )
        .unwrap();
    let csr = sub.x().unwrap().to_sparse(SparseFormat::Csr).unwrap();
    let Matrix::Sparse(csr) = csr else {
        unreachable!()
    };
    let by_name: IndexMap<_, _> = block.iter().map(|a| (a.name.as_str(), a)).collect();
    assert_eq!(by_name["shape"].values::<u64>().unwrap(), [4, 2]);
    assert_eq!(by_name["indptr"].values::<u64>().unwrap(), csr.indptr());
    assert_eq!(by_name["indices"].values::<u32>().unwrap(), csr.indices());
    let data: Vec<f32> = csr
        .data()
        .to_f64()
        .unwrap()
        .iter()
        .map(|&v| v as f32)
        .collect();
    assert_eq!(by_name["data"].values::<f32>().unwrap(), data);
    // By name, as JSON.
    let names = get(
        server.addr,
        "/datasets/all/cells?names=cell_5,cell_0,cell_5,cell_39&genes=gene_2,gene_9&format=json",
    );
    assert_eq!(names.content_type, "application/json");
    let names = names.json();
    assert_eq!(names["indptr"]["data"], serde_json::json!(csr.indptr()));

    // An embedding, every 4th cell, two columns swapped.
    let emb = get(
        server.addr,
        "/datasets/all/obsm/X_pca?max_points=10&dims=1,0",
    )
    .arrays();
    let Element::Array(pca) = memory.obsm().get("X_pca").unwrap() else {
        panic!("X_pca is an array")
    };
    let pca = pca
        .to_f64()
        .unwrap()
        .into_dimensionality::<ndarray::Ix2>()
        .unwrap();
    let positions = emb[1].values::<u64>().unwrap();
    assert_eq!(positions, (0..40).step_by(4).collect::<Vec<u64>>());
    let expected: Vec<f32> = positions
        .iter()
        .flat_map(|&i| [pca[[i as usize, 1]] as f32, pca[[i as usize, 0]] as f32])
        .collect();
    assert_eq!(emb[0].shape, [10, 2]);
    assert_eq!(emb[0].values::<f32>().unwrap(), expected);

    // obs as JSON: names, a categorical as codes and categories, and only the columns asked.
    let obs = get(server.addr, "/datasets/all/obs").json();
    assert_eq!(obs["index"], serde_json::json!(memory.obs_names()));
    let columns: Vec<_> = obs["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let expected: Vec<_> = memory.obs().columns().keys().map(String::as_str).collect();
    assert_eq!(columns, expected);
    let (name, Column::Categorical(cat)) = memory
        .obs()
        .columns()
        .iter()
        .find(|(_, c)| matches!(c, Column::Categorical(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let one = get(
        server.addr,
        &format!("/datasets/all/obs?columns={name}&index=false"),
    )
    .json();
    assert!(one.get("index").is_none());
    assert_eq!(one["columns"][0]["codes"], serde_json::json!(cat.codes));
    assert_eq!(
        one["columns"][0]["categories"],
        serde_json::json!(cat.categories.to_python_strings())
    );
    let none = get(server.addr, "/datasets/all/var?columns=").json();
    assert_eq!(none["columns"], serde_json::json!([]));
    assert_eq!(none["index"], serde_json::json!(memory.var_names()));

    assert_eq!(get(server.addr, "/healthz").body, b"ok\n");
    let metrics = String::from_utf8(get(server.addr, "/metrics").body).unwrap();
    assert!(
        metrics.contains(
            "annpage_requests_total{route=\"GET /datasets/{d}/genes/{gene}\",outcome=\"ok\"} 3"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("annpage_cache_misses_total"));
    let page = get(server.addr, "/");
    assert!(
        page.content_type.starts_with("text/html")
            && String::from_utf8_lossy(&page.body).contains("viewer.js")
    );
}

#[test]
fn a_dataset_without_cells_answers_empty_arrays() {
    let server = serve(&["empty=empty_obs.h5ad"], |_| {});
    let memory = read_h5ad(fixture("empty_obs.h5ad")).unwrap();
    let Element::Array(pca) = memory.obsm().get("X_pca").unwrap() else {
        panic!("X_pca is an array")
    };
    let width = pca.shape()[1] as u64;
    assert!(width > 0);
    let emb = get(server.addr, "/datasets/empty/obsm/X_pca?max_points=10").arrays();
    assert_eq!(emb[0].shape, [0, width]);
    assert_eq!(emb[1].shape, [0]);
    let gene = get(server.addr, "/datasets/empty/genes/0").arrays();
    assert_eq!(gene[0].shape, [1, 0]);
    let obs = get(server.addr, "/datasets/empty/obs").json();
    assert_eq!(obs["index"], serde_json::json!([]));
}

#[test]
fn bad_requests_get_a_status_and_one_line_of_json() {
    let server = serve(&["all=all_elements.h5ad"], |o| o.response_bytes = 16 << 10);
    let cases: [(&str, u16, &str); 12] = [
        (
            "/datasets/nope/genes/gene_0",
            404,
            "no dataset named 'nope'",
        ),
        (
            "/datasets/all/genes/CD3E",
            404,
            "no gene named 'CD3E' in all",
        ),
        (
            "/datasets/all/genes/12",
            400,
            "gene position 12 is out of range",
        ),
        ("/datasets/all/genes?names=", 400, "name the genes"),
        (
            "/datasets/all/genes/gene_0?layer=nope",
            404,
            "no layer 'nope'",
        ),
        ("/datasets/all/genes/gene_0?format=xml", 400, "format 'xml'"),
        (
            "/datasets/all/cells?positions=40",
            400,
            "cell position 40 is out of range (0..40)",
        ),
        (
            "/datasets/all/cells?positions=1&names=cell_1",
            400,
            "one of them",
        ),
        (
            "/datasets/all/cells?names=cell_1,nope,nor_this",
            404,
            "2 of 3 names not found: [\"nope\", \"nor_this\"]",
        ),
        (
            "/datasets/all/obsm/X_pca?dims=99",
            400,
            "dims: 99 is out of range",
        ),
        (
            "/datasets/all/obs?columns=nope",
            404,
            "no obs column 'nope'",
        ),
        ("/nothing/here", 404, "no endpoint GET /nothing/here"),
    ];
    for (path, status, message) in cases {
        let reply = get(server.addr, path);
        assert_eq!(
            reply.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert!(reply.error().contains(message), "{path}: {}", reply.error());
    }
    // An answer larger than the server holds at once: 413, before anything is read.
    let reply = get(
        server.addr,
        "/datasets/all/genes?positions=0,1,2,3,4,5,6,7,8,9,10,11&format=json",
    );
    assert_eq!(reply.status, 413, "{}", reply.error());
    assert!(reply
        .error()
        .contains("more than this server answers at once (14336 bytes)"));
    for (body, message) in [
        (
            &b"{\"obs_query\": \"n_counts >\"}"[..],
            "query 'n_counts >'",
        ),
        (b"[1]", "the request is a JSON object"),
        (
            b"{\"obs_names\": [\"cell_0\"], \"obs_query\": \"x\"}",
            "not several",
        ),
        (b"{\"cells\": 1}", "unknown field 'cells'"),
        (b"{\"compression\": \"zip\"}", "compression 'zip'"),
    ] {
        let reply = request(server.addr, "POST", "/datasets/all/subset", body);
        assert_eq!(reply.status, 400, "{}", reply.error());
        assert!(reply.error().contains(message), "{}", reply.error());
    }
}

#[test]
fn what_a_file_cannot_answer_is_a_422_naming_what_was_asked() {
    let server = serve(&["all=all_elements.h5ad"], |_| {});
    let memory = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    let frame = memory
        .obsm()
        .iter()
        .find(|(_, e)| matches!(e, Element::DataFrame(_)))
        .map(|(key, _)| key.clone())
        .expect("an obsm data frame in all_elements");
    let reply = get(server.addr, &format!("/datasets/all/obsm/{frame}"));
    assert_eq!(reply.status, 422, "{}", reply.error());
    assert!(
        reply.error().contains(&format!("obsm '{frame}'")),
        "{}",
        reply.error()
    );
    // A caller's mistake stays a 4xx naming it (404: names the file does not have).
    let reply = get(server.addr, "/datasets/all/cells?names=cell_0,nobody");
    assert_eq!(reply.status, 404, "{}", reply.error());
    assert!(reply.error().contains("nobody"), "{}", reply.error());
}

#[test]
fn a_subset_download_equals_the_subset_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_path_buf();
    let server = serve(&["all=all_elements.h5ad"], |o| {
        o.scratch_dir = Some(scratch)
    });
    let query = "n_counts > 12";
    let body = serde_json::json!({
        "obs_query": query, "var_names": ["gene_9", "gene_1"], "compression": "gzip"
    });
    let reply = request(
        server.addr,
        "POST",
        "/datasets/all/subset",
        body.to_string().as_bytes(),
    );
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.content_type, "application/x-hdf5");
    let out = dir.path().join("download.h5ad");
    std::fs::write(&out, &reply.body).unwrap();
    let memory = read_h5ad(fixture("all_elements.h5ad")).unwrap();
    let mask = query.parse::<Query>().unwrap().mask(memory.obs()).unwrap();
    let expected = memory
        .subset(
            &Selection::Mask(mask),
            &Selection::names(["gene_9", "gene_1"]),
        )
        .unwrap();
    assert_eq!(read_h5ad(&out).unwrap(), expected);
    // The scratch file was removed once opened for sending.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("download.h5ad")]);
}

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

/// `answer_bytes_in_flight` of `/metrics?format=json`.
fn in_flight(addr: SocketAddr) -> u64 {
    get(addr, "/metrics?format=json").json()["answer_bytes_in_flight"]
        .as_u64()
        .unwrap()
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
fn a_server_refuses_to_start_on_a_bad_dataset_naming_it() {
    let bind = |datasets: Vec<DatasetSpec>| {
        let options = ServeOptions {
            datasets,
            ..ServeOptions::default()
        };
        Server::bind("127.0.0.1:0".parse().unwrap(), options)
            .err()
            .unwrap()
            .to_string()
    };
    let spec = |s: &str| s.parse::<DatasetSpec>().unwrap();
    let missing = fixture("missing.h5ad");
    let e = bind(vec![spec(missing.to_str().unwrap())]);
    assert!(e.contains("missing.h5ad"), "{e}");
    let all = fixture("all_elements.h5ad");
    let a = format!("x={}", all.display());
    let e = bind(vec![spec(&a), spec(&a)]);
    assert!(e.contains("'x' is given twice"), "{e}");
    assert!(bind(vec![]).contains("no dataset to serve"));
    let e = "bad name=file.h5ad"
        .parse::<DatasetSpec>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("'bad name'"), "{e}");
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
    let mut obs = DataFrame::from_index((0..n).map(|i| format!("cell_{i}")).collect());
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
