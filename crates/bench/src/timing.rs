//! Interleaved timing: contestants alternate in short rounds; each one's median round wins.
//!
//! On a small machine shared with other jobs, timing A for ten seconds and then B for ten seconds
//! compares two different neighbours. Here every round times `iters` calls of each contestant in
//! turn (the starting contestant rotates), so a noisy stretch hits all of them; the median of the
//! per-round means discards the rounds a neighbour spoiled.

use std::hint::black_box;
use std::time::Instant;

/// How many rounds of how many calls.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Rounds discarded before measuring (caches, branch predictors, CPU frequency).
    pub warmup_rounds: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Calls per contestant per round.
    pub iters: u32,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            warmup_rounds: 3,
            rounds: 31,
            iters: 200,
        }
    }
}

/// A contestant: a name and one operation, which returns whether it succeeded.
pub struct Contestant<'a> {
    /// Name, for error messages.
    pub name: &'static str,
    /// The operation timed.
    pub op: Box<dyn FnMut() -> bool + 'a>,
}

impl std::fmt::Debug for Contestant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contestant")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A contestant failed during timing, so its time is not the time of the verification path.
#[derive(Debug)]
pub struct Failed {
    /// The contestant.
    pub name: &'static str,
    /// How many calls failed.
    pub failures: u64,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} failed {} calls during timing",
            self.name, self.failures
        )
    }
}

impl std::error::Error for Failed {}

/// Time one round of `iters` calls; mean ns per call. Counts failures.
fn round(op: &mut dyn FnMut() -> bool, iters: u32, failures: &mut u64) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        if !black_box(op()) {
            *failures += 1;
        }
    }
    start.elapsed().as_secs_f64() * 1e9 / f64::from(iters.max(1))
}

/// Median of `xs` (sorted in place); 0 when empty.
fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match (xs.get(n / 2), n % 2) {
        (None, _) => 0.0,
        (Some(mid), 1) => *mid,
        (Some(mid), _) => xs.get(n / 2 - 1).map_or(*mid, |lo| (lo + mid) / 2.0),
    }
}

/// Run `contestants` interleaved under `plan`; the median ns per call of each, in order.
///
/// # Errors
/// [`Failed`] when any call of a contestant returned `false`.
pub fn interleave(contestants: &mut [Contestant<'_>], plan: Plan) -> Result<Vec<f64>, Failed> {
    let n = contestants.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(plan.rounds); n];
    let mut failures = vec![0u64; n];
    for r in 0..plan.warmup_rounds + plan.rounds {
        for k in 0..n {
            let i = (r + k) % n;
            let (Some(c), Some(fails)) = (contestants.get_mut(i), failures.get_mut(i)) else {
                continue;
            };
            let ns = round(&mut c.op, plan.iters, fails);
            if r >= plan.warmup_rounds
                && let Some(s) = samples.get_mut(i)
            {
                s.push(ns);
            }
        }
    }
    for (c, &f) in contestants.iter().zip(&failures) {
        if f > 0 {
            return Err(Failed {
                name: c.name,
                failures: f,
            });
        }
    }
    Ok(samples.iter_mut().map(|s| median(s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
