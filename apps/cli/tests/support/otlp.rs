//! A small OTLP/HTTP receiver, as a collector answers: takes `POST /v1/traces` with protobuf
//! bodies, decodes them with the published OTLP definitions (`opentelemetry-proto`), answers
//! 200, and hands over the spans with the service that sent them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::LIMIT;

/// One exported span and the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
pub struct Exported {
    pub service: String,
    pub span: Span,
}

impl Exported {
    /// A string attribute of the span.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        string_attribute(&self.span.attributes, key)
    }
}

pub struct Receiver {
    pub url: String,
    spans: mpsc::Receiver<Exported>,
}

impl Receiver {
    /// Listens on a free port of 127.0.0.1; `url` is the base URL to give `--otlp`.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (send, spans) = mpsc::channel();
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                let Ok(connection) = connection else { break };
                let send = send.clone();
                std::thread::spawn(move || serve_connection(connection, &send));
            }
        });
        Self { url, spans }
    }

    /// Collects spans until `enough` holds for those received (within `LIMIT`).
    pub fn wait_for(&self, enough: impl Fn(&[Exported]) -> bool) -> Vec<Exported> {
        let deadline = Instant::now() + LIMIT;
        let mut received = Vec::new();
        while !enough(&received) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.spans.recv_timeout(left) {
                Ok(span) => received.push(span),
                Err(_) => panic!("not the spans expected within {LIMIT:?}: {received:#?}"),
            }
        }
        received
    }
}

/// HTTP/1.1 requests one after another on a kept-alive connection, until it closes.
fn serve_connection(connection: TcpStream, send: &mpsc::Sender<Exported>) {
    let mut writer = connection.try_clone().unwrap();
    let mut reader = BufReader::new(connection);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let status = if request_line.starts_with("POST /v1/traces ") {
            let request = ExportTraceServiceRequest::decode(body.as_slice())
                .expect("an OTLP trace export request");
            for exported in spans_of(request) {
                let _ = send.send(exported);
            }
            "200 OK"
        } else {
            "404 Not Found"
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
        );
        writer.write_all(response.as_bytes()).unwrap();
    }
}

fn spans_of(request: ExportTraceServiceRequest) -> impl Iterator<Item = Exported> {
    request
        .resource_spans
        .into_iter()
        .flat_map(|resource_spans| {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|resource| string_attribute(&resource.attributes, "service.name"))
                .unwrap_or_default()
                .to_owned();
            resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
                .map(move |span| Exported {
                    service: service.clone(),
                    span,
                })
        })
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                Value::StringValue(text) => Some(text.as_str()),
                _ => None,
            },
        )
}
