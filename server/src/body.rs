//! Response bodies that cannot pin memory: an answer held in memory is released when sent or
//! after the send timeout, whichever comes first; a file is streamed a piece at a time.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;

/// How much of an answer is handed to the connection at once.
const PIECE: usize = 256 << 10;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a [`HeldBody`] has not sent yet, and the reservation of its memory.
enum Rest {
    Sending {
        bytes: Bytes,
        _permit: Option<OwnedSemaphorePermit>,
    },
    Sent,
    TimedOut,
}

/// An answer in memory, sent in pieces. A reaper task drops what is left (and its reservation)
/// when the client has not taken it within the send timeout, so a stalled client holds at most
/// the piece the connection is writing.
pub(crate) struct HeldBody {
    rest: Arc<Mutex<Rest>>,
    reaper: tokio::task::JoinHandle<()>,
    len: u64,
}

impl HeldBody {
    pub fn new(bytes: Vec<u8>, permit: Option<OwnedSemaphorePermit>, timeout: Duration) -> Self {
        let len = bytes.len() as u64;
        let rest = Arc::new(Mutex::new(Rest::Sending {
            bytes: Bytes::from(bytes),
            _permit: permit,
        }));
        let held = rest.clone();
        let reaper = tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let mut rest = held.lock();
            if matches!(*rest, Rest::Sending { .. }) {
                *rest = Rest::TimedOut;
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
        let bytes = match &mut *rest {
            Rest::Sending { bytes, .. } => bytes,
            Rest::Sent => return Poll::Ready(None),
            Rest::TimedOut => {
                return Poll::Ready(Some(Err(
                    "the client did not take the answer within the send timeout".into(),
                )))
            }
        };
        if bytes.len() <= PIECE {
            // The last piece: the reservation goes with it.
            let last = std::mem::take(bytes);
            *rest = Rest::Sent;
            return Poll::Ready((!last.is_empty()).then(|| Ok(Frame::data(last))));
        }
        // A copy, so that the rest is freed when dropped even while this piece is in flight.
        let piece = Bytes::copy_from_slice(&bytes[..PIECE]);
        let _ = bytes.split_to(PIECE);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(*self.rest.lock(), Rest::Sent)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

/// A file streamed a piece at a time (the file is usually already removed: the open handle
/// keeps it readable until the body is dropped).
pub(crate) struct FileBody {
    file: tokio::fs::File,
    buf: Vec<u8>,
    left: u64,
}

impl FileBody {
    pub fn new(file: tokio::fs::File, len: u64) -> Self {
        FileBody {
            file,
            buf: vec![0; PIECE],
            left: len,
        }
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
        let mut buf = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.file).poll_read(cx, &mut buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Some(Err(
                "the file ended before its length while streaming it".into(),
            ))),
            Poll::Ready(Ok(())) => {
                let piece = Bytes::copy_from_slice(buf.filled());
                this.left = this.left.saturating_sub(piece.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}
