use crate::BigNumber;

/// A call of the one remote procedure: "what is fib(n)?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibRequest {
    pub n: u64,
}

/// The answer to a [`FibRequest`]: the exact value of fib(n).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FibResponse {
    pub value: BigNumber,
}

impl FibResponse {
    pub fn new(value: BigNumber) -> Self {
        Self { value }
    }
}
