//! Running the `fibrpc` binary and the tutorial's Python code against the local RabbitMQ.
#![allow(dead_code)] // each test file uses its own part of this module

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

pub use fibrpc_test_support::unique_queue;

pub const LIMIT: Duration = Duration::from_secs(30);

/// True when RabbitMQ answers on 127.0.0.1:5672. In CI (CI=true) a missing broker fails the
/// test instead: broker tests must run there for real.
pub fn rabbitmq_available() -> bool {
    let address: SocketAddr = "127.0.0.1:5672".parse().unwrap();
    match TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
        Ok(_) => true,
        Err(error) => {
            let hint = "start it with `rabbitmq-server -detached`";
            fibrpc_test_support::skip_or_fail("RabbitMQ on 127.0.0.1:5672", error, hint);
            false
        }
    }
}

pub fn fibrpc() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fibrpc"));
    command.env_remove("AMQP_URL");
    command
}

/// Runs a command to completion, killing it if it takes longer than `LIMIT`.
pub fn run(mut command: Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the command");
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(LIMIT) {
        Ok(output) => output.expect("command failed to run"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("command did not finish within {LIMIT:?}");
        }
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A child process that announces readiness with a line on stdout or stderr; killed when
/// dropped.
pub struct Process {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    /// Starts `command` and waits until it prints a line containing `ready`.
    pub fn start(mut command: Command, ready: &str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the process");
        let (send, lines) = mpsc::channel();
        forward_lines(child.stdout.take().unwrap(), send.clone());
        forward_lines(child.stderr.take().unwrap(), send);
        let mut process = Self { child, lines };
        process.wait_for_line(ready);
        process
    }

    /// Waits for an output line containing `text` (lines before it are passed over).
    pub fn wait_for_line(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(LIMIT) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line containing {text:?} within {LIMIT:?}"),
            }
        }
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, killing it after `LIMIT`.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "process did not exit within {LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(output: impl std::io::Read + Send + 'static, send: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
}

/// A fibrpc server on `queue`, ready to take requests.
pub fn serve(queue: &str, extra: &[&str]) -> Process {
    let mut command = fibrpc();
    command.args(["serve", "--queue", queue]).args(extra);
    Process::start(command, "Awaiting RPC requests")
}

/// The Python of a venv with pika, made once per test run under the target directory.
pub fn python_with_pika() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
            let python = venv.join("bin").join("python");
            let has_pika = || {
                Command::new(&python)
                    .args(["-c", "import pika"])
                    .status()
                    .is_ok_and(|status| status.success())
            };
            if !has_pika() {
                let made = Command::new("python3")
                    .arg("-m")
                    .arg("venv")
                    .arg(&venv)
                    .status();
                assert!(
                    made.is_ok_and(|s| s.success()),
                    "cannot create a venv with python3"
                );
                let installed = Command::new(&python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "pika==1.3.2",
                    ])
                    .status();
                assert!(
                    installed.is_ok_and(|s| s.success()),
                    "cannot pip install pika"
                );
                assert!(has_pika(), "pika installed but not importable");
            }
            python
        })
        .clone()
}

pub fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(name)
}
