//! A second service next to fib, as a user of fibrpc would write one: text statistics, with
//! state ([`text`]); and the session the `services` example runs over any transport
//! ([`session`]).
//!
//! ```sh
//! cargo run --release --example services                       # in-memory broker
//! cargo run --release --example services -- --transport amqp   # RabbitMQ on 127.0.0.1:5672
//! ```

pub mod session;
pub mod text;
