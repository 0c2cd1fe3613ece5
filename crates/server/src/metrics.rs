//! Prometheus metrics of the broker: requests by endpoint and status, verdicts by TEE, and the
//! latency histograms of verification and release, rendered in the text exposition format.
//!
//! Hand-rolled on atomics: the label sets are small and fixed (endpoints are route templates,
//! never raw paths), so no label a client chooses can grow the registry without bound.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tessera_collateral::Cache;

/// Bucket upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with fixed buckets. Each observation adds one to a single slot (the
/// first bucket that holds it, or the last slot for one above every bound); rendering adds the
/// slots up, so a scrape never shows a lower bucket above a higher one or `+Inf` below either,
/// even while requests are observed.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last slot: above every bound.
    slots: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        if let Some(slot) = self.slots.get(slot) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (bound, slot) in BUCKETS.iter().zip(&self.slots) {
            cumulative = cumulative.saturating_add(slot.load(Ordering::Relaxed));
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let above = self
            .slots
            .last()
            .map_or(0, |slot| slot.load(Ordering::Relaxed));
        let count = cumulative.saturating_add(above);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// The broker's metrics registry (one per server).
#[derive(Debug, Default)]
pub struct Metrics {
    /// (endpoint template, status) -> count.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// (tee, verdict) -> count.
    verdicts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Time spent verifying and appraising evidence on `/attest`.
    pub verification: Histogram,
    /// Time spent serving a resource (policy check, unsealing, JWE).
    pub release: Histogram,
    /// The collateral cache whose counters are exported.
    collateral: OnceLock<Arc<Cache>>,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, endpoint: &'static str, status: u16) {
        if let Ok(mut map) = self.requests.lock() {
            *map.entry((endpoint, status)).or_default() += 1;
        }
    }

    /// Counts one attestation verdict.
    pub fn verdict(&self, tee: &'static str, verdict: &'static str) {
        if let Ok(mut map) = self.verdicts.lock() {
            *map.entry((tee, verdict)).or_default() += 1;
        }
    }

    /// Exports `cache`'s hits, misses and fetch errors (the first cache set stays).
    pub fn set_collateral_cache(&self, cache: Arc<Cache>) {
        let _ = self.collateral.set(cache);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tessera_requests_total Requests answered, by endpoint and status.\n");
        out.push_str("# TYPE tessera_requests_total counter\n");
        if let Ok(map) = self.requests.lock() {
            for ((endpoint, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "tessera_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP tessera_attestations_total Attestation verdicts, by TEE.\n");
        out.push_str("# TYPE tessera_attestations_total counter\n");
        if let Ok(map) = self.verdicts.lock() {
            for ((tee, verdict), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "tessera_attestations_total{{tee=\"{tee}\",verdict=\"{verdict}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP tessera_verification_seconds Evidence verification and appraisal time.\n",
        );
        out.push_str("# TYPE tessera_verification_seconds histogram\n");
        self.verification
            .render(&mut out, "tessera_verification_seconds", "");
        out.push_str("# HELP tessera_release_seconds Resource release time.\n");
        out.push_str("# TYPE tessera_release_seconds histogram\n");
        self.release.render(&mut out, "tessera_release_seconds", "");
        let stats = self
            .collateral
            .get()
            .map(|cache| cache.stats())
            .unwrap_or_default();
        for (name, help, value) in [
            (
                "hits",
                "Collateral lookups answered from the cache.",
                stats.hits,
            ),
            (
                "misses",
                "Collateral lookups that needed a fetch or found nothing offline.",
                stats.misses,
            ),
            (
                "fetches",
                "Collateral fetches that succeeded.",
                stats.fetches,
            ),
            (
                "fetch_errors",
                "Collateral fetches that failed.",
                stats.fetch_errors,
            ),
            (
                "failures_reused",
                "Collateral lookups answered with a recent fetch failure, without a fetch.",
                stats.failures_reused,
            ),
            (
                "not_stored",
                "Fetched collateral kept in memory only: the cache directory is full.",
                stats.not_stored,
            ),
        ] {
            let _ = writeln!(out, "# HELP tessera_collateral_cache_{name}_total {help}");
            let _ = writeln!(out, "# TYPE tessera_collateral_cache_{name}_total counter");
            let _ = writeln!(out, "tessera_collateral_cache_{name}_total {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("/kbs/v0/auth", 200);
        m.request("/kbs/v0/auth", 200);
        m.request("/kbs/v0/attest", 401);
        m.verdict("snp", "pass");
        m.verification.observe(Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains("tessera_requests_total{endpoint=\"/kbs/v0/auth\",status=\"200\"} 2")
        );
        assert!(
            text.contains("tessera_requests_total{endpoint=\"/kbs/v0/attest\",status=\"401\"} 1")
        );
        assert!(text.contains("tessera_attestations_total{tee=\"snp\",verdict=\"pass\"} 1"));
        assert!(text.contains("tessera_verification_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("tessera_verification_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("tessera_verification_seconds_count 1"));
        assert!(text.contains("tessera_release_seconds_count 0"));
        assert!(text.contains("tessera_collateral_cache_hits_total 0"));
        assert!(text.contains("tessera_collateral_cache_misses_total 0"));
        assert!(text.contains("tessera_collateral_cache_fetches_total 0"));
        assert!(text.contains("tessera_collateral_cache_fetch_errors_total 0"));
    }

    /// Buckets are cumulative, `+Inf` and `_count` count everything (one above every bound
    /// too), and a scrape taken while requests are observed never shows a lower bucket above
    /// a higher one (each observation is one increment).
    #[test]
    fn histogram_buckets_are_cumulative_and_consistent_while_observed() {
        let h = Arc::new(Histogram::default());
        for ms in [0, 1, 3, 3, 40, 9_000] {
            h.observe(Duration::from_millis(ms));
        }
        let mut out = String::new();
        h.render(&mut out, "t", "");
        for line in [
            "t_bucket{le=\"0.0005\"} 1",
            "t_bucket{le=\"0.001\"} 2",
            "t_bucket{le=\"0.005\"} 4",
            "t_bucket{le=\"0.05\"} 5",
            "t_bucket{le=\"2.5\"} 5",
            "t_bucket{le=\"+Inf\"} 6",
            "t_count 6",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (h, stop) = (Arc::clone(&h), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        h.observe(Duration::from_micros(i % 3_000_000));
                        i = i.wrapping_add(7_919);
                    }
                })
            })
            .collect();
        for _ in 0..2_000 {
            let mut out = String::new();
            h.render(&mut out, "t", "l=\"x\"");
            let counts: Vec<u64> = out
                .lines()
                .filter(|l| l.starts_with("t_bucket") || l.starts_with("t_count"))
                .map(|l| {
                    l.rsplit(' ')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .unwrap_or(u64::MAX)
                })
                .collect();
            assert_eq!(counts.len(), BUCKETS.len() + 2);
            assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{out}");
            assert_eq!(counts[BUCKETS.len()], counts[BUCKETS.len() + 1], "{out}");
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap_or_default();
        }
    }

    #[test]
    fn exports_collateral_cache_counters() {
        let m = Metrics::default();
        let cache = Arc::new(Cache::in_memory());
        let item = tessera_collateral::Item::RootCaCrl;
        // Offline and empty: a miss.
        assert!(cache.get(&item, tessera_pki::UnixTime::now()).is_err());
        m.set_collateral_cache(Arc::clone(&cache));
        assert!(
            m.render()
                .contains("tessera_collateral_cache_misses_total 1")
        );
    }
}
