//! The procedures a server hosts: a [`Service`] is built by registering one handler per
//! procedure, then handed to [`RpcServer::new`](crate::RpcServer::new), which dispatches each
//! request by the procedure name it carries.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use fibrpc_ports::IncomingRequest;
use futures_util::FutureExt;
use tokio::sync::Semaphore;

use super::handler::{Answer, Failed, Replier};
use crate::codec::{Codec, EncodeError};
use crate::metrics::{Metrics, ServerOutcome};
use crate::{Fault, Procedure, Wire};

/// A server procedure's counters, one per outcome.
pub(crate) type ServerProcedureMetrics =
    crate::metrics::ProcedureMetrics<{ ServerOutcome::ALL.len() }>;

/// What a server does with a request taken after its caller's deadline has passed. A broker
/// that expires messages drops a request still queued at its deadline whatever this says;
/// this decides for one that reaches the server late all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expired {
    /// Acknowledges it unanswered: nobody waits for the reply any more.
    #[default]
    Skip,
    /// Runs it and replies anyway, for a procedure whose effect matters even when its caller
    /// has given up.
    Run,
}

/// Bounds a procedure sets for itself in place of the server's ([`ServerConfig`]); `None`
/// keeps the server's.
///
/// [`ServerConfig`]: crate::ServerConfig
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Largest request body read; larger ones get a [`Fault::BodyTooLarge`] reply.
    pub max_body_bytes: Option<usize>,
    /// Requests of this procedure handled at once, within the server's own bound. Requests
    /// waiting for this bound hold one of the server's slots meanwhile: the bound caps the
    /// procedure's share of the work running, not of the server.
    pub concurrency: Option<usize>,
    /// What happens to a request taken after its caller's deadline.
    pub expired: Option<Expired>,
}

/// The procedures of a server, with the state their handlers share.
///
/// ```
/// # use fibrpc_rpc::{Bincode, Procedure};
/// # struct Sum;
/// # #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
/// # #[error("the sum does not fit in an i64")]
/// # struct Overflow;
/// # impl Procedure for Sum {
/// #     const NAME: &'static str = "example.sum";
/// #     type Request = Vec<i64>;
/// #     type Response = i64;
/// #     type Error = Overflow;
/// #     type Wire = Bincode;
/// # }
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// use fibrpc_rpc::Service;
///
/// let service = Service::new(AtomicU64::new(0)).register(Sum, |calls, numbers| async move {
///     calls.fetch_add(1, Ordering::Relaxed);
///     numbers.iter().try_fold(0i64, |sum, &n| sum.checked_add(n)).ok_or(Overflow)
/// });
/// ```
pub struct Service<S> {
    state: Arc<S>,
    routes: Routes,
}

impl Default for Service<()> {
    fn default() -> Self {
        Self::new(())
    }
}

impl<S: Send + Sync + 'static> Service<S> {
    /// A service with no procedures yet, whose handlers will share `state`.
    pub fn new(state: S) -> Self {
        Self {
            state: Arc::new(state),
            routes: Routes::default(),
        }
    }

    /// Hosts `procedure`: each of its requests is answered by `handler(state, request)`.
    ///
    /// A handler that panics is answered with [`Fault::Internal`]; the server goes on.
    ///
    /// # Panics
    /// If the service already has a procedure of that name, or already an unnamed one: a
    /// mistake in the program, found when it builds its service.
    pub fn register<P, H, Fut>(self, procedure: P, handler: H) -> Self
    where
        P: Procedure,
        H: Fn(Arc<S>, P::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P::Response, P::Error>> + Send + 'static,
    {
        self.register_with(procedure, Limits::default(), handler)
    }

    /// [`register`](Self::register), with bounds of the procedure's own.
    ///
    /// # Panics
    /// As [`register`](Self::register).
    pub fn register_with<P, H, Fut>(mut self, _: P, limits: Limits, handler: H) -> Self
    where
        P: Procedure,
        H: Fn(Arc<S>, P::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<P::Response, P::Error>> + Send + 'static,
    {
        let route = Arc::new(Handled::<P, S, H, Fut> {
            handler,
            state: self.state.clone(),
            running: limits.concurrency.map(|bound| Semaphore::new(bound.max(1))),
            limits,
            _types: PhantomData,
        });
        self.routes.insert(P::NAME, P::UNNAMED, route);
        self
    }

    /// Adds the procedures of `other`, which keep their own state.
    ///
    /// # Panics
    /// If both have a procedure of the same name, or both an unnamed one.
    pub fn merge<T>(mut self, other: Service<T>) -> Self {
        let unnamed = other.routes.unnamed.map(|entry| entry.name);
        for (name, entry) in other.routes.named {
            self.routes.insert(name, unnamed == Some(name), entry.route);
        }
        self
    }

    pub(crate) fn into_routes(self) -> Routes {
        self.routes
    }
}

/// The procedures by name, and the one for requests that name none (by its name too).
#[derive(Default)]
pub(crate) struct Routes {
    named: HashMap<&'static str, Entry>,
    unnamed: Option<Entry>,
}

/// A hosted procedure, by name, with its counters once the server has metrics.
#[derive(Clone)]
pub(crate) struct Entry {
    pub name: &'static str,
    pub route: Arc<dyn Route>,
    pub metrics: Option<Arc<ServerProcedureMetrics>>,
}

impl Routes {
    fn insert(&mut self, name: &'static str, unnamed: bool, route: Arc<dyn Route>) {
        assert!(
            !self.named.contains_key(name),
            "two procedures named {name:?} in one service"
        );
        let entry = Entry {
            name,
            route,
            metrics: None,
        };
        if unnamed {
            assert!(
                self.unnamed.is_none(),
                "two unnamed procedures in one service ({name:?} is the second)"
            );
            self.unnamed = Some(entry.clone());
        }
        self.named.insert(name, entry);
    }

    /// Gives every procedure its counters in `metrics`, looked up now, once.
    pub(crate) fn observe(&mut self, metrics: &Metrics) {
        let entries = self.named.values_mut().chain(self.unnamed.as_mut());
        for entry in entries {
            entry.metrics = Some(Arc::new(metrics.server_procedure(entry.name)));
        }
    }

    /// The names of the procedures, sorted.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.named.keys().copied().collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn find(&self, procedure: Option<&str>) -> Option<&Entry> {
        match procedure {
            None => self.unnamed.as_ref(),
            Some(name) => self.named.get(name),
        }
    }
}

/// One hosted procedure, its types erased for the server loop.
pub(crate) trait Route: Send + Sync {
    /// Answers `request`: a future the server loop drives among the requests in flight.
    fn handle(self: Arc<Self>, replier: Arc<Replier>, request: IncomingRequest) -> Handling;
}

/// One request being answered, to the end the server counts.
pub(crate) type Handling = Pin<Box<dyn Future<Output = ServerOutcome> + Send>>;

struct Handled<P, S, H, Fut> {
    handler: H,
    state: Arc<S>,
    limits: Limits,
    /// The procedure's own bound on requests handled at once, if it has one.
    running: Option<Semaphore>,
    _types: PhantomData<fn() -> (P, Fut)>,
}

impl<P, S, H, Fut> Route for Handled<P, S, H, Fut>
where
    P: Procedure,
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, P::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<P::Response, P::Error>> + Send + 'static,
{
    fn handle(self: Arc<Self>, replier: Arc<Replier>, request: IncomingRequest) -> Handling {
        Box::pin(async move {
            replier
                .handle(request, &self.limits, |codec, body| {
                    self.answer(codec, body)
                })
                .await
        })
    }
}

impl<P, S, H, Fut> Handled<P, S, H, Fut>
where
    P: Procedure,
    H: Fn(Arc<S>, P::Request) -> Fut,
    Fut: Future<Output = Result<P::Response, P::Error>>,
{
    async fn answer(&self, codec: Codec, body: Vec<u8>) -> Answer {
        let request = match P::Wire::decode_request(codec, &body) {
            Ok(request) => request,
            Err(fault) => return Answer::fault(codec, fault),
        };
        drop(body);
        match self.run(request).await {
            Ok(outcome) => encode::<P>(codec, outcome).await,
            Err(fault) => Answer::fault(codec, fault),
        }
    }

    /// The handler's outcome, within the procedure's own bound; a panic is a fault.
    async fn run(&self, request: P::Request) -> Result<Result<P::Response, P::Error>, Fault> {
        let _running = match &self.running {
            Some(running) => running.acquire().await.ok(),
            None => None,
        };
        AssertUnwindSafe(async { (self.handler)(self.state.clone(), request).await })
            .catch_unwind()
            .await
            .map_err(|panic| Fault::Internal {
                reason: panic_reason(&*panic),
            })
    }
}

/// The reply carrying `outcome`; one that is heavy to encode is encoded on the blocking pool.
async fn encode<P: Procedure>(codec: Codec, outcome: Result<P::Response, P::Error>) -> Answer {
    let failed = outcome
        .as_ref()
        .err()
        .map(|error| Failed::Procedure(error.to_string()));
    let encoded = if P::Wire::heavy_reply(codec, &outcome) {
        tokio::task::spawn_blocking(move || P::Wire::encode_reply(codec, &outcome))
            .await
            .unwrap_or_else(|error| Err(EncodeError(error.to_string())))
    } else {
        P::Wire::encode_reply(codec, &outcome)
    };
    match encoded {
        Ok(body) => Answer {
            codec,
            body,
            failed,
        },
        Err(error) => {
            let reason = format!("cannot encode the reply: {error}");
            Answer::fault(codec, Fault::Internal { reason })
        }
    }
}

/// What a panic said, for the `Internal` fault that answers it.
fn panic_reason(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    tracing::error!(panic = message, "a handler panicked");
    format!("the handler panicked: {message}")
}
