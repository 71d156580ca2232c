//! `fibrpc bench`: a load generator. Runs calls with a fixed number in flight, over the
//! memory or AMQP transport, and reports calls/s and latency percentiles; `--baseline` also
//! measures, in the same invocation, a bare round trip over the same transport with no fibrpc
//! layer, and prints fibrpc's figures as ratios to it.

mod baseline;
mod domain;
mod load;
mod progress;
mod report;

use crate::args::{BenchArgs, BenchTransport};

use self::report::Report;

pub async fn run(args: BenchArgs) -> Result<(), String> {
    if args.domain {
        return domain::run(&args);
    }
    check(&args)?;
    let transport = match args.transport {
        BenchTransport::Memory => "memory",
        BenchTransport::Amqp => "amqp",
        BenchTransport::Nats => "nats",
    };
    println!(
        "transport {transport}, {} calls, {} in flight, {} client(s), n = {}",
        args.calls, args.concurrency, args.clients, args.n
    );
    // The bare round trip runs first, before fibrpc's servers exist, so it has the machine to
    // itself; it is printed second, under the line it is the baseline of.
    let baseline = if args.baseline {
        Some(baseline::run(&args).await?)
    } else {
        None
    };
    let fibrpc = load::run(&args).await?;
    fibrpc.print("fibrpc");
    if let Some(bare) = &baseline {
        bare.print("baseline");
    }
    if let Some(first) = &fibrpc.first_error {
        eprintln!("fibrpc: first failed call: {first}");
    }
    let report = Report::new(transport, &args, fibrpc, baseline);
    if let Some(ratios) = &report.ratios {
        println!(
            "ratio      throughput {:.2}x  p50 {:.2}x  (fibrpc / baseline; higher throughput ratio is better, lower p50 ratio is better)",
            ratios.throughput, ratios.p50
        );
    }
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if report.fibrpc.errors > 0 {
        return Err(format!(
            "{} of {} calls failed",
            report.fibrpc.errors, report.fibrpc.calls
        ));
    }
    Ok(())
}

/// Refuses settings that could only fail or hang, before anything runs.
fn check(args: &BenchArgs) -> Result<(), String> {
    if args.clients == 0 {
        return Err("--clients must be at least 1".to_owned());
    }
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".to_owned());
    }
    if args.servers == 0 && args.transport == BenchTransport::Memory {
        // The in-memory broker lives in this process: no server elsewhere can reach it, and
        // every call would wait out its timeout.
        return Err(
            "--servers 0 measures servers elsewhere, which the in-process memory transport cannot have"
                .to_owned(),
        );
    }
    if args.servers == 0 && args.queue.is_none() {
        return Err("--servers 0 needs --queue: the queue the external servers consume".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn bench_args(flags: &[&str]) -> BenchArgs {
        let argv = ["fibrpc", "bench"].iter().chain(flags);
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Command::Bench(args)) => args,
            _ => panic!("not a bench command line: {flags:?}"),
        }
    }

    #[test]
    fn settings_that_could_only_hang_are_refused() {
        assert!(check(&bench_args(&[])).is_ok());
        assert!(check(&bench_args(&["--clients", "0"])).is_err());
        assert!(check(&bench_args(&["--concurrency", "0"])).is_err());
        assert!(check(&bench_args(&["--servers", "0", "--queue", "q"])).is_err());
        let amqp = ["--transport", "amqp", "--servers", "0"];
        assert!(check(&bench_args(&amqp)).is_err());
        assert!(check(&bench_args(&[&amqp[..], &["--queue", "q"]].concat())).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_memory_run_with_baseline_checks_every_answer_and_writes_json() {
        let json = std::env::temp_dir().join(format!(
            "fibrpc-bench-test-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        let path = json.to_string_lossy().into_owned();
        let args = bench_args(&[
            "--calls",
            "300",
            "--warmup",
            "20",
            "--concurrency",
            "8",
            "--clients",
            "2",
            "--servers",
            "2",
            "--n",
            "90",
            "--baseline",
            "--json",
            &path,
        ]);
        run(args).await.unwrap();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let _ = std::fs::remove_file(&json);
        assert_eq!(report["transport"], "memory");
        assert_eq!(report["calls"], 300);
        assert_eq!(report["errors"], 0);
        assert_eq!(report["n"], 90);
        assert_eq!(report["baseline"]["calls"], 300);
        assert!(report["calls_per_sec"].as_f64().unwrap() > 0.0);
        assert!(report["p50_us"].as_f64().unwrap() <= report["p99_us"].as_f64().unwrap());
        assert!(report["ratios"]["throughput"].as_f64().unwrap() > 0.0);
    }
}
