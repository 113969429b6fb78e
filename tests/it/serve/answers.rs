//! Every endpoint's answer against the same file read in memory; bad requests, what a file
//! cannot answer, subset downloads, a bad dataset at start.

use super::*;

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
    // The errors axum makes itself are one line of JSON too.
    for (method, path, status, message) in [
        ("PUT", "/datasets", 405, "Method Not Allowed"),
        ("DELETE", "/datasets/all/subset", 405, "Method Not Allowed"),
        ("GET", "/datasets/all/genes/%C3%28", 400, "UTF-8"),
    ] {
        let reply = request(server.addr, method, path, b"");
        assert_eq!(reply.status, status, "{method} {path}");
        assert_eq!(reply.content_type, "application/json", "{method} {path}");
        assert!(
            reply.error().contains(message),
            "{method} {path}: {}",
            reply.error()
        );
    }
    // A body declared larger than taken: 413 at once, without waiting for it.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /datasets/all/subset HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000000\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 413");
}

#[test]
fn a_request_body_that_stops_coming_is_a_408_and_unknown_methods_are_counted_as_one() {
    let server = serve(&["all=all_elements.h5ad"], |o| {
        o.header_timeout = Duration::from_millis(300);
    });
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /datasets/all/subset HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{{\"obs"
    )
    .unwrap();
    let start = Instant::now();
    let mut raw = vec![];
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert!(raw.contains("did not arrive within"), "{raw}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // Any token is an HTTP method: those HTTP does not define share one counter.
    for method in ["FOO", "BAR", "BAZ"] {
        assert_eq!(request(server.addr, method, "/datasets", b"").status, 405);
    }
    let metrics = String::from_utf8(get(server.addr, "/metrics").body).unwrap();
    assert!(
        !metrics.contains("FOO") && !metrics.contains("BAZ"),
        "{metrics}"
    );
    assert!(metrics.contains("OTHER /datasets"), "{metrics}");
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
