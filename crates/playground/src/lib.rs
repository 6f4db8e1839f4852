//! # backprop-playground
//!
//! A browser playground in the spirit of TensorFlow Playground, trained live by backprop's
//! own engine on the server: 2-D data (generated, multiclass or an uploaded CSV), input
//! features, hidden layers with their own activations, dropout, L1/L2, three optimizers,
//! per-neuron heatmaps, and the lecture's z, a and δ for any neuron. A second page classifies
//! digits drawn on a canvas with an MNIST model trained by `backprop train`.
//!
//! The HTTP stack (axum on tokio) lives in this crate only, so the library crates stay lean.
//! The pages are plain HTML/CSS/JS embedded in the binary.
//!
//! ## API
//!
//! | method and path | does |
//! |---|---|
//! | `POST /api/sessions` (config JSON) | creates a session: `{id, setup, frame}` |
//! | `GET /api/sessions/{id}` | the set-up (points, domain), the latest frame, the loss history |
//! | `PUT /api/sessions/{id}/config` | a new set-up (epoch 0) |
//! | `POST /api/sessions/{id}/play`, `/pause`, `/reset` | controls |
//! | `POST /api/sessions/{id}/step?epochs=N` | trains N epochs now, returns the frame |
//! | `POST /api/sessions/{id}/upload?problem=classification` | a CSV `x1,x2,label` becomes the data |
//! | `GET /api/sessions/{id}/neuron?layer=L&neuron=J` | z, a, f′(z), δ, ∂C/∂w of one neuron |
//! | `GET /api/sessions/{id}/events` | server-sent events, one `frame` per update |
//! | `DELETE /api/sessions/{id}` | closes it |
//! | `GET /api/digits/status`, `/api/digits/weights.png`, `POST /api/digits/predict` | the digits page |
//! | `GET /api/limits` | the bounds every request is checked against |
//!
//! Bad requests get a 4xx status and `{"error": message}` naming the field.

#![warn(missing_docs)]

mod assets;
pub mod config;
pub mod digits;
pub mod engine;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::{Config, LayerConfig};
pub use digits::DigitsOptions;
pub use engine::Engine;
pub use server::App;

/// How the server runs.
///
/// What bounds its memory: at most `max_connections` connections, each holding at most one
/// request body of [`config::limits::MAX_BODY_BYTES`] and its headers; at most
/// `max_sessions` sessions, each at most [`config::limits::MAX_UPLOAD_ROWS`] points and a
/// network of [`config::limits::MAX_LAYERS`] × [`config::limits::MAX_NEURONS`]; and the
/// digits model. Connections that send nothing are closed after `request_timeout`, and
/// bodies that do not arrive in that time are refused.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most sessions kept at once.
    pub max_sessions: usize,
    /// Most sessions training (playing) at once.
    pub max_playing: usize,
    /// Sessions without requests or watchers for this long are closed.
    pub session_ttl: Duration,
    /// Frames per second while playing (each frame trains `speed` epochs).
    pub frame_rate: f64,
    /// The digits page's model.
    pub digits: DigitsOptions,
    /// Most connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// A client must send a request's headers within this time (from the connection's
    /// start, or from the end of its previous request: slow tricklers and idle keep-alive
    /// connections are closed after it), and then its body within this time again (or get
    /// a 408).
    pub request_timeout: Duration,
    /// Returns freed memory to the operating system; called on the reaper's tick when
    /// sessions or connections closed since the last call (the binary passes glibc's
    /// `malloc_trim`, since the allocator otherwise keeps what a load peak allocated).
    pub release_memory: Option<fn()>,
}

impl Options {
    /// The memory this configuration allows the server, in bytes: a base for the program and
    /// its runtime, one request body and its buffers per connection, a session's data,
    /// network and latest frame per session, and the digits model. `GET /api/limits` reports
    /// it, and the load test (`scripts/playground-load.py`) holds the peak to it.
    pub fn memory_bound(&self) -> u64 {
        const BASE: u64 = 32 << 20;
        const PER_CONNECTION: u64 = config::limits::MAX_BODY_BYTES as u64 + (64 << 10);
        const PER_SESSION: u64 = 1 << 20;
        const DIGITS: u64 = 16 << 20;
        BASE + self.max_connections as u64 * PER_CONNECTION
            + self.max_sessions as u64 * PER_SESSION
            + DIGITS
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_sessions: 32,
            max_playing: 4,
            session_ttl: Duration::from_secs(600),
            frame_rate: 30.0,
            digits: DigitsOptions {
                model: digits::default_model_path(),
                mnist_dir: "data/mnist".into(),
                epochs: 3,
            },
            max_connections: 512,
            request_timeout: Duration::from_secs(10),
            release_memory: None,
        }
    }
}

/// Binds `host:port` and serves until the process ends; `on_ready` gets the bound address
/// (useful with port 0).
///
/// # Errors
/// If the address cannot be bound or the runtime cannot start.
pub fn run(
    host: &str,
    port: u16,
    opts: Options,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server runtime: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .map_err(|e| format!("cannot listen on {host}:{port}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?;
        let connections = Arc::new(tokio::sync::Semaphore::new(opts.max_connections));
        let timeout = opts.request_timeout;
        let app = App::new(opts);
        let reaper = Arc::clone(&app);
        tokio::spawn(async move {
            let every = (reaper_interval(&reaper)).max(Duration::from_millis(100));
            loop {
                tokio::time::sleep(every).await;
                reaper.reap();
                reaper.release_memory_if_freed();
            }
        });
        on_ready(addr);
        let closed = Arc::clone(&app);
        serve(listener, server::router(app), connections, timeout, closed).await;
        Ok(())
    })
}

/// Accepts connections while fewer than the cap are open, each served over HTTP/1.1 with
/// the header timeout; one over the cap gets a 503 and is closed.
async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    connections: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    app: Arc<App>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            // out of file descriptors, or a connection reset before it was accepted
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            // its buffers are free now: the next reaper tick hands them back
            app.note_closed_connection();
        });
    }
}

/// The answer to a connection over the cap.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"error":"the server has as many connections open as it serves at once; try again shortly"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await?;
        // a lingering close: read (at most 64 KiB of) what the client still sends until it
        // closes, so that closing does not reset a request still arriving, which would cost
        // the client the answer
        let (mut buf, mut left) = ([0u8; 4096], 64usize << 10);
        while left > 0 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

fn reaper_interval(app: &App) -> Duration {
    (app.session_ttl() / 2).min(Duration::from_secs(10))
}
