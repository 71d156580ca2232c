//! The local three-node RabbitMQ cluster of `scripts/rabbitmq-cluster.sh`, for the cluster
//! tests: its URLs, killing and restarting a node, and asking a node what the cluster is
//! doing (which node leads a quorum queue, which nodes run).

use fibrpc_ports::QueueAdmin;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fibrpc_amqp::{AmqpConfig, AmqpTransport, QueueKind, RequestQueueSpec};
use fibrpc_test_support::skip_or_fail;

/// The nodes, numbered 1 to 3 as the script numbers them.
pub const NODES: [usize; 3] = [1, 2, 3];

/// Kills and restarts go through this lock: one cluster test at a time, since a node
/// killed by one test would be a fault injected into another.
pub static CLUSTER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Cluster {
    base_port: u16,
}

impl Cluster {
    /// The cluster if all three nodes answer, else None after saying why; with CI=true a
    /// cluster that is not up fails the test instead (CI starts it).
    pub async fn up_or_skip() -> Option<Self> {
        let base_port = std::env::var("FIBRPC_CLUSTER_BASE_PORT")
            .ok()
            .and_then(|port| port.parse().ok())
            .unwrap_or(5680);
        let cluster = Self { base_port };
        for node in NODES {
            let config = AmqpConfig {
                url: cluster.url(node),
                connect_timeout: Duration::from_secs(3),
                ..AmqpConfig::default()
            };
            if let Err(error) = AmqpTransport::connect(config).await {
                let hint = "start the cluster with `scripts/rabbitmq-cluster.sh up`";
                skip_or_fail(&format!("cluster node {node}"), error, hint);
                return None;
            }
        }
        Some(cluster)
    }

    pub fn port(&self, node: usize) -> u16 {
        self.base_port + node as u16
    }

    pub fn url(&self, node: usize) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port(node))
    }

    /// Every node's address, `first` first and then round the list: a client given this
    /// connects to `first` and, after losing it, moves to the next.
    pub fn urls_from(&self, first: usize) -> String {
        let mut list = vec![self.url(first)];
        for k in 1..NODES.len() {
            let node = (first - 1 + k) % NODES.len() + 1;
            list.push(format!("127.0.0.1:{}", self.port(node)));
        }
        list.join(",")
    }

    /// The node a connected address (as `AmqpTransport::connected_address` gives it) is on.
    pub fn node_of(&self, address: &str) -> Option<usize> {
        NODES
            .into_iter()
            .find(|&node| address.contains(&format!("127.0.0.1:{}/", self.port(node))))
    }

    /// A config connecting to `first`, then the others in turn, with a connection name
    /// unique to this test.
    pub fn config_from(&self, first: usize) -> AmqpConfig {
        AmqpConfig {
            url: self.urls_from(first),
            connect_timeout: Duration::from_secs(5),
            connection_name: Some(format!(
                "fibrpc-cluster-test-{}",
                uuid::Uuid::new_v4().simple()
            )),
            ..AmqpConfig::default()
        }
    }

    /// Declares the quorum request queue `queue` through `node`, which then leads it (a
    /// quorum queue's first leader is the node it was declared on).
    pub async fn declare_quorum_queue(&self, queue: &str, node: usize) {
        let config = AmqpConfig {
            url: self.url(node),
            request_queue: RequestQueueSpec {
                kind: QueueKind::Quorum,
                ..RequestQueueSpec::default()
            },
            ..AmqpConfig::default()
        };
        let admin = AmqpTransport::connect(config).await.expect("connect");
        admin
            .declare_request_queue(queue)
            .await
            .expect("declare the quorum queue");
    }

    /// Deletes `queue` through any node that answers.
    pub async fn delete_queue(&self, queue: &str) {
        let config = AmqpConfig {
            url: self.urls_from(1),
            ..AmqpConfig::default()
        };
        match AmqpTransport::connect(config).await {
            Ok(admin) => {
                if let Err(error) = admin.delete_queue(queue).await {
                    eprintln!("could not delete {queue}: {error}");
                }
            }
            Err(error) => eprintln!("could not delete {queue}: {error}"),
        }
    }

    /// SIGKILLs node `node`'s Erlang VM: a crash, no goodbye to its clients or peers.
    pub async fn kill(&self, node: usize) {
        self.script(&["kill", &node.to_string()]).await;
    }

    /// Starts node `node` again and waits until it has booted (and so rejoined).
    pub async fn start(&self, node: usize) {
        self.script(&["start", &node.to_string()]).await;
    }

    /// The node that leads the quorum queue `queue`, asked of node `ask`.
    pub async fn leader_of(&self, queue: &str, ask: usize) -> Option<usize> {
        let listing = ctl(
            ask,
            &["list_queues", "-q", "--no-table-headers", "name", "leader"],
        )
        .await?;
        let leader = listing
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .find(|(name, _)| name.trim() == queue)?
            .1
            .trim()
            .to_owned();
        NODES
            .into_iter()
            .find(|node| leader == format!("fibrpc{node}@localhost"))
    }

    /// The nodes node `ask` sees running in its cluster.
    pub async fn running_nodes(&self, ask: usize) -> Vec<usize> {
        let running = ctl(ask, &["eval", "rabbit_nodes:all_running()."])
            .await
            .unwrap_or_default();
        NODES
            .into_iter()
            .filter(|node| running.contains(&format!("fibrpc{node}@localhost")))
            .collect()
    }

    /// The nodes `ask` sees running, asked again until it sees all of them or `within` passed.
    pub async fn running_nodes_once_all(&self, ask: usize, within: Duration) -> Vec<usize> {
        let give_up = Instant::now() + within;
        loop {
            let running = self.running_nodes(ask).await;
            if running == NODES || Instant::now() >= give_up {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn script(&self, args: &[&str]) {
        let path = script_path();
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        let shown = args.join(" ");
        let output = tokio::task::spawn_blocking(move || {
            Command::new("bash").arg(path).args(&args).output()
        })
        .await
        .expect("script task")
        .expect("cannot run scripts/rabbitmq-cluster.sh");
        assert!(
            output.status.success(),
            "rabbitmq-cluster.sh {shown} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Restarts every node that is down when dropped, so that a failed test leaves the cluster
/// whole for the next one.
pub struct RestartOnDrop;

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script_path()).arg("up").output();
    }
}

fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/rabbitmq-cluster.sh")
}

/// `rabbitmqctl -n fibrpcN@localhost args...`'s output, or None if it failed.
async fn ctl(node: usize, args: &[&str]) -> Option<String> {
    let mut command = vec!["-n".to_owned(), format!("fibrpc{node}@localhost")];
    command.extend(args.iter().map(|arg| (*arg).to_owned()));
    let output =
        tokio::task::spawn_blocking(move || Command::new("rabbitmqctl").args(&command).output())
            .await
            .ok()?
            .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}
