//! The conformance kit of fibrpc: tests any adapter runs to show it keeps the contract of the
//! transport ports, and that the whole RPC protocol works over it.
//!
//! An adapter implements [`TransportFactory`] in its tests and invokes the macros:
//!
//! ```ignore
//! fibrpc_conformance::contract_tests!(Some(MyFactory::new())); // the ports' contract
//! fibrpc_conformance::protocol_tests!(Some(MyFactory::new())); // the whole RPC flow
//! ```
//!
//! Each macro expands to one `#[tokio::test]` per scenario; a factory expression that
//! evaluates to `None` skips them (for a broker that is not there outside CI). The protocol
//! scenarios run with fib and with a second service, the example's text statistics
//! (`fibrpc-examples`). Nothing here names a broker.

pub mod contract;
pub mod protocol;

use std::time::Duration;

use async_trait::async_trait;
pub use fibrpc_ports::Connection;
use fibrpc_ports::{QueueAdmin, TransportError};

pub use fibrpc_test_support::{eventually, unique_queue};

/// What the kit needs from an adapter under test.
///
/// The factory expression given to the macros is evaluated again in a child process by the
/// process-death check (the test binary runs itself with one test selected), so it MUST build
/// the same factory there: take its configuration from the environment, as the workspace's
/// factories do (`AMQP_URL`, `NATS_URL`).
#[async_trait]
pub trait TransportFactory: Send + Sync + 'static {
    /// Opens a new connection to the broker under test.
    async fn connect(&self) -> Result<Connection, TransportError>;

    /// The connection the kit declares and deletes request queues on.
    fn admin(&self) -> &dyn QueueAdmin;

    /// Severs every connection this factory opened through [`connect`](Self::connect), as a
    /// broker restart would, and returns whether it severed any. False fails the scenarios
    /// that need it (the fault was not injected); a factory that cannot sever says so through
    /// [`lacks`](Self::lacks)`(`[`Guarantee::SeverableConnections`]`)` instead, and they are
    /// skipped. The connection the factory declares and deletes queues on MUST survive it
    /// (keep it apart from those it severs, or reconnect it): the kit declares the queue again
    /// right after.
    async fn sever_connections(&self) -> bool {
        false
    }

    /// Puts into the request queue `queue` a message this adapter cannot read as an
    /// `Envelope` (a field it cannot decode), as a foreign client could. Returns false when
    /// every message the broker can hold reads as one, and the check is skipped.
    async fn send_malformed(&self, queue: &str) -> bool {
        let _ = queue;
        false
    }

    /// The longest a request held by a consumer that died without a word (its process
    /// killed: no `Drop` runs, no NAK is sent) may take to reach another consumer: the
    /// broker's acknowledgement timeout (JetStream's ack wait, a Redis Streams claim's idle
    /// time), or the time it takes to see a closed connection. The process-death check allows
    /// this plus [`contract::SLACK`]; the hold check holds a request twice this long (at
    /// least [`contract::QUIET`]), so keep it short in a test factory: a few seconds.
    fn redelivery_timeout(&self) -> Duration;

    /// Why the broker cannot give `guarantee`, if it cannot; the checks that need it are
    /// skipped with that reason printed.
    fn lacks(&self, guarantee: Guarantee) -> Option<&'static str> {
        let _ = guarantee;
        None
    }
}

/// Severs `factory`'s connections for the scenario `check`: false, with the reason printed,
/// where the factory declares [`Guarantee::SeverableConnections`] lacking.
///
/// # Panics
/// When the factory severed nothing although it does not declare that: a scenario whose
/// fault was not injected must fail, not pass.
pub async fn sever(factory: &dyn TransportFactory, check: &str) -> bool {
    if let Some(reason) = factory.lacks(Guarantee::SeverableConnections) {
        eprintln!("skipping {check}: {reason}");
        return false;
    }
    assert!(
        factory.sever_connections().await,
        "{check}: the factory severed no connection (and does not declare \
         Guarantee::SeverableConnections lacking): the fault was not injected"
    );
    true
}

/// Removes the queue `name` and what is in it, to clean up after a scenario; a failure is
/// printed, not fatal.
pub async fn delete_queue(factory: &dyn TransportFactory, name: &str) {
    if let Err(error) = factory.admin().delete_queue(name).await {
        eprintln!("could not delete queue {name}: {error}");
    }
}

/// A guarantee of the ports' contract that some brokers cannot give. New ones may be added:
/// match with a `_` arm.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// A request taken but not settled is delivered again.
    Redelivery,
    /// At most `prefetch` requests are handed out unsettled.
    PrefetchLimit,
    /// A request whose deadline passed while queued is not handed out. Lacking it, the
    /// adapter MUST hand the request out with its deadline, and the kit checks that instead.
    Expiry,
    /// A request rejected without requeue is gone.
    RejectWithoutRequeue,
    /// `send_request` to a queue that does not exist fails with `NoSuchQueue`.
    NoSuchQueueOnRequest,
    /// `send_reply` to an address that does not exist fails with `NoSuchQueue`.
    NoSuchQueueOnReply,
    /// The requests held by a consumer whose process is killed (no `Drop` runs) reach
    /// another consumer within [`TransportFactory::redelivery_timeout`]. An in-process
    /// broker dies with the process: it lacks this.
    RedeliveryAfterProcessDeath,
    /// A request sent to a declared queue while no consumer consumes it waits there for one.
    /// Lacking it (core NATS: no responders, no queue), `send_request` fails with
    /// `NoSuchQueue` then, and the checks start their consumers (or, in the protocol kit, a
    /// consumer that takes nothing) before they send.
    QueuedRequests,
    /// A request held by a live consumer for longer than
    /// [`TransportFactory::redelivery_timeout`] is not delivered to another consumer.
    HeldRequestsStayHeld,
    /// The factory can sever the connections it opened
    /// ([`TransportFactory::sever_connections`]), for the checks of a lost connection. Not
    /// the broker's guarantee but the test's means: declare it lacking only where the means
    /// are missing (a command line that cannot be run outside CI, say).
    SeverableConnections,
}
