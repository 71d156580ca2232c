use std::io::IsTerminal;

/// Logs go to stderr so stdout carries only results. A server says what it does
/// (`server`: info), other programs speak up only for warnings, unless `RUST_LOG` says
/// otherwise.
pub fn init_logging(server: bool) {
    // A normal run makes lapin log nothing at WARN or ERROR, but a refused login makes it log
    // three ERROR lines (and a queue declared elsewhere with other arguments one) that the
    // adapter reports as one typed error: see docs/observability.md. So lapin is silent by
    // default; `RUST_LOG=info,lapin=debug` shows it.
    let default = match server {
        true => "info,lapin=off",
        false => "warn,lapin=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
