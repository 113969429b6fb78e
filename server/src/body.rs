//! Response bodies that cannot pin memory: an answer held in memory is released when sent, when
//! the client has taken nothing for the send timeout, or when it takes the answer slower than
//! the least rate allowed; a file is streamed a piece at a time.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// How much of an answer is handed to the connection at once.
const PIECE: usize = 256 << 10;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a client may take an answer held in memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// Without taking any piece of it.
    pub idle: Duration,
    /// The least rate, in bytes a second, at which it must take the whole (0: none).
    pub min_rate: u64,
}

impl Pace {
    /// How long an answer of `len` bytes may take in all (`None`: as long as pieces go).
    fn whole(&self, len: u64) -> Option<Duration> {
        (self.min_rate > 0)
            .then(|| self.idle + Duration::from_secs_f64(len as f64 / self.min_rate as f64))
    }
}

/// What a [`HeldBody`] has not sent yet, and the reservation of its memory.
enum Rest {
    Sending {
        /// The parts not sent yet, in order (the first possibly in part).
        parts: VecDeque<Bytes>,
        _permit: Option<OwnedSemaphorePermit>,
        /// When the client last took a piece (or the answer was made).
        progress: Instant,
    },
    Sent,
    TimedOut,
}

/// An answer in memory, sent in pieces. A reaper task drops what is left (and its reservation)
/// when the client has taken no piece for the send timeout, so a stalled client holds at most
/// the piece the connection is writing, or has not taken it all at the least rate, so a client
/// that trickles holds it for a bounded time; a slow one that keeps up gets it all.
pub(crate) struct HeldBody {
    rest: Arc<Mutex<Rest>>,
    reaper: tokio::task::JoinHandle<()>,
    len: u64,
}

impl HeldBody {
    /// The answer `parts` (sent one after the other), holding `permit` until they are sent.
    pub fn new(parts: Vec<Bytes>, permit: Option<OwnedSemaphorePermit>, pace: Pace) -> Self {
        let len = parts.iter().map(|p| p.len() as u64).sum();
        let timeout = pace.idle;
        let end = pace.whole(len).map(|whole| Instant::now() + whole);
        let parts = parts.into_iter().filter(|p| !p.is_empty()).collect();
        let rest = Arc::new(Mutex::new(Rest::Sending {
            parts,
            _permit: permit,
            progress: Instant::now(),
        }));
        let held = rest.clone();
        let reaper = tokio::spawn(async move {
            let mut deadline = Instant::now() + timeout;
            loop {
                tokio::time::sleep_until(deadline).await;
                let mut rest = held.lock();
                let Rest::Sending { progress, .. } = &*rest else {
                    return;
                };
                let until = end.map_or(*progress + timeout, |end| end.min(*progress + timeout));
                if until <= Instant::now() {
                    *rest = Rest::TimedOut;
                    return;
                }
                // The client took a piece since: wait for its own deadline.
                deadline = until;
            }
        });
        HeldBody { rest, reaper, len }
    }
}

impl Drop for HeldBody {
    fn drop(&mut self) {
        self.reaper.abort();
    }
}

impl Body for HeldBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut rest = self.rest.lock();
        let parts = match &mut *rest {
            Rest::Sending {
                parts, progress, ..
            } => {
                *progress = Instant::now();
                parts
            }
            Rest::Sent => return Poll::Ready(None),
            Rest::TimedOut => {
                return Poll::Ready(Some(Err(
                    "the client did not take the answer in time (send timeout or least rate)"
                        .into(),
                )))
            }
        };
        let Some(front) = parts.front_mut() else {
            *rest = Rest::Sent;
            return Poll::Ready(None);
        };
        // A copy, so that the answer is freed with its reservation even while this piece is
        // in flight (a slice of it would keep the whole allocation alive).
        let n = front.len().min(PIECE);
        let piece = Bytes::copy_from_slice(&front[..n]);
        let _ = front.split_to(n);
        if front.is_empty() {
            parts.pop_front();
        }
        if parts.is_empty() {
            // The last piece: the answer and its reservation go now.
            *rest = Rest::Sent;
        }
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(*self.rest.lock(), Rest::Sent)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// A file streamed a piece at a time by a task that reads ahead at most two pieces. The file
/// is usually already removed: the task's handle keeps it readable, and the task gives it up
/// (and the disk it holds) when the client takes no piece within the send timeout.
pub(crate) struct FileBody {
    pieces: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    left: u64,
}

impl FileBody {
    pub fn spawn(mut file: tokio::fs::File, len: u64, timeout: Duration) -> Self {
        let (tx, pieces) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut left = len;
            while left > 0 {
                let mut buf = vec![0; PIECE.min(left as usize)];
                let piece = match file.read_exact(&mut buf).await {
                    Ok(_) => Ok(Bytes::from(buf)),
                    Err(e) => Err(e),
                };
                let failed = piece.is_err();
                left -= if failed {
                    left
                } else {
                    PIECE.min(left as usize) as u64
                };
                // A client that takes nothing for this long is left with a short body.
                if tx.send_timeout(piece, timeout).await.is_err() || failed {
                    return;
                }
            }
        });
        FileBody { pieces, left: len }
    }
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        match this.pieces.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(piece))) => {
                this.left = this.left.saturating_sub(piece.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(Some(Err(
                "the download was dropped: the client took nothing within the send timeout".into(),
            ))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}
