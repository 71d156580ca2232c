//! Servers as child processes of this same binary (`fibrpc serve`, `fibrpc bare-echo`), as
//! users deploy them: started, awaited until they print that they are ready, stopped with
//! SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use fibrpc_app::BrokerUrls;

/// What both servers print once they consume their queue.
const READY: &str = "Awaiting RPC requests";
/// Bounds the start (connection and queue declaration included) and the stop.
const LIMIT: Duration = Duration::from_secs(30);

pub(crate) struct ServerProcess {
    child: Child,
    pid: u32,
    /// `serve` or `bare-echo`, for messages.
    what: String,
}

impl ServerProcess {
    /// Runs `fibrpc ARGS...` and waits for its ready line. The broker URLs go through the
    /// environment, so that no password shows on a command line.
    pub(crate) async fn start(args: &[String], urls: &BrokerUrls) -> Result<Self, String> {
        let what = args.first().cloned().unwrap_or_default();
        let program = std::env::current_exe()
            .map_err(|error| format!("cannot find the fibrpc binary to run {what}: {error}"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(urls.urls.variables())
            .env("AMQP_SHUFFLE", urls.amqp_shuffle.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // On an error path the child must not outlive the bench.
            .kill_on_drop(true);
        if std::env::var_os("RUST_LOG").is_none() {
            // Warnings and errors only: a server's start-up notes would crowd the results.
            command.env("RUST_LOG", "warn,lapin=off");
        }
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot start fibrpc {what}: {error}"))?;
        let pid = child
            .id()
            .ok_or_else(|| format!("fibrpc {what} exited at once"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("no output from fibrpc {what}"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = async {
            while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
                if line.contains(READY) {
                    return Ok(true);
                }
            }
            Ok::<_, String>(false)
        };
        match tokio::time::timeout(LIMIT, ready).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let status = child.wait().await.map_err(|error| error.to_string())?;
                return Err(format!(
                    "fibrpc {what} ended before it was ready ({status})"
                ));
            }
            Ok(Err(error)) => return Err(format!("reading fibrpc {what}'s output: {error}")),
            Err(_) => return Err(format!("fibrpc {what} was not ready within {LIMIT:?}")),
        }
        // Read on, so that the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, pid, what })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM, then up to 30 s for the server to finish what it holds; killed after that.
    pub(crate) async fn stop(mut self) -> Result<(), String> {
        // std has no SIGTERM; kill(1) is everywhere /proc is.
        let signalled = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .is_ok_and(|status| status.success());
        if signalled {
            if let Ok(status) = tokio::time::timeout(LIMIT, self.child.wait()).await {
                let status = status.map_err(|error| error.to_string())?;
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("fibrpc {} stopped with {status}", self.what))
                };
            }
        }
        let _ = self.child.kill().await;
        Err(format!(
            "fibrpc {} did not stop on SIGTERM within {LIMIT:?}; killed",
            self.what
        ))
    }
}
