//! The Grafana dashboard (docs/grafana/fibrpc.json) asks only for metrics fibrpc exports, by
//! labels they have: its queries are read and checked against a scrape of the metrics of a
//! real server and client that made a call (over the in-memory broker).

use std::collections::BTreeSet;
use std::sync::Arc;

use fibrpc_in_memory::InMemoryBroker;
use fibrpc_rpc::metrics::{self, Metrics, Registry};
use fibrpc_rpc::{ClientConfig, Procedure, RpcClient, RpcServer, ServerConfig, Service};

const DASHBOARD: &str = include_str!("../../../docs/grafana/fibrpc.json");

/// Labels a query may group or select by: fibrpc's, the histogram's `le`, and those
/// Prometheus adds to every scraped series.
const LABELS: [&str; 6] = ["procedure", "outcome", "role", "le", "instance", "job"];

/// PromQL's functions and keywords that the dashboard uses: anything else that reads as a
/// name must be a metric.
const PROMQL: [&str; 6] = [
    "sum",
    "by",
    "rate",
    "increase",
    "histogram_quantile",
    "without",
];

#[tokio::test]
async fn every_query_names_only_metrics_fibrpc_exports() {
    let exported = exported_series(&scrape().await);
    let queries = queries();
    assert!(queries.len() >= 8, "{queries:?}");
    for query in &queries {
        let (metrics, labels) = names_in(query);
        assert!(!metrics.is_empty(), "no metric in {query}");
        for metric in metrics {
            assert!(
                exported.contains(&metric),
                "{query} asks for {metric}, which fibrpc does not export: {exported:?}"
            );
        }
        for label in labels {
            assert!(LABELS.contains(&label.as_str()), "{query}: label {label}");
        }
    }
}

#[test]
fn the_dashboard_shows_rates_latency_in_flight_and_reconnects() {
    let queries = queries().join("\n");
    for needed in [
        "fibrpc_server_requests_total",
        "fibrpc_client_calls_total",
        "histogram_quantile(0.99, sum by (le, procedure) (rate(fibrpc_server_request_duration_seconds_bucket",
        "histogram_quantile(0.99, sum by (le, procedure) (rate(fibrpc_client_call_duration_seconds_bucket",
        "fibrpc_server_in_flight",
        "fibrpc_transport_reconnects_total",
    ] {
        assert!(queries.contains(needed), "no query with {needed}");
    }
}

/// A procedure of the test's own, as a user defines one.
struct Echo;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct NeverFails;

impl std::fmt::Display for NeverFails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("never")
    }
}

impl std::error::Error for NeverFails {}

impl Procedure for Echo {
    const NAME: &'static str = "test.echo";
    type Request = String;
    type Response = String;
    type Error = NeverFails;
}

/// What `/metrics` shows after one call, from a server and a client counting in one
/// registry (as `fibrpc bench --metrics` has them).
async fn scrape() -> String {
    let broker = InMemoryBroker::new();
    let queue = fibrpc_test_support::unique_queue("dashboard");
    broker.declare_queue(&queue);
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let service = Service::default().register(Echo, |_, text: String| async move { Ok(text) });
    let server = RpcServer::new(
        Arc::new(broker.connect()),
        ServerConfig {
            queue: queue.clone(),
            metrics: Some(metrics.clone()),
            ..ServerConfig::default()
        },
        service,
    )
    .spawn();
    let client = RpcClient::connect(
        Arc::new(broker.connect()),
        ClientConfig {
            queue,
            metrics: Some(metrics),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(client.call::<Echo>("hi".to_owned()).await.unwrap(), "hi");
    server.stop().await.unwrap();
    metrics::render(&registry)
}

/// The names of the series in a scrape (of every family, `# TYPE` lines say, and every
/// sample line).
fn exported_series(text: &str) -> BTreeSet<String> {
    let series: BTreeSet<String> = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split(['{', ' ']).next().unwrap().to_owned())
        .collect();
    let families = text
        .lines()
        .filter(|line| line.starts_with("# TYPE "))
        .count();
    assert!(families >= 8 && series.len() >= 12, "{text}");
    series
}

fn queries() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    panels
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect()
}

/// The metric names and label names in a PromQL query: words that are no function or
/// keyword, no number, no Grafana variable (`$__rate_interval`), and outside strings and
/// range brackets; those in `by (...)` and before `=` in selectors are labels.
fn names_in(query: &str) -> (Vec<String>, Vec<String>) {
    let (mut metrics, mut labels) = (Vec::new(), Vec::new());
    let mut in_labels = false;
    let mut grouping = false;
    let mut words = Vec::new();
    let mut rest = query;
    while let Some(first) = rest.chars().next() {
        let taken = match first {
            '$' | '[' => rest.find([']', ')', ' ']).unwrap_or(rest.len()).max(1),
            '"' => rest[1..].find('"').map_or(rest.len(), |end| end + 2),
            c if c.is_ascii_alphabetic() || c == '_' => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(rest.len());
                words.push((rest[..end].to_owned(), in_labels || grouping));
                end
            }
            '{' => {
                in_labels = true;
                1
            }
            '}' => {
                in_labels = false;
                1
            }
            '(' => {
                grouping = words
                    .last()
                    .is_some_and(|(word, _)| word == "by" || word == "without");
                1
            }
            ')' => {
                grouping = false;
                1
            }
            c => c.len_utf8(),
        };
        rest = &rest[taken..];
    }
    for (word, is_label) in words {
        if is_label {
            labels.push(word);
        } else if !PROMQL.contains(&word.as_str()) {
            metrics.push(word);
        }
    }
    (metrics, labels)
}

#[test]
fn names_are_read_from_a_query() {
    let (metrics, labels) = names_in(
        "histogram_quantile(0.9, sum by (le, procedure) (rate(fibrpc_x_bucket{outcome=\"ok\"}[$__rate_interval])))",
    );
    assert_eq!(metrics, ["fibrpc_x_bucket"]);
    assert_eq!(labels, ["le", "procedure", "outcome"]);
    let (metrics, _) = names_in("sum(rate(up[5m])) + nonsense");
    assert_eq!(metrics, ["up", "nonsense"]);
}
