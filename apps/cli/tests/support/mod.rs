//! Running the `fibrpc` binary and the tutorial's Python code against the local RabbitMQ.
#![allow(dead_code)] // each test file uses its own part of this module

pub mod broker;
pub mod otlp;

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
    broker_available(
        "RabbitMQ",
        5672,
        "start it with `rabbitmq-server -detached`",
    )
}

/// True when NATS answers on 127.0.0.1:4222; with CI=true a missing server fails the test.
pub fn nats_available() -> bool {
    broker_available("NATS", 4222, "start it with `nats-server -js`")
}

/// True when Redis answers on 127.0.0.1:6379; with CI=true a missing server fails the test.
pub fn redis_available() -> bool {
    broker_available(
        "Redis",
        6379,
        "start it with `redis-server --save '' --appendonly no --daemonize yes`",
    )
}

fn broker_available(name: &str, port: u16, hint: &str) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    match TcpStream::connect_timeout(&address, Duration::from_secs(2)) {
        Ok(_) => true,
        Err(error) => {
            fibrpc_test_support::skip_or_fail(&format!("{name} on {address}"), error, hint);
            false
        }
    }
}

pub fn fibrpc() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fibrpc"));
    command.env_remove("AMQP_URL");
    command.env_remove("REDIS_URL");
    command.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
    command.env_remove("OTEL_SERVICE_NAME");
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
    pub fn start(command: Command, ready: &str) -> Self {
        let mut process = Self::spawn(command);
        process.wait_for_line(ready);
        process
    }

    /// Starts `command`; its output lines are read with [`Process::wait_for_line`].
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the process");
        let (send, lines) = mpsc::channel();
        forward_lines(child.stdout.take().unwrap(), send.clone());
        forward_lines(child.stderr.take().unwrap(), send);
        Self { child, lines }
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

    /// The process id, to read the process's memory from /proc.
    pub fn id(&self) -> u32 {
        self.child.id()
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

/// How many replies a `fibrpc serve` said it sent when it stopped.
pub fn replies_of(server: &mut Process) -> u64 {
    let line = server.wait_for_line("Stopped after");
    line.split_whitespace()
        .nth(3)
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("unreadable summary {line:?}"))
}

/// The Python of a venv with pika, made once per test run under the target directory.
pub fn python_with_pika() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| python_venv("interop-venv", "pika", "pika==1.3.2"))
        .clone()
}

/// The Python of a venv with nats-py (NATS's own Python client), made once per test run.
pub fn python_with_nats() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| python_venv("nats-venv", "nats", "nats-py==2.16.0"))
        .clone()
}

/// The Python of the venv `name` under the target directory, with `requirement` installed
/// from PyPI unless `module` imports already.
fn python_venv(name: &str, module: &str, requirement: &str) -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin").join("python");
    let has_module = || {
        Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .status()
            .is_ok_and(|status| status.success())
    };
    if !has_module() {
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
                requirement,
            ])
            .status();
        assert!(
            installed.is_ok_and(|s| s.success()),
            "cannot pip install {requirement}"
        );
        assert!(has_module(), "{requirement} installed but not importable");
    }
    python
}

/// The `node_modules` folder of amqplib (the tutorial's JavaScript client), installed with npm
/// once per test run under the target directory.
pub fn node_modules_with_amqplib() -> PathBuf {
    static MODULES: OnceLock<PathBuf> = OnceLock::new();
    MODULES
        .get_or_init(|| {
            let prefix = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("interop-node");
            let modules = prefix.join("node_modules");
            if !modules.join("amqplib").join("package.json").exists() {
                let installed = Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                    .arg(&prefix)
                    .arg("amqplib@2.3.1")
                    .status();
                assert!(
                    installed.is_ok_and(|s| s.success()),
                    "cannot npm install amqplib (needs node and npm)"
                );
            }
            modules
        })
        .clone()
}

/// The class path of RabbitMQ's Java client as Debian packages it (librabbitmq-client-java),
/// or None, saying why, when it is not installed; with CI=true its absence fails the test.
pub fn java_classpath() -> Option<String> {
    let jars = [
        "/usr/share/java/amqp-client.jar",
        "/usr/share/java/slf4j-api.jar",
    ];
    if jars.iter().all(|jar| std::path::Path::new(jar).exists()) {
        return Some(jars.join(":"));
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but RabbitMQ's Java client is missing (apt-get install librabbitmq-client-java)"
    );
    eprintln!("skipping: no RabbitMQ Java client (apt-get install librabbitmq-client-java)");
    None
}

pub fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(name)
}

/// Deletes queues a test made through servers it started (they outlive their servers).
pub fn delete_amqp_queues(queues: &[&str]) {
    block_on(async {
        let admin = fibrpc_app::connect("amqp://127.0.0.1:5672/%2f")
            .await
            .unwrap()
            .admin;
        for queue in queues {
            admin.delete_queue(queue).await.unwrap();
        }
    });
}

/// Deletes the stream a `fibrpc serve --transport redis` made for `queue`.
pub fn delete_redis_queue(queue: &str) {
    block_on(async {
        let admin = fibrpc_app::connect("redis://127.0.0.1:6379")
            .await
            .unwrap()
            .admin;
        admin.delete_queue(queue).await.unwrap();
    });
}

/// Runs `future` to its end, for the synchronous tests of the binary.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A temporary file path, removed when dropped.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!("{}-{name}", unique_queue("file"))))
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.0).unwrap()).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
