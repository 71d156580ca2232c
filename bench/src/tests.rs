//! Whole bench runs over the memory transport (the broker ones are in apps/cli/tests).

use super::*;
use crate::settings::tests::bench_args;

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "fibrpc-bench-test-{}-{name}",
        uuid::Uuid::new_v4().simple()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_of_a_sweep_check_every_answer_and_write_json_and_a_plot() {
    let (json, svg) = (temp("run.json"), temp("sweep.svg"));
    let (json_path, svg_path) = (
        json.to_string_lossy().into_owned(),
        svg.to_string_lossy().into_owned(),
    );
    let args = bench_args(&[
        "--calls",
        "300",
        "--warmup",
        "20",
        "--concurrency",
        "1,8",
        "--rounds",
        "2",
        "--clients",
        "2",
        "--servers",
        "2",
        "--n",
        "90",
        "--baseline",
        "--json",
        &json_path,
        "--plot",
        &svg_path,
    ]);
    run(args).await.unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let plot = std::fs::read_to_string(&svg).unwrap();
    let _ = (std::fs::remove_file(&json), std::fs::remove_file(&svg));
    assert_eq!(report["transport"], "memory");
    // Two levels of two rounds: four fibrpc runs of 300 calls, all answered.
    assert_eq!(report["calls"], 1200);
    assert_eq!(report["errors"], 0);
    assert_eq!(report["retries"], 0);
    assert_eq!(report["runs"].as_array().unwrap().len(), 4);
    let first = &report["runs"][0];
    assert_eq!(first["concurrency"], 1);
    assert_eq!(first["baseline"]["calls"], 300);
    assert!(
        first["calls_per_sec"].is_null()
            && first["fibrpc"]["calls_per_sec"].as_f64().unwrap() > 0.0
    );
    assert!(
        first["fibrpc"]["p50_us"].as_f64().unwrap() <= first["fibrpc"]["p99_us"].as_f64().unwrap()
    );
    assert!(first["fibrpc"]["cpu"]["client_us"].as_f64().unwrap() > 0.0);
    assert_eq!(first["fibrpc"]["cpu"]["servers_in_client"], true);
    assert_eq!(report["levels"][1]["concurrency"], 8);
    assert!(
        report["levels"][1]["ratios"]["throughput"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(plot.contains("calls in flight") && plot.contains("channel echo"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_level_plots_the_latency_percentiles() {
    let svg = temp("latency.svg");
    let svg_path = svg.to_string_lossy().into_owned();
    let args = bench_args(&[
        "--calls",
        "500",
        "--warmup",
        "0",
        "--concurrency",
        "4",
        "--baseline",
        "--plot",
        &svg_path,
    ]);
    run(args).await.unwrap();
    let plot = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    assert!(plot.contains("percentile") && plot.contains("fibrpc"));
}
