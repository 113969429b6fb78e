//! `annpage serve`: its arguments, and the process-wide tuning the server gets before it starts.

use std::path::PathBuf;

use clap::Args;

use crate::inputs::JoinArgs;

/// `annpage serve`'s arguments.
#[derive(Args)]
pub struct ServeArgs {
    /// Files to serve (.h5ad or Zarr), each FILE (named by its stem) or NAME=FILE; or
    /// NAME=FILE,FILE,... for several files served as one collection (their concatenation
    /// along obs, read lazily).
    #[arg(required = true)]
    datasets: Vec<String>,
    /// How each collection concatenates its files.
    #[command(flatten)]
    join: JoinArgs,
    /// The port to listen on (0: any free port, printed on start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Cache budget in MiB, shared by every file.
    #[arg(long, default_value_t = 1024)]
    cache_mb: usize,
    /// MiB the answers of all requests in flight may hold at once (a larger answer is
    /// refused with 413).
    #[arg(long, default_value_t = 128)]
    response_mb: usize,
    /// Reader threads (default: one per core; at most four per core, or 16).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Keep local copies here that make reads fast (written at start when missing or older
    /// than the file): NAME.plain.h5ad, an uncompressed copy of a compressed file, and
    /// NAME.genes.h5ad, X with each gene's values together.
    #[arg(long)]
    index: Option<PathBuf>,
    /// Do not log a line per request.
    #[arg(long)]
    quiet: bool,
    /// Seconds a client may go without taking any of its answer before it is disconnected and
    /// the answer's memory released.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    send_timeout: u64,
    /// The slowest, in KiB a second, a client may take an answer held in memory: an answer
    /// of N KiB is dropped after the send timeout plus N / this many seconds (0: no limit).
    #[arg(long, default_value_t = 1024)]
    min_send_kib: u64,
    /// Seconds a request's head may take to arrive before the connection is closed.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Connections open at once; more are closed as soon as they are accepted.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
}

/// Caps glibc's malloc arenas at `n` for the server's process. Each thread that allocates
/// while another holds an arena gets an arena of its own (up to 8 per core), and freed blocks
/// stay in it: with a request per thread, the process kept 450 MB above its budget under load.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cap_malloc_arenas(n: usize) -> bool {
    let n = i32::try_from(n.max(1)).unwrap_or(i32::MAX);
    // SAFETY: mallopt takes two integers and only changes the allocator's tuning; glibc allows
    // M_ARENA_MAX to be set at any time (existing arenas stay, new threads share them). It is
    // called before the server starts its threads; on failure it returns 0 and changes nothing.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, n) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas(_: usize) -> bool {
    false
}

/// Serves until SIGINT or SIGTERM.
pub fn serve(args: ServeArgs) -> Result<(), annpage_server::ServeError> {
    let threads = args
        .threads
        .map(usize::from)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    cap_malloc_arenas(threads);
    let datasets = args
        .datasets
        .iter()
        .map(|d| d.parse())
        .collect::<Result<Vec<annpage_server::DatasetSpec>, _>>()?;
    let datasets = datasets
        .into_iter()
        .map(|mut d| {
            if d.paths.len() > 1 {
                d.concat = Some(args.join.options(annpage::Axis::Obs));
            }
            d
        })
        .collect();
    let options = annpage_server::ServeOptions {
        datasets,
        cache_bytes: args.cache_mb << 20,
        response_bytes: args.response_mb << 20,
        threads: Some(threads),
        log_requests: !args.quiet,
        index_dir: args.index,
        send_timeout: std::time::Duration::from_secs(args.send_timeout),
        min_send_rate: args.min_send_kib.saturating_mul(1024),
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        ..Default::default()
    };
    let server = annpage_server::Server::bind((args.bind, args.port).into(), options)?;
    // The one line a script waits for (port 0 picks a free port).
    eprintln!("annpage: serving on http://{}", server.local_addr());
    server.run()
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn the_malloc_arena_cap_is_accepted_and_allocation_still_works() {
        assert!(super::cap_malloc_arenas(2));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                std::thread::spawn(move || {
                    vec![i as u8; 1 << 20]
                        .iter()
                        .map(|&b| b as usize)
                        .sum::<usize>()
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            assert_eq!(t.join().unwrap(), i << 20);
        }
    }
}
