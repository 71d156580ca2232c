//! Which reply address a client opens, as flags and [`ConnectOptions`](crate::ConnectOptions)
//! name it: its own module, since both the flags and the connecting read it.

use clap::ValueEnum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ReplyToMode {
    /// A reply queue of the client's own that outlives a lost connection (AMQP): calls in
    /// flight then go on waiting instead of failing.
    #[default]
    Queue,
    /// An exclusive, auto-delete reply queue per client (the tutorial's callback queue).
    Exclusive,
    /// RabbitMQ's direct reply-to pseudo-queue.
    Direct,
}
