//! The NATS services API (ADR-32) for a core mode server: `$SRV.PING`, `$SRV.INFO` and
//! `$SRV.STATS`, with and without `.<name>` and `.<name>.<id>`, answered in the shapes
//! `nats micro ls|info|stats` reads. The service is the queue (its name, made valid); its
//! endpoints are the queue's own subject (requests that name their procedure in a header, or
//! none) and one subject per procedure. Stats count what the request stream hands out, by the
//! procedure each request names, from hand-out to settlement.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::{errors, names};

/// The version the service reports: fibrpc's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A server's description and counters, shared by its request stream and its responder.
pub(crate) struct Service {
    name: String,
    id: String,
    started: String,
    /// The queue's own endpoint first, then one per procedure.
    endpoints: Vec<Endpoint>,
}

pub(crate) struct Endpoint {
    name: String,
    /// The procedure it serves; None for the queue's own subject.
    procedure: Option<String>,
    subject: String,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    requests: u64,
    errors: u64,
    processing: Duration,
    last_error: String,
}

impl Service {
    /// `queue`'s service, with an endpoint for each procedure that has a subject of its own.
    pub(crate) fn new(queue: &str, id: String, procedures: &[String]) -> Self {
        let endpoint = |name: String, procedure: Option<String>, subject: String| Endpoint {
            name,
            procedure,
            subject,
            counts: Mutex::default(),
        };
        let name = names::service_name(queue);
        let own = endpoint(name.clone(), None, queue.to_owned());
        let named = procedures.iter().map(|procedure| {
            endpoint(
                names::service_name(procedure),
                Some(procedure.clone()),
                names::procedure_subject(queue, procedure),
            )
        });
        Self {
            name,
            id,
            started: rfc3339(SystemTime::now()),
            endpoints: std::iter::once(own).chain(named).collect(),
        }
    }

    /// The endpoints with a subject of their own, as (subject, procedure).
    pub(crate) fn procedure_subjects(&self) -> impl Iterator<Item = (&str, &str)> {
        self.endpoints.iter().filter_map(|endpoint| {
            let procedure = endpoint.procedure.as_deref()?;
            Some((endpoint.subject.as_str(), procedure))
        })
    }

    /// The endpoint whose counters a request for `procedure` adds to: the procedure's, else
    /// (none named, or one the server does not host) the queue's own.
    pub(crate) fn endpoint(self: &Arc<Self>, procedure: Option<&str>) -> Counter {
        let index = self
            .endpoints
            .iter()
            .position(|endpoint| procedure.is_some() && endpoint.procedure.as_deref() == procedure)
            .unwrap_or(0);
        Counter {
            service: self.clone(),
            index,
            started: Instant::now(),
        }
    }

    fn identity(&self, kind: &str) -> Value {
        json!({
            "type": format!("io.nats.micro.v1.{kind}_response"),
            "name": self.name,
            "id": self.id,
            "version": VERSION,
            "metadata": {},
        })
    }

    fn answer(&self, verb: &str) -> Option<Value> {
        let mut answer = match verb {
            "PING" => return Some(self.identity("ping")),
            "INFO" => self.identity("info"),
            "STATS" => self.identity("stats"),
            _ => return None,
        };
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .map(|endpoint| {
                let mut shape = json!({
                    "name": endpoint.name,
                    "subject": endpoint.subject,
                    "queue_group": names::QUEUE_GROUP,
                });
                if verb == "INFO" {
                    shape["metadata"] = json!({});
                } else {
                    let counts = lock(&endpoint.counts);
                    let average = counts
                        .processing
                        .checked_div(u32::try_from(counts.requests).unwrap_or(u32::MAX))
                        .unwrap_or_default();
                    shape["num_requests"] = json!(counts.requests);
                    shape["num_errors"] = json!(counts.errors);
                    shape["last_error"] = json!(counts.last_error);
                    shape["processing_time"] = json!(nanos(counts.processing));
                    shape["average_processing_time"] = json!(nanos(average));
                }
                shape
            })
            .collect();
        if verb == "INFO" {
            answer["description"] = json!("fibrpc server");
        } else {
            answer["started"] = json!(self.started);
        }
        answer["endpoints"] = Value::Array(endpoints);
        Some(answer)
    }

    /// The subjects the services API is asked on, for this service.
    fn subjects(&self) -> Vec<String> {
        ["PING", "INFO", "STATS"]
            .into_iter()
            .flat_map(|verb| {
                [
                    format!("$SRV.{verb}"),
                    format!("$SRV.{verb}.{}", self.name),
                    format!("$SRV.{verb}.{}.{}", self.name, self.id),
                ]
            })
            .collect()
    }
}

/// Counts one request from hand-out to settlement.
pub(crate) struct Counter {
    service: Arc<Service>,
    index: usize,
    started: Instant,
}

impl Counter {
    /// The request is settled; `error` is the error its reply carried, if any.
    pub(crate) fn done(&self, error: Option<String>) {
        let mut counts = lock(&self.service.endpoints[self.index].counts);
        counts.requests += 1;
        counts.processing += self.started.elapsed();
        if let Some(error) = error {
            counts.errors += 1;
            counts.last_error = error;
        }
    }
}

fn lock(counts: &Mutex<Counts>) -> std::sync::MutexGuard<'_, Counts> {
    counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// Answers the services API for `service` until dropped.
pub(crate) struct Responder {
    answering: tokio::task::AbortHandle,
}

impl Responder {
    /// Subscribes (no queue group: every instance answers) and answers in a task. Returns once
    /// the subscriptions are written; `core_server` confirms them with its round trip.
    pub(crate) async fn start(
        client: &async_nats::Client,
        service: Arc<Service>,
    ) -> Result<Self, fibrpc_ports::TransportError> {
        let mut subscriptions = Vec::new();
        for subject in service.subjects() {
            let subscription = client
                .subscribe(subject)
                .await
                .map_err(|error| errors::subscribe(&error))?;
            subscriptions.push(subscription);
        }
        let mut asked = futures_util::stream::select_all(subscriptions);
        let client = client.clone();
        let answering = tokio::spawn(async move {
            while let Some(question) = asked.next().await {
                let (Some(reply), Some(verb)) =
                    (question.reply, question.subject.split('.').nth(1))
                else {
                    continue;
                };
                let Some(answer) = service.answer(verb) else {
                    continue;
                };
                // A lost answer is asked again by the tool; nothing to do here.
                let _ = client.publish(reply, answer.to_string().into()).await;
            }
        })
        .abort_handle();
        Ok(Self { answering })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.answering.abort();
    }
}

/// `time` as RFC 3339 in UTC, to the second: the services API's `started`.
fn rfc3339(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let later = UNIX_EPOCH + Duration::from_secs(1_796_256_000 + 3_723);
        assert_eq!(rfc3339(later), "2026-12-03T01:02:03Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn answers_have_the_services_api_shapes() {
        let procedures = ["fib".to_owned(), "text.count".to_owned()];
        let service = Arc::new(Service::new("rpc_queue", "ID1".to_owned(), &procedures));
        service.endpoint(Some("text.count")).done(None);
        service
            .endpoint(Some("text.count"))
            .done(Some("500:too large".to_owned()));
        service.endpoint(None).done(None);
        let ping = service.answer("PING").unwrap();
        assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
        assert_eq!(ping["name"], "rpc_queue");
        assert_eq!(ping["id"], "ID1");
        let info = service.answer("INFO").unwrap();
        let subjects: Vec<&str> = info["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|endpoint| endpoint["subject"].as_str().unwrap())
            .collect();
        assert_eq!(
            subjects,
            ["rpc_queue", "rpc_queue.fib", "rpc_queue.text.count"]
        );
        assert_eq!(info["endpoints"][2]["name"], "text_count");
        assert_eq!(info["endpoints"][2]["queue_group"], "q");
        let stats = service.answer("STATS").unwrap();
        assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
        assert_eq!(stats["endpoints"][0]["num_requests"], 1);
        assert_eq!(stats["endpoints"][2]["num_requests"], 2);
        assert_eq!(stats["endpoints"][2]["num_errors"], 1);
        assert_eq!(stats["endpoints"][2]["last_error"], "500:too large");
        assert!(service.answer("RESET").is_none());
        assert_eq!(service.subjects().len(), 9);
        assert!(service
            .subjects()
            .contains(&"$SRV.STATS.rpc_queue.ID1".to_owned()));
    }
}
