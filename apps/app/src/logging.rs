use std::io::IsTerminal;

/// Logs go to stderr so stdout carries only results. A server says what it does
/// (`server`: info), other programs speak up only for warnings, unless `RUST_LOG` says
/// otherwise.
pub fn init_logging(server: bool) {
    // lapin logs each channel or connection the broker closes (at ERROR) and each returned
    // message: the adapter turns every one of those into the typed error that fibrpc reports
    // in one line, and a passive declare of a missing queue is no error at all. So lapin is
    // silent by default; `RUST_LOG=info,lapin=debug` shows it.
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
