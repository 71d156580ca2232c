//! Several calls, or several replies, in one broker message: the batch format
//! ([`frame`], docs/wire.md) shared by the client, which sends request batches when told to
//! and reads reply batches always, and the server, which reads request batches always and
//! coalesces replies for clients that say they read them.

pub mod frame;

use fibrpc_ports::Envelope;

pub use self::frame::{FrameError, BATCH_CONTENT_TYPE};

/// The replies a message carries: itself, or a batch's items.
pub(crate) enum Replies {
    One(Option<Envelope>),
    Many(std::vec::IntoIter<frame::Item>),
}

impl Replies {
    /// The replies in `message`. A batch that cannot be read carries none: it is logged
    /// (its calls then time out, as for a reply lost).
    pub(crate) fn of(message: Envelope) -> Self {
        if !frame::is_batch(&message) {
            return Self::One(Some(message));
        }
        match frame::decode(&message.body) {
            Ok(items) => Self::Many(items.into_iter()),
            Err(error) => {
                tracing::warn!(%error, "dropped a reply batch that cannot be read");
                Self::Many(Vec::new().into_iter())
            }
        }
    }
}

impl Iterator for Replies {
    type Item = Envelope;

    fn next(&mut self) -> Option<Envelope> {
        match self {
            Self::One(one) => one.take(),
            Self::Many(items) => items.next().map(|item| item.envelope),
        }
    }
}
