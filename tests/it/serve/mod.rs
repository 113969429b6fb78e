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

/// `answer_bytes_in_flight` of `/metrics?format=json`.
fn in_flight(addr: SocketAddr) -> u64 {
    get(addr, "/metrics?format=json").json()["answer_bytes_in_flight"]
        .as_u64()
        .unwrap()
}

mod answers;
mod clients;
mod collection;
mod frames;
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
