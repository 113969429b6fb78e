//! Request counters and latency histograms by route, rendered with the cache's counters as
//! Prometheus text (`GET /metrics`) or JSON (`?format=json`).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use annpage::backed::CacheStats;
use parking_lot::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Route {
    requests: u64,
    client_errors: u64,
    server_errors: u64,
    seconds: f64,
    /// Requests at or below each bucket's bound (not cumulative; the last counts the rest).
    buckets: [u64; BUCKETS.len() + 1],
}

/// Counters of every route (`GET /datasets/{d}/genes/{gene}`…) since the server started.
#[derive(Default)]
pub(crate) struct Metrics {
    routes: Mutex<BTreeMap<String, Route>>,
}

impl Metrics {
    pub fn record(&self, route: &str, status: u16, elapsed: Duration) {
        let mut routes = self.routes.lock();
        let r = routes.entry(route.to_string()).or_default();
        r.requests += 1;
        r.client_errors += u64::from((400..500).contains(&status));
        r.server_errors += u64::from(status >= 500);
        let s = elapsed.as_secs_f64();
        r.seconds += s;
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        r.buckets[i] += 1;
    }

    /// Prometheus' text exposition format.
    pub fn prometheus(&self, cache: &CacheStats, in_flight: usize) -> String {
        let mut out = String::new();
        let gauges: [(&str, &str, f64); 8] = [
            (
                "annpage_cache_budget_bytes",
                "the cache's budget",
                cache.budget as f64,
            ),
            (
                "annpage_cache_held_bytes",
                "bytes the cache holds",
                cache.bytes_held as f64,
            ),
            (
                "annpage_cache_hits_total",
                "cache lookups that found their block",
                cache.hits as f64,
            ),
            (
                "annpage_cache_misses_total",
                "cache lookups that read their block",
                cache.misses as f64,
            ),
            (
                "annpage_cache_read_bytes_total",
                "bytes read and decoded from storage",
                cache.bytes_read as f64,
            ),
            (
                "annpage_cache_evictions_total",
                "blocks evicted",
                cache.evictions as f64,
            ),
            (
                "annpage_cache_hit_ratio",
                "hits / lookups",
                cache.hit_rate(),
            ),
            (
                "annpage_answer_bytes_in_flight",
                "bytes reserved by answers being built or sent",
                in_flight as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let routes = self.routes.lock().clone();
        let _ = writeln!(out, "# HELP annpage_requests_total requests answered, by route and outcome\n# TYPE annpage_requests_total counter");
        for (route, r) in &routes {
            let ok = r.requests - r.client_errors - r.server_errors;
            for (outcome, n) in [
                ("ok", ok),
                ("client_error", r.client_errors),
                ("server_error", r.server_errors),
            ] {
                let _ = writeln!(
                    out,
                    "annpage_requests_total{{route=\"{route}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }
        let _ = writeln!(out, "# HELP annpage_request_seconds time to answer, by route\n# TYPE annpage_request_seconds histogram");
        for (route, r) in &routes {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += r.buckets[i];
                let _ = writeln!(out, "annpage_request_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}");
            }
            let _ = writeln!(
                out,
                "annpage_request_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                r.requests
            );
            let _ = writeln!(
                out,
                "annpage_request_seconds_sum{{route=\"{route}\"}} {}",
                r.seconds
            );
            let _ = writeln!(
                out,
                "annpage_request_seconds_count{{route=\"{route}\"}} {}",
                r.requests
            );
        }
        out
    }

    /// The same counters as JSON.
    pub fn json(&self, cache: &CacheStats, in_flight: usize) -> serde_json::Value {
        let routes = self.routes.lock().clone();
        let routes: serde_json::Map<_, _> = routes
            .into_iter()
            .map(|(route, r)| {
                let v = serde_json::json!({
                    "requests": r.requests,
                    "client_errors": r.client_errors,
                    "server_errors": r.server_errors,
                    "seconds": r.seconds,
                });
                (route, v)
            })
            .collect();
        serde_json::json!({
            "cache": {
                "budget": cache.budget,
                "bytes_held": cache.bytes_held,
                "hits": cache.hits,
                "misses": cache.misses,
                "bytes_read": cache.bytes_read,
                "evictions": cache.evictions,
                "hit_rate": cache.hit_rate(),
            },
            "answer_bytes_in_flight": in_flight,
            "routes": routes,
        })
    }
}
