//! One session over tokio TCP: connect, then keep up to `inflight`
//! requests outstanding until the source runs dry, pinging when idle.
//!
//! A session is a single task that alternates between topping up the window
//! (framing requests into one buffer, written with one syscall) and reading
//! replies; with a bounded window neither side can fill the other's socket
//! buffers, so the alternation cannot deadlock.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use zab_wire::jute::{FrameDecoder, FrameError, Request};

use super::pipeline::{self, Completion, Pipeline, ProtocolError, Reply};
use super::workload::OpClass;

/// Why a session stopped before its source was exhausted.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}: the server closed the connection")]
    Closed(String),
    #[error("{0}: no reply within the session timeout")]
    Timeout(String),
    #[error("{addr}: {source}")]
    Frame { addr: String, source: FrameError },
    #[error("{addr}: {source}")]
    Protocol { addr: String, source: ProtocolError },
}

/// Where a session's requests come from; `None` ends the session's part.
pub trait Source: Send {
    fn next(&mut self, now: Instant) -> Option<(OpClass, Request)>;
}

/// Where completions go.
pub trait Sink: Send {
    fn complete(&mut self, c: Completion, now: Instant);
}

/// A connected session.
pub struct Session {
    addr: String,
    stream: TcpStream,
    input: BytesMut,
    output: BytesMut,
    frames: FrameDecoder,
    pipeline: Pipeline,
    timeout: Duration,
}

impl Session {
    /// Connects to `addr` and creates a session asking for `timeout_ms`.
    pub async fn connect(addr: &str, timeout_ms: i32) -> Result<Session, SessionError> {
        let io = |source| SessionError::Io {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| SessionError::Timeout(addr.to_string()))?
            .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let mut s = Session {
            addr: addr.to_string(),
            stream,
            input: BytesMut::with_capacity(64 * 1024),
            output: BytesMut::with_capacity(16 * 1024),
            frames: FrameDecoder::default(),
            pipeline: Pipeline::new(),
            timeout: Duration::from_millis(timeout_ms.max(1) as u64),
        };
        pipeline::connect_frame(timeout_ms, &mut s.output);
        s.flush().await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let frame = loop {
            if let Some(f) = s.frame()? {
                break f;
            }
            s.fill(deadline).await?;
        };
        let resp = pipeline::connect_reply(frame).map_err(|source| SessionError::Protocol {
            addr: addr.to_string(),
            source,
        })?;
        s.timeout = Duration::from_millis(resp.time_out as u64);
        Ok(s)
    }

    /// Sends what `source` yields, keeping at most `inflight` outstanding,
    /// until it yields `None` and every reply is in.
    pub async fn run(
        &mut self,
        inflight: usize,
        source: &mut dyn Source,
        sink: &mut dyn Sink,
    ) -> Result<(), SessionError> {
        // The Java client pings after a third of the timeout without
        // sending (reference B); any request also counts as a touch.
        let ping_every = self.timeout / 3;
        let mut last_send = Instant::now();
        let mut last_heard = Instant::now();
        let mut exhausted = false;
        loop {
            let now = Instant::now();
            while !exhausted && self.pipeline.outstanding() < inflight {
                match source.next(now) {
                    Some((class, req)) => {
                        self.pipeline
                            .submit(class, &req, now.into_std(), &mut self.output);
                    }
                    None => exhausted = true,
                }
            }
            if !self.output.is_empty() {
                self.flush().await?;
                last_send = Instant::now();
            }
            if exhausted && self.pipeline.is_idle() {
                return Ok(());
            }
            // Wait for replies; ping if nothing was sent for a while.
            let wake = last_send + ping_every;
            match self.fill(wake).await {
                Ok(()) => last_heard = Instant::now(),
                Err(SessionError::Timeout(_)) => {
                    if last_heard.elapsed() > self.timeout {
                        return Err(SessionError::Timeout(self.addr.clone()));
                    }
                    self.pipeline.ping(&mut self.output);
                    continue;
                }
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            while let Some(frame) = self.frame()? {
                let reply = self
                    .pipeline
                    .on_reply(frame, now.into_std())
                    .map_err(|source| SessionError::Protocol {
                        addr: self.addr.clone(),
                        source,
                    })?;
                if let Reply::Done(c) = reply {
                    sink.complete(c, now);
                }
            }
        }
    }

    /// Closes the session (op -11) and waits, briefly, for the reply, so the
    /// server frees it now rather than at expiry.
    pub async fn close(mut self) {
        struct Once(bool);
        impl Source for Once {
            fn next(&mut self, _: Instant) -> Option<(OpClass, Request)> {
                std::mem::take(&mut self.0).then_some((OpClass::Set, Request::CloseSession))
            }
        }
        struct Ignore;
        impl Sink for Ignore {
            fn complete(&mut self, _: Completion, _: Instant) {}
        }
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            self.run(1, &mut Once(true), &mut Ignore),
        )
        .await;
    }

    async fn flush(&mut self) -> Result<(), SessionError> {
        self.stream
            .write_all(&self.output)
            .await
            .map_err(|source| SessionError::Io {
                addr: self.addr.clone(),
                source,
            })?;
        self.output.clear();
        Ok(())
    }

    /// Reads more bytes, or times out at `deadline`.
    async fn fill(&mut self, deadline: Instant) -> Result<(), SessionError> {
        match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.input)).await {
            Err(_) => Err(SessionError::Timeout(self.addr.clone())),
            Ok(Ok(0)) => Err(SessionError::Closed(self.addr.clone())),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(SessionError::Io {
                addr: self.addr.clone(),
                source,
            }),
        }
    }

    fn frame(&mut self) -> Result<Option<bytes::Bytes>, SessionError> {
        self.frames
            .decode(&mut self.input)
            .map_err(|source| SessionError::Frame {
                addr: self.addr.clone(),
                source,
            })
    }
}
