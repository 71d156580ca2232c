//! `fibrpc bench`: a load generator. Runs calls with a fixed number in flight, over the
//! memory or AMQP transport, and reports calls/s and latency percentiles; `--baseline` also
//! measures, in the same invocation, a bare round trip over the same transport with no fibrpc
//! layer, and prints fibrpc's figures as ratios to it.

mod baseline;
mod domain;
mod load;
mod report;

use crate::args::{BenchArgs, BenchTransport};

use self::report::Report;

pub async fn run(args: BenchArgs) -> Result<(), String> {
    if args.domain {
        return domain::run(&args);
    }
    let transport = match args.transport {
        BenchTransport::Memory => "memory",
        BenchTransport::Amqp => "amqp",
        BenchTransport::Nats => "nats",
    };
    println!(
        "transport {transport}, {} calls, {} in flight, {} client(s), n = {}",
        args.calls, args.concurrency, args.clients, args.n
    );
    let baseline = if args.baseline {
        let bare = baseline::run(&args).await?;
        bare.print("baseline");
        Some(bare)
    } else {
        None
    };
    let fibrpc = load::run(&args).await?;
    fibrpc.print("fibrpc");
    let report = Report::new(transport, &args, fibrpc, baseline);
    if let Some(ratios) = &report.ratios {
        println!(
            "ratio      throughput {:.2}x  p50 {:.2}x  (fibrpc / baseline; throughput higher is better, p50 lower)",
            ratios.throughput, ratios.p50
        );
    }
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if report.fibrpc.errors > 0 {
        return Err(format!("{} calls failed", report.fibrpc.errors));
    }
    Ok(())
}

/// Keeps stderr quiet unless it is a terminal someone watches.
fn progress(total: u64) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} calls {per_sec} {eta}")
    {
        bar.set_style(style);
    }
    Some(bar)
}
