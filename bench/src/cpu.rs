//! CPU time per call of each process a call goes through: the bench itself (the client), the
//! servers, the broker. Read from /proc over the measured phase only.
//!
//! Each thread's run time comes from `/proc/PID/task/TID/schedstat` (nanoseconds, user and
//! system together): the per-process `utime`/`stime` of `/proc/PID/stat` count in 10 ms
//! ticks, too coarse for a one-second run at one call in flight. A thread that ends during
//! the phase takes its time with it; the threads of the processes measured here live as long
//! as their process. Where schedstat cannot be read, the ticks are used.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

/// `/proc/PID/stat` counts in USER_HZ, 100 per second on every architecture Linux offers to
/// user space here (x86, arm).
const TICK_NANOS: u64 = 10_000_000;

/// The processes to account for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watch {
    /// The bench process also runs the servers (in-process servers).
    pub servers_in_client: bool,
    pub servers: Vec<u32>,
    pub brokers: Vec<u32>,
}

/// CPU time of every watched process at one moment.
pub(crate) struct Snapshot {
    client: Option<ProcessTime>,
    servers: Vec<Option<ProcessTime>>,
    brokers: Vec<Option<ProcessTime>>,
}

/// CPU time per call, in microseconds, of each part; `None` where it could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct CpuPerCall {
    /// The bench process; with in-process servers it includes them (`servers_in_client`).
    pub client_us: Option<f64>,
    pub server_us: Option<f64>,
    pub broker_us: Option<f64>,
    /// The sum of the parts read.
    pub total_us: f64,
    pub servers_in_client: bool,
}

impl CpuPerCall {
    /// The parts read, so that two figures are compared only when they cover the same.
    fn coverage(&self) -> (bool, bool, bool, bool) {
        (
            self.client_us.is_some(),
            self.server_us.is_some(),
            self.broker_us.is_some(),
            self.servers_in_client,
        )
    }

    /// `self.total / other.total`, when both cover the same processes.
    pub(crate) fn ratio_to(&self, other: &CpuPerCall) -> Option<f64> {
        (self.coverage() == other.coverage() && other.total_us > 0.0)
            .then(|| self.total_us / other.total_us)
    }

    /// One line: `cpu/call client 26.1us  server 34.0us  broker 52.3us  total 112.4us`.
    pub(crate) fn line(&self) -> String {
        let part = |label: &str, value: Option<f64>| match value {
            Some(us) => format!("{label} {us:.1}us  "),
            None => format!("{label} -  "),
        };
        let client = if self.servers_in_client {
            "client+servers (in-process)"
        } else {
            "client"
        };
        let mut line = String::from("cpu/call  ");
        line += &part(client, self.client_us);
        if !self.servers_in_client {
            line += &part("server", self.server_us);
        }
        line += &part("broker", self.broker_us);
        line + &format!("total {:.1}us", self.total_us)
    }
}

impl Watch {
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            client: ProcessTime::read(std::process::id()),
            servers: self
                .servers
                .iter()
                .map(|&pid| ProcessTime::read(pid))
                .collect(),
            brokers: self
                .brokers
                .iter()
                .map(|&pid| ProcessTime::read(pid))
                .collect(),
        }
    }

    /// What each part used between `before` and `after`, per call.
    pub(crate) fn per_call(&self, before: &Snapshot, after: &Snapshot, calls: u64) -> CpuPerCall {
        let per_call = |nanos: u64| nanos as f64 / 1e3 / calls.max(1) as f64;
        let client = used(before.client.as_ref(), after.client.as_ref()).map(per_call);
        let sum = |before: &[Option<ProcessTime>], after: &[Option<ProcessTime>]| {
            if before.is_empty() {
                return None;
            }
            let parts: Option<Vec<u64>> = before
                .iter()
                .zip(after)
                .map(|(before, after)| used(before.as_ref(), after.as_ref()))
                .collect();
            parts.map(|parts| per_call(parts.iter().sum()))
        };
        let server = sum(&before.servers, &after.servers);
        let broker = sum(&before.brokers, &after.brokers);
        CpuPerCall {
            client_us: client,
            server_us: server,
            broker_us: broker,
            total_us: [client, server, broker].iter().flatten().sum(),
            servers_in_client: self.servers_in_client,
        }
    }
}

/// One process's CPU time: per thread in nanoseconds where readable, and in ticks.
#[derive(Debug, Clone, PartialEq)]
struct ProcessTime {
    threads: HashMap<u32, u64>,
    ticks: Option<u64>,
}

impl ProcessTime {
    fn read(pid: u32) -> Option<Self> {
        let proc = Path::new("/proc").join(pid.to_string());
        let ticks = std::fs::read_to_string(proc.join("stat"))
            .ok()
            .and_then(|line| parse_stat(&line));
        let mut threads = HashMap::new();
        if let Ok(tasks) = std::fs::read_dir(proc.join("task")) {
            for task in tasks.flatten() {
                let tid = task.file_name().to_string_lossy().parse::<u32>().ok();
                let nanos = std::fs::read_to_string(task.path().join("schedstat"))
                    .ok()
                    .and_then(|text| parse_schedstat(&text));
                if let (Some(tid), Some(nanos)) = (tid, nanos) {
                    threads.insert(tid, nanos);
                }
            }
        }
        (ticks.is_some() || !threads.is_empty()).then_some(Self { threads, ticks })
    }
}

/// Nanoseconds used from `before` to `after`: per thread (a thread born meanwhile counts in
/// full), or from the ticks when there are no thread figures.
fn used(before: Option<&ProcessTime>, after: Option<&ProcessTime>) -> Option<u64> {
    let (before, after) = (before?, after?);
    if !before.threads.is_empty() && !after.threads.is_empty() {
        let nanos = after
            .threads
            .iter()
            .map(|(tid, &now)| now.saturating_sub(before.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        return Some(nanos);
    }
    Some(after.ticks?.saturating_sub(before.ticks?) * TICK_NANOS)
}

/// utime + stime, in ticks, from a `/proc/PID/stat` line. The command name (field 2) is in
/// parentheses and may hold spaces and parentheses itself: fields are counted after the last
/// `)`.
fn parse_stat(line: &str) -> Option<u64> {
    let after_name = &line[line.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state (3), ppid (4), ... utime is field 14, stime field 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The time on CPU, in nanoseconds: the first of schedstat's three fields.
fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_utime_plus_stime_even_with_odd_names() {
        let line = "2967 (beam.smp) S 1 2967 2967 0 -1 4194560 5215 0 0 0 1234 567 0 0 20 0 \
                    30 0 1010 2232508416 30922 18446744073709551615 1 1 0 0 0 0 0 4096 1 0 0 0 \
                    17 1 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some(1234 + 567));
        let odd = "42 (a) b (c) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_stat(odd), Some(10));
        assert_eq!(parse_stat("42 (cut) R 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn schedstat_gives_nanoseconds_on_cpu() {
        assert_eq!(parse_schedstat("26251571 8760026 26\n"), Some(26_251_571));
        assert_eq!(parse_schedstat("garbage"), None);
    }

    fn time(threads: &[(u32, u64)], ticks: u64) -> ProcessTime {
        ProcessTime {
            threads: threads.iter().copied().collect(),
            ticks: Some(ticks),
        }
    }

    #[test]
    fn time_used_is_counted_per_thread_with_ticks_as_fallback() {
        let before = time(&[(1, 1_000), (2, 5_000)], 10);
        // Thread 2 ran 3 us, thread 3 was born and ran 4 us, thread 1 idled.
        let after = time(&[(1, 1_000), (2, 8_000), (3, 4_000)], 12);
        assert_eq!(used(Some(&before), Some(&after)), Some(7_000));
        let (no_threads_before, no_threads_after) = (time(&[], 10), time(&[], 12));
        assert_eq!(
            used(Some(&no_threads_before), Some(&no_threads_after)),
            Some(2 * TICK_NANOS)
        );
        assert_eq!(used(None, Some(&after)), None);
    }

    #[test]
    fn this_process_can_be_read_and_its_time_grows() {
        let watch = Watch::default();
        let before = watch.snapshot();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = watch.snapshot();
        let cpu = watch.per_call(&before, &after, 1);
        assert!(cpu.client_us.is_some_and(|us| us > 0.0), "{cpu:?}");
        assert_eq!(cpu.server_us, None);
        assert_eq!(cpu.total_us, cpu.client_us.unwrap());
    }

    #[test]
    fn totals_are_compared_only_over_the_same_processes() {
        let full = CpuPerCall {
            client_us: Some(30.0),
            server_us: Some(40.0),
            broker_us: Some(50.0),
            total_us: 120.0,
            servers_in_client: false,
        };
        let bare = CpuPerCall {
            total_us: 100.0,
            ..full
        };
        assert_eq!(full.ratio_to(&bare), Some(1.2));
        let no_broker = CpuPerCall {
            broker_us: None,
            total_us: 70.0,
            ..full
        };
        assert_eq!(full.ratio_to(&no_broker), None);
        assert!(full.line().contains("server 40.0us"), "{}", full.line());
    }
}
