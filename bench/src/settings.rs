//! The flags checked and completed: what a run could only fail or hang with is refused before
//! anything starts.

use fibrpc_app::{check_queue_flags, Connection};

use crate::args::BenchArgs;
use crate::side::Side;

/// Where the servers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Inside the bench process.
    InProcess,
    /// As child processes of the bench (`fibrpc serve`, `fibrpc bare-echo`).
    Processes,
    /// Started by the user on these queues (`--servers 0`).
    External {
        queue: String,
        baseline_queue: Option<String>,
    },
}

impl Placement {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Placement::InProcess => "in-process",
            Placement::Processes => "process",
            Placement::External { .. } => "external",
        }
    }
}

pub(crate) struct Settings<'a> {
    pub args: &'a BenchArgs,
    /// Calls in flight, one level per entry, in the order given.
    pub levels: Vec<usize>,
    pub prefetch: u16,
    pub server_concurrency: usize,
    pub placement: Placement,
    /// The coalesced requests of `--batch`, if asked.
    pub batch: Option<fibrpc_rpc::BatchLimits>,
}

impl<'a> Settings<'a> {
    pub(crate) fn new(args: &'a BenchArgs) -> Result<Self, String> {
        if args.clients == 0 {
            return Err("--clients must be at least 1".to_owned());
        }
        if args.concurrency.is_empty() || args.concurrency.contains(&0) {
            return Err("--concurrency needs levels of at least 1 (e.g. 1,16,64,256)".to_owned());
        }
        if args.rounds == 0 {
            return Err("--rounds must be at least 1".to_owned());
        }
        if args.calls == 0 {
            return Err("--calls must be at least 1".to_owned());
        }
        check_queue_flags(&args.transport, &args.request_queue)?;
        let placement = placement(args)?;
        let largest = args.concurrency.iter().copied().max().unwrap_or(1);
        // Fewer requests handed to a server than calls in flight would measure the prefetch.
        let prefetch = args
            .prefetch
            .unwrap_or_else(|| u16::try_from(largest.max(64)).unwrap_or(u16::MAX));
        if prefetch == 0 {
            return Err("--prefetch must be at least 1".to_owned());
        }
        let server_concurrency = args.server_concurrency.unwrap_or(usize::from(prefetch));
        if server_concurrency == 0 {
            return Err("--server-concurrency must be at least 1".to_owned());
        }
        Ok(Self {
            args,
            levels: args.concurrency.clone(),
            prefetch,
            server_concurrency,
            placement,
            batch: args.batch.map(|n| fibrpc_rpc::BatchLimits {
                max_calls: n.into(),
                sends_in_flight: args.batch_sends.into(),
                ..fibrpc_rpc::BatchLimits::default()
            }),
        })
    }

    /// A connection of the bench: as a server's, which may declare the queue.
    pub(crate) async fn connect(&self) -> Result<Connection, String> {
        let urls = &self.args.urls;
        let url = urls.url(&self.args.transport);
        let request_queue = Some(&self.args.request_queue);
        urls.connect(&url, None, self.args.reply_to, request_queue)
            .await
    }

    /// Declares the request queue `queue`, as a server does, on a connection of its own;
    /// `side` deletes it when it closes unless `keep` (a queue named on the command line
    /// belongs to someone else).
    pub(crate) async fn declare_queue(
        &self,
        queue: &str,
        side: &mut Side,
        keep: bool,
    ) -> Result<(), String> {
        let admin = self.connect().await?.admin;
        let declared = admin.declare_request_queue(queue).await;
        declared.map_err(|error| error.to_string())?;
        if !keep {
            let queue = queue.to_owned();
            side.on_close(async move {
                let deleted = admin.delete_queue(&queue).await;
                deleted.map_err(|error| error.to_string())
            });
        }
        Ok(())
    }

    /// Most calls any level has in flight.
    pub(crate) fn most_in_flight(&self) -> usize {
        self.levels.iter().copied().max().unwrap_or(1)
    }
}

fn placement(args: &BenchArgs) -> Result<Placement, String> {
    let memory = args.transport.in_process;
    if args.servers == 0 {
        if memory {
            // The in-memory broker lives in this process: no server elsewhere can reach it,
            // and every call would wait out its timeout.
            return Err(format!("--servers 0 measures servers elsewhere, which the in-process {} transport cannot have", args.transport.name));
        }
        if args.server_process {
            return Err("--server-process starts the servers; --servers 0 measures servers started elsewhere: choose one".to_owned());
        }
        let queue = args
            .queue
            .clone()
            .ok_or("--servers 0 needs --queue: the queue the servers started elsewhere consume")?;
        if args.baseline && args.baseline_queue.is_none() {
            return Err("--servers 0 --baseline needs --baseline-queue: the queue of a `fibrpc bare-echo` started elsewhere".to_owned());
        }
        return Ok(Placement::External {
            queue,
            baseline_queue: args.baseline_queue.clone(),
        });
    }
    if args.baseline_queue.is_some() {
        return Err(
            "--baseline-queue names a bare echo started elsewhere; it goes with --servers 0"
                .to_owned(),
        );
    }
    if args.server_process {
        if memory {
            return Err(format!(
                "--server-process needs a broker: the {} transport lives in one process",
                args.transport.name
            ));
        }
        return Ok(Placement::Processes);
    }
    Ok(Placement::InProcess)
}

#[cfg(test)]
pub(crate) mod tests {
    use clap::Parser;

    use super::*;

    /// `fibrpc bench`'s command line, as the binary flattens it.
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    pub(crate) fn bench_args(flags: &[&str]) -> BenchArgs {
        let argv = ["bench"].iter().chain(flags);
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.bench,
            Err(error) => panic!("not a bench command line: {flags:?}: {error}"),
        }
    }

    fn check(flags: &[&str]) -> Result<Placement, String> {
        Settings::new(&bench_args(flags)).map(|settings| settings.placement)
    }

    #[test]
    fn settings_that_could_only_hang_are_refused() {
        assert_eq!(check(&[]), Ok(Placement::InProcess));
        let external = ["--transport", "amqp", "--servers", "0", "--queue", "q"];
        let with = |more: &[&'static str]| [&external[..], more].concat();
        for refused in [
            vec!["--clients", "0"],
            vec!["--concurrency", "0"],
            vec!["--concurrency", "1,0"],
            vec!["--rounds", "0"],
            vec!["--servers", "0", "--queue", "q"],
            vec!["--server-process"],
            vec!["--transport", "amqp", "--servers", "0"],
            with(&["--baseline"]),
            with(&["--server-process"]),
            vec!["--transport", "amqp", "--baseline-queue", "b"],
            vec!["--prefetch", "0"],
            vec!["--queue-type", "quorum"],
        ] {
            assert!(check(&refused).is_err(), "{refused:?} was accepted");
        }
        let external = with(&["--baseline", "--baseline-queue", "b"]);
        assert_eq!(
            check(&external),
            Ok(Placement::External {
                queue: "q".into(),
                baseline_queue: Some("b".into())
            })
        );
        assert_eq!(
            check(&["--transport", "nats", "--server-process"]),
            Ok(Placement::Processes)
        );
        assert!(check(&["--transport", "amqp", "--queue-type", "quorum"]).is_ok());
    }

    #[test]
    fn a_sweep_is_a_comma_separated_list_and_sets_the_default_prefetch() {
        let args = bench_args(&["--concurrency", "1,16,64,256"]);
        let settings = Settings::new(&args).unwrap();
        assert_eq!(settings.levels, vec![1, 16, 64, 256]);
        assert_eq!(settings.prefetch, 256);
        assert_eq!(settings.server_concurrency, 256);
        assert_eq!(settings.most_in_flight(), 256);
        let args = bench_args(&["--concurrency", "8", "--prefetch", "32"]);
        let settings = Settings::new(&args).unwrap();
        assert_eq!((settings.prefetch, settings.server_concurrency), (32, 32));
        let args = bench_args(&["--concurrency", "8"]);
        assert_eq!(Settings::new(&args).unwrap().prefetch, 64);
        assert!(Cli::try_parse_from(["bench", "--concurrency", "1,x"]).is_err());
    }
}
