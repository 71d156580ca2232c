use crate::{BigNumber, DomainError};

/// The bound a server applies unless configured otherwise: fib(1,000,000) has 208,988 digits
/// and takes tens of milliseconds, far below any broker's acknowledgement timeout.
pub const DEFAULT_MAX_N: u64 = 1_000_000;

/// Past this index fib(n) no longer fits in a u128 (fib(186) is the last that does).
const LAST_U128_INDEX: u64 = 186;

/// The exact value of fib(n), for any n (fib(0) = 0, fib(1) = 1).
///
/// Uses fast doubling: O(log n) big-integer multiplications. Memory and time grow with n
/// (fib(n) has about 0.209 n decimal digits), so callers facing untrusted input bound n first
/// with [`Fibonacci::admit`].
pub fn fib(n: u64) -> BigNumber {
    if n <= LAST_U128_INDEX {
        return BigNumber::from(fib_u128(n));
    }
    fib_fast_doubling(n)
}

/// Small indices: a plain loop of additions beats any big-integer set-up.
fn fib_u128(n: u64) -> u128 {
    if n == 0 {
        return 0;
    }
    // Stops at (F(n-1), F(n)) so that F(n+1), which may not fit, is never computed.
    let (mut previous, mut current) = (0u128, 1u128);
    for _ in 1..n {
        (previous, current) = (current, previous + current);
    }
    current
}

/// Walks the bits of n from the top, keeping (F(k), F(k+1)) and using
/// F(2k) = F(k) (2 F(k+1) - F(k)) and F(2k+1) = F(k)^2 + F(k+1)^2.
fn fib_fast_doubling(n: u64) -> BigNumber {
    let top_bit = u64::BITS - 1 - n.leading_zeros();
    let (mut f_k, mut f_k1) = (BigNumber::ZERO, BigNumber::ONE);
    for bit in (1..=top_bit).rev() {
        let f_2k = &f_k * (&f_k1 + &f_k1 - &f_k);
        let f_2k1 = f_k.sqr() + f_k1.sqr();
        if (n >> bit) & 1 == 0 {
            (f_k, f_k1) = (f_2k, f_2k1);
        } else {
            f_k1 = &f_2k + &f_2k1;
            f_k = f_2k1;
        }
    }
    // The last step is the most expensive one: compute only the value asked for.
    if n & 1 == 0 {
        &f_k * (&f_k1 + &f_k1 - &f_k)
    } else {
        f_k.sqr() + f_k1.sqr()
    }
}

/// The service a server runs: fib(n) under a bound on n.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fibonacci {
    max_n: u64,
}

impl Default for Fibonacci {
    fn default() -> Self {
        Self::with_max_n(DEFAULT_MAX_N)
    }
}

impl Fibonacci {
    pub fn with_max_n(max_n: u64) -> Self {
        Self { max_n }
    }

    pub fn max_n(&self) -> u64 {
        self.max_n
    }

    /// Checks n against the bound without computing anything.
    ///
    /// # Errors
    /// [`DomainError::AboveBound`] for n above the bound.
    pub fn admit(&self, n: u64) -> Result<(), DomainError> {
        if n > self.max_n {
            return Err(DomainError::AboveBound { n, max: self.max_n });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decimal(n: u64) -> String {
        fib(n).to_string()
    }

    #[test]
    fn known_values() {
        assert_eq!(decimal(0), "0");
        assert_eq!(decimal(1), "1");
        assert_eq!(decimal(2), "1");
        assert_eq!(decimal(30), "832040");
        assert_eq!(decimal(93), "12200160415121876738");
        assert_eq!(decimal(94), "19740274219868223167");
        assert_eq!(decimal(100), "354224848179261915075");
        assert_eq!(decimal(186), "332825110087067562321196029789634457848");
        assert_eq!(decimal(187), "538522340430300790495419781092981030533");
    }

    #[test]
    fn fib_1000_by_its_digits() {
        let digits = decimal(1000);
        assert_eq!(digits.len(), 209);
        assert!(digits.starts_with("43466557686937456435"));
        let digit_sum: u32 = digits.bytes().map(|b| u32::from(b - b'0')).sum();
        assert_eq!(digit_sum, 1005);
        assert!(digits.ends_with("849228875"));
    }

    #[test]
    fn the_bound_is_enforced_before_computing() {
        let service = Fibonacci::with_max_n(10);
        assert_eq!(
            service.admit(11),
            Err(DomainError::AboveBound { n: 11, max: 10 })
        );
        assert_eq!(service.admit(10), Ok(()));
    }

    #[test]
    fn u128_and_big_paths_agree_at_the_seam() {
        for n in LAST_U128_INDEX - 3..=LAST_U128_INDEX + 3 {
            assert_eq!(fib_fast_doubling(n), fib(n - 1) + fib(n - 2), "n = {n}");
        }
        assert_eq!(
            BigNumber::from(fib_u128(LAST_U128_INDEX)),
            fib_fast_doubling(LAST_U128_INDEX)
        );
    }

    proptest! {
        #[test]
        fn recurrence_holds(n in 0u64..20_000) {
            prop_assert_eq!(fib(n + 2), fib(n + 1) + fib(n));
        }

        #[test]
        fn doubling_identities_hold(k in 0u64..10_000) {
            let (f_k, f_k1) = (fib(k), fib(k + 1));
            prop_assert_eq!(fib(2 * k), &f_k * (&f_k1 + &f_k1 - &f_k));
            prop_assert_eq!(fib(2 * k + 1), f_k.sqr() + f_k1.sqr());
        }
    }
}
