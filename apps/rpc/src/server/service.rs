//! The procedures a server hosts: a [`Service`] is built by registering one handler per
//! procedure, then handed to [`RpcServer::new`](crate::RpcServer::new), which dispatches each
//! request by the procedure name it carries.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use super::answer::{Answer, Failed};
use crate::codec::{Codec, EncodeError};
use crate::discovery::{DiscoveryError, ProcedureInfo, Procedures};
use crate::{Endpoint, Fault, Wire};

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
/// # use fibrpc_rpc::Procedure;
/// # struct Sum;
/// # #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
/// # #[error("the sum does not fit in an i64")]
/// # struct Overflow;
/// # impl Procedure for Sum {
/// #     const NAME: &'static str = "example.sum";
/// #     type Request = Vec<i64>;
/// #     type Response = i64;
/// #     type Error = Overflow;
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
    /// If the service already has a procedure of that name: a mistake in the program, found
    /// when it builds its service.
    pub fn register<P, H, Fut>(self, procedure: P, handler: H) -> Self
    where
        P: Endpoint,
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
        P: Endpoint,
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
        self.routes.insert(P::NAME, route);
        self
    }

    /// Sends the requests that name no procedure to `P`, which the service hosts: for a
    /// procedure older than procedure names, such as the RabbitMQ tutorial's fib. Without
    /// this they get [`Fault::UnknownProcedure`]. The server then reads requests that carry
    /// no content type as `P`'s wire does ([`Wire::UNTYPED`]), whatever they name.
    ///
    /// # Panics
    /// If the service does not host `P`, or already sends unnamed requests elsewhere.
    pub fn route_unnamed_to<P: Endpoint>(mut self, _: P) -> Self {
        assert!(
            self.routes.named.contains_key(P::NAME),
            "unnamed requests routed to {:?}, which the service does not host",
            P::NAME
        );
        self.routes.set_unnamed(P::NAME);
        self
    }

    /// Adds the procedures of `other`, which keep their own state, and where it routes
    /// unnamed requests.
    ///
    /// # Panics
    /// If both have a procedure of the same name, or route unnamed requests to different
    /// ones.
    pub fn merge<T>(mut self, other: Service<T>) -> Self {
        for (name, route) in other.routes.named {
            self.routes.insert(name, route);
        }
        if let Some(name) = other.routes.unnamed {
            self.routes.set_unnamed(name);
        }
        self
    }

    /// The routes a server dispatches to: the service's, and discovery's.
    pub(crate) fn into_routes(self) -> Routes {
        let mut routes = self.routes;
        // The listing is known once every route is in, discovery's own included.
        let discovery = Service::new(OnceLock::new()).register(
            Procedures,
            |listing: Arc<OnceLock<Vec<ProcedureInfo>>>, ()| async move {
                listing.get().cloned().ok_or(DiscoveryError)
            },
        );
        let listing = discovery.state.clone();
        for (name, route) in discovery.routes.named {
            routes.insert(name, route);
        }
        let mut procedures: Vec<ProcedureInfo> = routes
            .named
            .iter()
            .map(|(name, route)| ProcedureInfo {
                name: (*name).to_owned(),
                idempotent: route.idempotent(),
                content_types: route
                    .codecs()
                    .iter()
                    .map(|codec| codec.content_type().to_owned())
                    .collect(),
            })
            .collect();
        procedures.sort_by(|a, b| a.name.cmp(&b.name));
        let _ = listing.set(procedures);
        routes
    }
}

/// The procedures by name, and where unnamed requests go.
#[derive(Default)]
pub(crate) struct Routes {
    pub named: HashMap<&'static str, Arc<dyn Route>>,
    pub unnamed: Option<&'static str>,
}

impl Routes {
    fn insert(&mut self, name: &'static str, route: Arc<dyn Route>) {
        assert!(
            !self.named.contains_key(name),
            "two procedures named {name:?} in one service"
        );
        self.named.insert(name, route);
    }

    fn set_unnamed(&mut self, name: &'static str) {
        assert!(
            self.unnamed.is_none_or(|unnamed| unnamed == name),
            "unnamed requests routed to two procedures ({name:?} is the second)"
        );
        self.unnamed = Some(name);
    }
}

/// One hosted procedure, its types erased for the pipeline: decodes, runs and encodes.
pub(crate) trait Route: Send + Sync {
    /// The codecs the procedure speaks.
    fn codecs(&self) -> &'static [Codec];

    /// Whether running a request twice does no harm.
    fn idempotent(&self) -> bool;

    /// Whether a request runs to its end past its caller's deadline.
    fn runs_to_completion(&self) -> bool;

    /// The codec of its messages that carry no content type.
    fn untyped(&self) -> Codec;

    /// The bounds the procedure set for itself.
    fn limits(&self) -> Limits;

    /// The answer to a request body in `codec`. May panic (the handler's, the codec's): the
    /// pipeline catches it.
    fn answer(self: Arc<Self>, codec: Codec, body: Vec<u8>) -> Answering;
}

pub(crate) type Answering = Pin<Box<dyn Future<Output = Answer> + Send>>;

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
    P: Endpoint,
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, P::Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<P::Response, P::Error>> + Send + 'static,
{
    fn codecs(&self) -> &'static [Codec] {
        <P::Wire as Wire<P>>::CODECS
    }

    fn idempotent(&self) -> bool {
        P::IDEMPOTENT
    }

    fn runs_to_completion(&self) -> bool {
        P::RUNS_TO_COMPLETION
    }

    fn untyped(&self) -> Codec {
        <P::Wire as Wire<P>>::UNTYPED
    }

    fn limits(&self) -> Limits {
        self.limits
    }

    fn answer(self: Arc<Self>, codec: Codec, body: Vec<u8>) -> Answering {
        Box::pin(async move {
            let request = match P::Wire::decode_request(codec, &body) {
                Ok(request) => request,
                Err(fault) => return Answer::fault(codec, fault),
            };
            drop(body);
            let outcome = self.run(request).await;
            encode::<P>(codec, outcome).await
        })
    }
}

impl<P, S, H, Fut> Handled<P, S, H, Fut>
where
    P: Endpoint,
    H: Fn(Arc<S>, P::Request) -> Fut,
    Fut: Future<Output = Result<P::Response, P::Error>>,
{
    /// The handler's outcome, within the procedure's own bound.
    async fn run(&self, request: P::Request) -> Result<P::Response, P::Error> {
        let _running = match &self.running {
            Some(running) => running.acquire().await.ok(),
            None => None,
        };
        (self.handler)(self.state.clone(), request).await
    }
}

/// The reply carrying `outcome`; one that is heavy to encode is encoded on the blocking pool.
async fn encode<P: Endpoint>(codec: Codec, outcome: Result<P::Response, P::Error>) -> Answer {
    let failed = outcome
        .as_ref()
        .err()
        .map(|error| Failed::Procedure(error.to_string()));
    let encoded = if P::Wire::heavy_reply(codec, &outcome) {
        match tokio::task::spawn_blocking(move || P::Wire::encode_reply(codec, &outcome)).await {
            Ok(encoded) => encoded,
            // The pipeline answers a panic as it answers the handler's.
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(EncodeError(error.to_string())),
        }
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
