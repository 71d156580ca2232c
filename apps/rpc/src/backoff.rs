use std::time::Duration;

/// Bounded exponential backoff with jitter, for reconnecting without a thundering herd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait before attempt number `attempt` (0-based): doubling from `initial`, capped at
    /// `max`, then drawn uniformly from its upper half ("equal jitter").
    pub fn delay(&self, attempt: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX));
        let capped = doubled.min(self.max);
        let half = capped / 2;
        half + half.mul_f64(jitter_fraction())
    }
}

/// A number in [0, 1) that differs between processes and calls; no cryptographic quality
/// needed, so no extra dependency.
fn jitter_fraction() -> f64 {
    let random = uuid::Uuid::new_v4().as_u128() as u64;
    (random >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_bounded_and_jitter() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for attempt in 0..64 {
            let expected = (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(20)))
                .min(Duration::from_secs(2));
            let delay = backoff.delay(attempt);
            assert!(
                delay >= expected / 2 && delay <= expected,
                "attempt {attempt}: {delay:?}"
            );
        }
        let draws: std::collections::HashSet<_> = (0..20).map(|_| backoff.delay(5)).collect();
        assert!(draws.len() > 1, "no jitter");
    }
}
