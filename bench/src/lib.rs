//! `fibrpc bench`: a load generator. Runs calls with a fixed number in flight over the memory,
//! AMQP or NATS transport, and reports calls/s, latency percentiles and CPU time per call of
//! the client, the servers and the broker. `--baseline` also measures the same calls over a
//! bare request/reply with no fibrpc layer, in interleaved rounds, and prints the ratios.
//!
//! `fibrpc bare-echo` ([`bare_echo`]) runs a bare echo server alone.
//!
//! This crate root orchestrates; each job has a module: `args` and `settings` (flags, then
//! checked), `fibrpc` and `bare` (the two sides set up), `baseline` (the bare clients and
//! echo servers, and what the bench knows of each transport), `process` (servers as child
//! processes), `load` (the calls), `cpu` and `discover` (CPU accounting), `report` and
//! `results` (figures and JSON), `chart` and `plot` (the SVG). The `fibrpc` binary dispatches
//! its `bench` and `bare-echo` subcommands here.

mod args;
mod bare;
mod bare_echo;
pub mod baseline;
mod caller;
mod chart;
mod cpu;
mod discover;
mod domain;
mod fibrpc;
mod guarantees;
mod latency;
mod load;
mod plot;
mod process;
mod progress;
mod report;
mod results;
mod settings;
mod side;

pub use crate::args::{BareEchoArgs, BenchArgs};
pub use crate::bare_echo::run as bare_echo;
use crate::report::Ratios;
use crate::results::{Level, Report, Run};
use crate::settings::Settings;
use crate::side::Side;

/// `fibrpc bench`: runs the measurements `args` ask for and prints (and writes) the results.
///
/// # Errors
/// One line: flags that cannot work together, a side that cannot be set up, failed calls.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    if args.domain {
        return domain::run(&args);
    }
    if args.guarantee_costs {
        return guarantees::run(&args).await;
    }
    let settings = Settings::new(&args)?;
    let brokers = match baseline::broker_process(&args.transport, &args.urls) {
        Some((addresses, name)) => discover::brokers(&addresses, name),
        None => Vec::new(),
    };
    print_header(&settings, &brokers);
    let baseline = match args.baseline {
        true => Some(bare::open(&settings, brokers.clone()).await?),
        false => None,
    };
    let batched = match settings.batch {
        Some(limits) => match fibrpc::open(&settings, brokers.clone(), Some(limits)).await {
            Ok(side) => Some(side),
            Err(error) => {
                if let Some(baseline) = baseline {
                    let _ = baseline.close().await;
                }
                return Err(error);
            }
        },
        None => None,
    };
    let fibrpc = match fibrpc::open(&settings, brokers, None).await {
        Ok(side) => side,
        Err(error) => {
            for side in baseline.into_iter().chain(batched) {
                let _ = side.close().await;
            }
            return Err(error);
        }
    };
    let sides = Sides {
        fibrpc: &fibrpc,
        baseline: baseline.as_ref(),
        batched: batched.as_ref(),
    };
    let measured = measure_all(&settings, sides).await;
    let mut closed = fibrpc.close().await;
    for side in baseline.into_iter().chain(batched) {
        closed = closed.and(side.close().await);
    }
    let report = report_of(&settings, measured?);
    print_summary(&settings, &report);
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    if let Some(path) = &args.plot {
        chart::draw(&settings, &report, path)?;
        println!("plot written to {}", path.display());
    }
    closed?;
    if report.errors > 0 {
        return Err(format!(
            "{} of {} calls failed: {:?}",
            report.errors, report.calls, report.failures
        ));
    }
    Ok(())
}

fn print_header(settings: &Settings<'_>, brokers: &[u32]) {
    let args = settings.args;
    let levels: Vec<String> = settings.levels.iter().map(usize::to_string).collect();
    println!(
        "transport {}, {} calls per run, {} in flight, {} round(s), {} client(s), {} server(s) {}, prefetch {}, n = {}",
        args.transport.name,
        args.calls,
        levels.join(","),
        args.rounds,
        args.clients,
        args.servers,
        settings.placement.name(),
        settings.prefetch,
        args.n
    );
    if !args.transport.in_process && brokers.is_empty() {
        println!("(the broker's process is not visible here: its CPU is not counted)");
    }
}

/// What is measured: fibrpc, and the baseline and fibrpc with coalesced requests if asked.
struct Sides<'a> {
    fibrpc: &'a Side,
    baseline: Option<&'a Side>,
    batched: Option<&'a Side>,
}

/// Every level in turn; at each, the rounds: baseline, fibrpc, then fibrpc with coalesced
/// requests, back to back.
async fn measure_all(settings: &Settings<'_>, sides: Sides<'_>) -> Result<Vec<Run>, String> {
    let Sides {
        fibrpc,
        baseline,
        batched,
    } = sides;
    let args = settings.args;
    let several = settings.levels.len() > 1 || args.rounds > 1;
    let mut runs = Vec::new();
    for &concurrency in &settings.levels {
        for round in 1..=args.rounds {
            if several {
                println!("-- {concurrency} in flight, round {round}/{}", args.rounds);
            }
            let bare = match baseline {
                Some(side) => Some(side.measure(args.calls, args.warmup, concurrency).await?),
                None => None,
            };
            let ours = fibrpc.measure(args.calls, args.warmup, concurrency).await?;
            ours.print("fibrpc");
            if let Some(bare) = &bare {
                bare.print("baseline");
            }
            if let Some(first) = &ours.first_error {
                eprintln!("fibrpc: first failed call: {first}");
            }
            let ratios = bare.as_ref().map(|bare| Ratios::of(&ours, bare));
            if let Some(ratios) = &ratios {
                println!("{:<10} {}", "ratio", ratios.line());
            }
            let coalesced = match batched {
                Some(side) => Some(side.measure(args.calls, args.warmup, concurrency).await?),
                None => None,
            };
            if let Some(coalesced) = &coalesced {
                coalesced.print("batched");
                if let Some(first) = &coalesced.first_error {
                    eprintln!("fibrpc --batch: first failed call: {first}");
                }
            }
            let batched_ratios = coalesced
                .as_ref()
                .zip(bare.as_ref())
                .map(|(coalesced, bare)| Ratios::of(coalesced, bare));
            if let Some(ratios) = &batched_ratios {
                println!("{:<10} {}", "batched", ratios.line());
            }
            runs.push(Run {
                concurrency,
                round,
                fibrpc: ours,
                baseline: bare,
                ratios,
                batched: coalesced,
                batched_ratios,
            });
        }
    }
    Ok(runs)
}

fn report_of(settings: &Settings<'_>, runs: Vec<Run>) -> Report {
    let args = settings.args;
    Report {
        transport: args.transport.name,
        servers_run: settings.placement.name(),
        servers: args.servers,
        clients: args.clients,
        n: args.n,
        warmup: args.warmup,
        calls_per_run: args.calls,
        rounds: args.rounds,
        concurrency: settings.levels.clone(),
        prefetch: settings.prefetch,
        server_concurrency: settings.server_concurrency,
        retry: args.retry,
        calls: 0,
        errors: 0,
        failures: Default::default(),
        retries: 0,
        runs: Vec::new(),
        levels: Vec::new(),
    }
    .fill(runs)
}

/// The medians of each level, when there is more than one run or a baseline to compare with
/// (scripts read this table).
fn print_summary(settings: &Settings<'_>, report: &Report) {
    let one_run = settings.levels.len() == 1 && settings.args.rounds == 1;
    if one_run && !settings.args.baseline {
        return;
    }
    println!("== medians over {} round(s)", settings.args.rounds);
    println!("{}", Level::HEADER);
    for level in &report.levels {
        println!("{}", level.line());
    }
    if let Some(n) = settings.args.batch {
        println!("== with coalesced requests (--batch {n}), against the same baseline");
        println!("{}", Level::HEADER);
        for line in report.levels.iter().filter_map(Level::batched_line) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests;
