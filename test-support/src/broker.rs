use std::fmt::Display;

/// True when the tests run in CI (`CI=true`), where every broker must be there.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// For a test whose `broker` cannot be reached: says why the test is skipped, or, in CI,
/// fails it, since broker tests must run there for real. `hint` says how to start the broker.
pub fn skip_or_fail(broker: &str, error: impl Display, hint: &str) {
    assert!(!in_ci(), "CI=true but {broker} cannot be reached: {error}");
    eprintln!("skipping: {broker} cannot be reached: {error} ({hint})");
}
