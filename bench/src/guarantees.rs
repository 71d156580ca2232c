//! `fibrpc bench --guarantee-costs`: what each of fibrpc's guarantees costs. One run sets up
//! the bare baseline and a fibrpc side per variant (all guarantees on, each one off, all
//! off), each with servers of its own, and measures them in interleaved rounds (the order
//! turns each round), then prints the medians as a markdown table (docs/performance.md).
//!
//! The guarantees: publisher confirms, `mandatory` and the deadline as `expiration` on
//! requests (AMQP only), the trace context (a span per call and per request, `traceparent`),
//! and metrics (the bench's own default is off; here "all on" counts them).

use fibrpc_app::GuaranteeArgs;

use crate::args::BenchArgs;
use crate::report::{shown, Measured};
use crate::results::median;
use crate::settings::Settings;
use crate::side::Side;
use crate::{bare, discover, fibrpc};

/// One fibrpc configuration measured.
struct Variant {
    label: &'static str,
    args: BenchArgs,
}

/// All on, each off in turn, all off; the AMQP-only ones only over AMQP.
fn variants(args: &BenchArgs) -> Vec<Variant> {
    let amqp = args.transport.name == "amqp";
    let mut on = args.clone();
    on.no_trace = false;
    on.metrics = true;
    on.urls.guarantees = GuaranteeArgs::default();
    let with = |label: &'static str, change: &dyn Fn(&mut BenchArgs)| {
        let mut args = on.clone();
        change(&mut args);
        Variant { label, args }
    };
    let mut variants = vec![with("all on", &|_| {})];
    if amqp {
        variants.push(with("no confirm", &|args| {
            args.urls.guarantees.no_confirm = true;
        }));
        variants.push(with("no mandatory", &|args| {
            args.urls.guarantees.no_mandatory = true;
        }));
        variants.push(with("no expiration", &|args| {
            args.urls.guarantees.no_expiration = true;
        }));
    }
    variants.push(with("no trace", &|args| args.no_trace = true));
    variants.push(with("no metrics", &|args| args.metrics = false));
    variants.push(with("all off", &|args| {
        args.no_trace = true;
        args.metrics = false;
        if amqp {
            args.urls.guarantees = GuaranteeArgs {
                no_confirm: true,
                no_mandatory: true,
                no_expiration: true,
            };
        }
    }));
    variants
}

/// Runs the comparison and prints the table; fails if any call was not answered right.
pub(crate) async fn run(args: &BenchArgs) -> Result<(), String> {
    let variants = variants(args);
    let settings = Settings::new(args)?;
    let brokers = match crate::baseline::broker_process(&args.transport, &args.urls) {
        Some((addresses, name)) => discover::brokers(&addresses, name),
        None => Vec::new(),
    };
    println!(
        "guarantee costs: transport {}, {} calls per run, {:?} in flight, {} round(s), servers {}",
        args.transport.name,
        args.calls,
        settings.levels,
        args.rounds,
        settings.placement.name()
    );
    let mut sides = vec![bare::open(&settings, brokers.clone()).await?];
    for variant in &variants {
        let opened = match Settings::new(&variant.args) {
            Ok(settings) => fibrpc::open(&settings, brokers.clone(), None).await,
            Err(error) => Err(error),
        };
        match opened {
            Ok(mut side) => {
                side.name = variant.label;
                sides.push(side);
            }
            Err(error) => {
                close_all(sides).await?;
                return Err(format!("{}: {error}", variant.label));
            }
        }
    }
    let names: Vec<&str> = sides.iter().map(|side| side.name).collect();
    let measured = measure(&settings, &sides).await;
    close_all(sides).await?;
    let measured = measured?;
    print_table(&settings.levels, &names, &measured);
    let failed: u64 = measured
        .iter()
        .flatten()
        .flatten()
        .map(|run| run.errors)
        .sum();
    if failed > 0 {
        return Err(format!("{failed} calls were not answered right"));
    }
    Ok(())
}

async fn close_all(sides: Vec<Side>) -> Result<(), String> {
    let mut outcome = Ok(());
    for side in sides.into_iter().rev() {
        outcome = outcome.and(side.close().await);
    }
    outcome
}

/// The runs of each side (baseline first) at each level: `[side][level][round]`.
type Runs = Vec<Vec<Vec<Measured>>>;

async fn measure(settings: &Settings<'_>, sides: &[Side]) -> Result<Runs, String> {
    let args = settings.args;
    let mut runs: Runs = sides
        .iter()
        .map(|_| settings.levels.iter().map(|_| Vec::new()).collect())
        .collect();
    for (level, &concurrency) in settings.levels.iter().enumerate() {
        for round in 0..args.rounds as usize {
            println!(
                "-- {concurrency} in flight, round {}/{}",
                round + 1,
                args.rounds
            );
            // The order turns each round, so that no side always follows the same one.
            for turn in 0..sides.len() {
                let index = (turn + round) % sides.len();
                let side = &sides[index];
                let run = side.measure(args.calls, args.warmup, concurrency).await?;
                run.print(side.name);
                if let Some(first) = &run.first_error {
                    eprintln!("{}: first failed call: {first}", side.name);
                }
                runs[index][level].push(run);
            }
        }
    }
    Ok(runs)
}

/// The medians of the rounds, a row per side and level, with calls/s over "all on" and over
/// the baseline.
fn print_table(levels: &[usize], names: &[&str], runs: &Runs) {
    println!("== medians over the rounds (markdown)");
    println!("| in flight | fibrpc | calls/s | vs all on | vs bare | p50 | CPU per call: client + server + broker = total |");
    println!("|---|---|---|---|---|---|---|");
    for (level, in_flight) in levels.iter().enumerate() {
        let rate = |side: usize| {
            let rates = runs[side][level].iter().map(|run| run.calls_per_sec);
            median(rates.collect()).unwrap_or(0.0)
        };
        let (bare, all_on) = (rate(0), rate(1));
        for (side, side_runs) in runs.iter().enumerate() {
            let rounds = &side_runs[level];
            let of = |value: fn(&Measured) -> Option<f64>| {
                median(rounds.iter().filter_map(value).collect())
            };
            let calls = rate(side);
            let cpu = |part: Option<f64>| part.map_or("-".to_owned(), |us| format!("{us:.1}"));
            let name = names.get(side).copied().unwrap_or("?");
            let ratio = |of: f64| match of > 0.0 {
                true => format!("{:.2}x", calls / of),
                false => "-".to_owned(),
            };
            let errors: u64 = rounds.iter().map(|run| run.errors).sum();
            let errors = match errors {
                0 => String::new(),
                errors => format!(" ({errors} errors)"),
            };
            println!(
                "| {in_flight} | {name}{errors} | {calls:.0} | {} | {} | {} | {} + {} + {} = {} us |",
                if side == 0 { "-".to_owned() } else { ratio(all_on) },
                ratio(bare),
                of(|run| Some(run.p50_us)).map_or("-".to_owned(), shown),
                cpu(of(|run| run.cpu.client_us)),
                cpu(of(|run| run.cpu.server_us)),
                cpu(of(|run| run.cpu.broker_us)),
                cpu(of(|run| Some(run.cpu.total_us))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::bench_args;

    #[test]
    fn each_variant_turns_off_one_guarantee_of_all_on_whatever_the_flags() {
        let args = bench_args(&["--transport", "amqp", "--no-confirm", "--no-trace"]);
        assert!(!args.urls.guarantees.guarantees().confirm);
        let all = variants(&args);
        let labels: Vec<_> = all.iter().map(|variant| variant.label).collect();
        assert_eq!(
            labels,
            [
                "all on",
                "no confirm",
                "no mandatory",
                "no expiration",
                "no trace",
                "no metrics",
                "all off"
            ]
        );
        let on = &all[0].args;
        assert_eq!(on.urls.guarantees, GuaranteeArgs::default());
        assert!(on.metrics && !on.no_trace);
        assert!(all[2].args.urls.guarantees.no_mandatory);
        assert!(!all[2].args.urls.guarantees.no_confirm);
        assert!(!all[5].args.metrics && !all[5].args.no_trace);
        let off = &all[6].args;
        assert!(off.no_trace && !off.metrics && off.urls.guarantees.no_expiration);
        // Elsewhere only what the transport reads.
        let memory = variants(&bench_args(&[]));
        assert_eq!(memory.len(), 4);
        assert_eq!(memory[3].args.urls.guarantees, GuaranteeArgs::default());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_comparison_over_memory_answers_every_call() {
        let args = bench_args(&[
            "--guarantee-costs",
            "--calls",
            "200",
            "--warmup",
            "10",
            "--concurrency",
            "1,8",
            "--rounds",
            "2",
        ]);
        assert_eq!(run(&args).await, Ok(()));
    }
}
