//! The HTTP side: sessions, their training workers, the frame stream (server-sent events),
//! the digits endpoints and the embedded pages.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use backprop_data::{parse_csv, CsvOptions, Dataset, Task};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::config::{limits, Config};
use crate::digits::Digits;
use crate::engine::Engine;
use crate::Options;

/// An error answer: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad(msg: impl Into<String>) -> Self {
        ApiError(StatusCode::BAD_REQUEST, msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Reads the whole request body within the request timeout (a client that promises a body
/// and sends it slowly, or never, gets a 408 instead of holding a handler), at most
/// [`limits::MAX_BODY_BYTES`] of it (413 beyond).
async fn body_deadline(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let timeout = app.opts.request_timeout;
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, limits::MAX_BODY_BYTES);
    let bytes = match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
        Ok(Err(e)) => return ApiError::bad(format!("the request body: {e}")).into_response(),
        Err(_) => {
            return ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            )
            .into_response()
        }
    };
    let req = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
    next.run(req).await
}

/// Every refusal is `{"error": ...}`, including those axum's extractors write as plain text
/// (an oversized body's 413, a malformed body's 400 or 422).
async fn json_refusals(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "the request body is larger than the limit of {} bytes",
            limits::MAX_BODY_BYTES
        )
    } else {
        let body = axum::body::to_bytes(res.into_body(), 16 * 1024)
            .await
            .unwrap_or_default();
        String::from_utf8_lossy(&body).trim().to_string()
    };
    ApiError(status, message).into_response()
}

struct Session {
    engine: Mutex<Engine>,
    upload: Mutex<Option<Dataset>>,
    frames: watch::Sender<Arc<str>>,
    version: AtomicU64,
    frame_count: AtomicU64,
    playing: AtomicBool,
    worker: AtomicBool,
    closed: AtomicBool,
    last_seen: Mutex<Instant>,
}

impl Session {
    fn touch(&self) {
        *self.last_seen.lock().expect("session clock") = Instant::now();
    }

    fn publish(&self, e: &Engine) {
        let mut f = e.frame();
        f["version"] = json!(self.version.load(Ordering::SeqCst));
        f["frame"] = json!(self.frame_count.fetch_add(1, Ordering::SeqCst) + 1);
        f["playing"] = json!(self.playing.load(Ordering::SeqCst));
        self.frames.send_replace(Arc::from(f.to_string()));
    }

    fn snapshot(&self) -> Value {
        let e = self.engine.lock().expect("engine");
        json!({
            "version": self.version.load(Ordering::SeqCst),
            "playing": self.playing.load(Ordering::SeqCst),
            "setup": e.setup(),
            "frame": serde_json::from_str::<Value>(&self.frames.borrow()).unwrap_or(Value::Null),
            "history": e.history(),
        })
    }
}

/// The server's shared state.
pub struct App {
    opts: Options,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    playing: AtomicUsize,
    ids: Mutex<backprop_tensor::Rng>,
    digits: Arc<Digits>,
    /// Sessions and connections closed since memory was last released.
    closed_since_release: AtomicUsize,
}

impl App {
    /// A server with no sessions; the digits model is prepared on first use.
    pub fn new(opts: Options) -> Arc<App> {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        Arc::new(App {
            digits: Arc::new(Digits::new(opts.digits.clone())),
            opts,
            sessions: Mutex::new(HashMap::new()),
            playing: AtomicUsize::new(0),
            ids: Mutex::new(backprop_tensor::Rng::seed(seed)),
            closed_since_release: AtomicUsize::new(0),
        })
    }

    fn session(&self, id: &str) -> Result<Arc<Session>, ApiError> {
        let s = self
            .sessions
            .lock()
            .expect("sessions")
            .get(id)
            .cloned()
            .ok_or_else(|| {
                ApiError(
                    StatusCode::NOT_FOUND,
                    format!(
                        "no session {id:?} (sessions idle for {} s are closed)",
                        self.opts.session_ttl.as_secs()
                    ),
                )
            })?;
        s.touch();
        Ok(s)
    }

    /// How long an unwatched session may sit idle.
    pub fn session_ttl(&self) -> Duration {
        self.opts.session_ttl
    }

    /// Closes sessions idle for longer than the time to live with nobody watching.
    pub fn reap(&self) -> usize {
        let ttl = self.opts.session_ttl;
        let mut map = self.sessions.lock().expect("sessions");
        let before = map.len();
        map.retain(|_, s| {
            let idle = s.last_seen.lock().expect("session clock").elapsed() > ttl
                && s.frames.receiver_count() == 0;
            if idle {
                s.closed.store(true, Ordering::SeqCst);
                s.playing.store(false, Ordering::SeqCst);
            }
            !idle
        });
        let closed = before - map.len();
        self.closed_since_release
            .fetch_add(closed, Ordering::SeqCst);
        closed
    }

    /// Counts a closed connection: what it held is freed, so the next
    /// [`App::release_memory_if_freed`] hands it back.
    pub fn note_closed_connection(&self) {
        self.closed_since_release.fetch_add(1, Ordering::SeqCst);
    }

    /// Hands freed memory back to the system (see [`crate::Options::release_memory`]) if
    /// sessions or connections closed since the last call.
    pub fn release_memory_if_freed(&self) {
        if self.closed_since_release.swap(0, Ordering::SeqCst) > 0 {
            if let Some(release) = self.opts.release_memory {
                release();
            }
        }
    }
}

fn parse_config(body: &[u8]) -> Result<Config, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Config::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("config: {e}")))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a playground task panicked")
}

fn spawn_worker(app: &Arc<App>, s: &Arc<Session>) {
    app.playing.fetch_add(1, Ordering::SeqCst);
    let (app, s) = (Arc::clone(app), Arc::clone(s));
    std::thread::spawn(move || {
        let interval = Duration::from_secs_f64(1.0 / app.opts.frame_rate);
        loop {
            while s.playing.load(Ordering::SeqCst) && !s.closed.load(Ordering::SeqCst) {
                let t0 = Instant::now();
                {
                    let mut e = s.engine.lock().expect("engine");
                    let speed = e.config().speed;
                    e.train_epochs(speed);
                    s.publish(&e);
                }
                if let Some(rest) = interval.checked_sub(t0.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            s.worker.store(false, Ordering::SeqCst);
            // a play that arrived while this worker was stopping found it still running
            if s.playing.load(Ordering::SeqCst)
                && !s.closed.load(Ordering::SeqCst)
                && !s.worker.swap(true, Ordering::SeqCst)
            {
                continue;
            }
            break;
        }
        app.playing.fetch_sub(1, Ordering::SeqCst);
    });
}

async fn create(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let cfg = parse_config(&body)?;
    // a bad config is a 400 whether or not the server is full
    cfg.validate(None).map_err(ApiError::bad)?;
    if app.sessions.lock().expect("sessions").len() >= app.opts.max_sessions {
        app.reap();
        if app.sessions.lock().expect("sessions").len() >= app.opts.max_sessions {
            return Err(ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "there are already {} sessions, the most this server keeps; close one (DELETE) or wait until idle ones are closed",
                    app.opts.max_sessions
                ),
            ));
        }
    }
    let engine = blocking(move || Engine::new(cfg, None))
        .await
        .map_err(ApiError::bad)?;
    let (tx, _) = watch::channel(Arc::<str>::from("null"));
    let s = Arc::new(Session {
        engine: Mutex::new(engine),
        upload: Mutex::new(None),
        frames: tx,
        version: AtomicU64::new(1),
        frame_count: AtomicU64::new(0),
        playing: AtomicBool::new(false),
        worker: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        last_seen: Mutex::new(Instant::now()),
    });
    let id = format!("{:016x}", app.ids.lock().expect("ids").next_u64());
    let s2 = Arc::clone(&s);
    let snap = blocking(move || {
        s2.publish(&s2.engine.lock().expect("engine"));
        s2.snapshot()
    })
    .await;
    app.sessions.lock().expect("sessions").insert(id.clone(), s);
    let mut v = snap;
    v["id"] = json!(id);
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let s = app.session(&id)?;
    let mut v = blocking(move || s.snapshot()).await;
    v["id"] = json!(id);
    Ok(Json(v).into_response())
}

/// Replaces the session's engine with a fresh one for `cfg` (keeping play/pause).
async fn rebuild(s: Arc<Session>, cfg: Config) -> ApiResult {
    let v = blocking(move || -> Result<Value, String> {
        let upload = s.upload.lock().expect("upload").clone();
        let engine = Engine::new(cfg, upload.as_ref())?;
        let mut e = s.engine.lock().expect("engine");
        *e = engine;
        s.version.fetch_add(1, Ordering::SeqCst);
        s.publish(&e);
        drop(e);
        Ok(s.snapshot())
    })
    .await
    .map_err(ApiError::bad)?;
    Ok(Json(v).into_response())
}

async fn configure(State(app): State<Arc<App>>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let s = app.session(&id)?;
    let cfg = parse_config(&body)?;
    rebuild(s, cfg).await
}

async fn reset(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let s = app.session(&id)?;
    let cfg = s.engine.lock().expect("engine").config().clone();
    rebuild(s, cfg).await
}

async fn play(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let s = app.session(&id)?;
    if !s.worker.load(Ordering::SeqCst)
        && app.playing.load(Ordering::SeqCst) >= app.opts.max_playing
    {
        return Err(ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} sessions are already training, the most this server runs at once; pause one first",
                app.opts.max_playing
            ),
        ));
    }
    s.playing.store(true, Ordering::SeqCst);
    if !s.worker.swap(true, Ordering::SeqCst) {
        spawn_worker(&app, &s);
    }
    Ok(Json(json!({"playing": true})).into_response())
}

async fn pause(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let s = app.session(&id)?;
    s.playing.store(false, Ordering::SeqCst);
    let s2 = Arc::clone(&s);
    blocking(move || s2.publish(&s2.engine.lock().expect("engine"))).await;
    Ok(Json(json!({"playing": false})).into_response())
}

#[derive(Deserialize)]
struct StepQuery {
    epochs: Option<usize>,
}

async fn step(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<StepQuery>,
) -> ApiResult {
    let s = app.session(&id)?;
    let epochs = q.epochs.unwrap_or(1);
    if !(1..=limits::MAX_STEP_EPOCHS).contains(&epochs) {
        return Err(ApiError::bad(format!(
            "epochs: {epochs} is outside 1..={}",
            limits::MAX_STEP_EPOCHS
        )));
    }
    let points = s.engine.lock().expect("engine").train_len();
    if epochs * points > limits::MAX_STEP_WORK {
        return Err(ApiError::bad(format!(
            "epochs: {epochs} epochs of {points} points is more than one request may run ({} sample passes); ask for at most {}",
            limits::MAX_STEP_WORK,
            limits::MAX_STEP_WORK / points.max(1)
        )));
    }
    let v = blocking(move || {
        let mut e = s.engine.lock().expect("engine");
        e.train_epochs(epochs);
        s.publish(&e);
        serde_json::from_str::<Value>(&s.frames.borrow()).unwrap_or(Value::Null)
    })
    .await;
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
struct UploadQuery {
    problem: Option<String>,
}

async fn upload(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    body: Bytes,
) -> ApiResult {
    let s = app.session(&id)?;
    let problem = q.problem.unwrap_or_else(|| "classification".into());
    let task = match problem.as_str() {
        "classification" => Task::Classification,
        "regression" => Task::Regression,
        other => {
            return Err(ApiError::bad(format!(
                "problem: {other:?} is not one of classification, regression"
            )))
        }
    };
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad("upload: the CSV is not UTF-8 text"))?;
    let data = parse_csv(
        "upload",
        text,
        &CsvOptions {
            task,
            ..CsvOptions::default()
        },
    )
    .map_err(|e| ApiError::bad(e.to_string()))?;
    if data.features() != 2 {
        return Err(ApiError::bad(format!(
            "upload: the playground takes 2 feature columns (x1, x2) and a label; this CSV has {} features",
            data.features()
        )));
    }
    if !(limits::MIN_POINTS..=limits::MAX_UPLOAD_ROWS).contains(&data.len()) {
        return Err(ApiError::bad(format!(
            "upload: {} rows; the playground takes {}..={}",
            data.len(),
            limits::MIN_POINTS,
            limits::MAX_UPLOAD_ROWS
        )));
    }
    if task == Task::Classification && !(2..=limits::MAX_CLASSES).contains(&data.num_classes()) {
        return Err(ApiError::bad(format!(
            "upload: {} classes in the label column; the playground takes 2..={} (for a numeric target choose regression)",
            data.num_classes(),
            limits::MAX_CLASSES
        )));
    }
    *s.upload.lock().expect("upload") = Some(data);
    let mut cfg = s.engine.lock().expect("engine").config().clone();
    cfg.dataset = "upload".into();
    cfg.problem = problem;
    if task == Task::Regression {
        cfg.loss = backprop_train::LossKind::Squared;
    }
    cfg.batch_size = cfg.batch_size.min(limits::MAX_BATCH);
    rebuild(s, cfg).await
}

#[derive(Deserialize)]
struct NeuronQuery {
    layer: usize,
    neuron: usize,
}

async fn neuron(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<NeuronQuery>,
) -> ApiResult {
    let s = app.session(&id)?;
    let v = blocking(move || {
        s.engine
            .lock()
            .expect("engine")
            .neuron_math(q.layer, q.neuron)
    })
    .await
    .map_err(ApiError::bad)?;
    Ok(Json(v).into_response())
}

async fn events(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let s = app.session(&id)?;
    let rx = s.frames.subscribe();
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let data = rx.borrow_and_update().clone();
        Some((
            Ok::<_, Infallible>(Event::default().event("frame").data(&*data)),
            (rx, false),
        ))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn close(State(app): State<Arc<App>>, Path(id): Path<String>) -> ApiResult {
    let s = app
        .sessions
        .lock()
        .expect("sessions")
        .remove(&id)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no session {id:?}")))?;
    s.closed.store(true, Ordering::SeqCst);
    s.playing.store(false, Ordering::SeqCst);
    app.closed_since_release.fetch_add(1, Ordering::SeqCst);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn options_json() -> Json<Value> {
    Json(crate::config::options())
}

async fn limits_json(State(app): State<Arc<App>>) -> Json<Value> {
    use limits::*;
    Json(json!({
        "max_layers": MAX_LAYERS,
        "max_neurons": MAX_NEURONS,
        "min_points": MIN_POINTS,
        "max_points": MAX_POINTS,
        "max_upload_rows": MAX_UPLOAD_ROWS,
        "max_body_bytes": MAX_BODY_BYTES,
        "max_classes": MAX_CLASSES,
        "max_speed": MAX_SPEED,
        "max_step_epochs": MAX_STEP_EPOCHS,
        "max_step_work": MAX_STEP_WORK,
        "max_batch": MAX_BATCH,
        "max_sessions": app.opts.max_sessions,
        "max_playing": app.opts.max_playing,
        "session_ttl_s": app.opts.session_ttl.as_secs(),
        "frame_rate": app.opts.frame_rate,
        "max_connections": app.opts.max_connections,
        "memory_bound_bytes": app.opts.memory_bound(),
    }))
}

async fn digits_status(State(app): State<Arc<App>>) -> Json<Value> {
    app.digits.start();
    Json(app.digits.status())
}

async fn digits_weights(State(app): State<Arc<App>>) -> ApiResult {
    app.digits.start();
    let png = app
        .digits
        .weights_png()
        .map_err(|e| ApiError(StatusCode::SERVICE_UNAVAILABLE, e))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Drawing {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

async fn digits_predict(State(app): State<Arc<App>>, body: Bytes) -> ApiResult {
    let d: Drawing =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("drawing: {e}")))?;
    crate::digits::check_drawing(d.width, d.height, &d.pixels).map_err(ApiError::bad)?;
    app.digits.start();
    let digits = Arc::clone(&app.digits);
    let v = blocking(move || digits.predict(d.width, d.height, &d.pixels))
        .await
        .map_err(|e| {
            if e.contains("not ready") {
                ApiError(StatusCode::SERVICE_UNAVAILABLE, e)
            } else {
                ApiError::bad(e)
            }
        })?;
    Ok(Json(v).into_response())
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such page or endpoint".into())
}

/// Answers one request in-process, without a socket, on a runtime of its own: the status
/// and the body. Tests and the fuzz targets drive the routes this way (not the event
/// stream, whose body never ends).
///
/// # Panics
/// If `method` or `uri` is not valid HTTP, or the runtime cannot start.
pub fn answer(app: &Arc<App>, method: &str, uri: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(axum::body::Body::from(body))
        .expect("a valid method and path");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let res = router(Arc::clone(app))
            .oneshot(req)
            .await
            .expect("the router never fails");
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap_or_default();
        (status, bytes.to_vec())
    })
}

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    let deadline = axum::middleware::from_fn_with_state(Arc::clone(&app), body_deadline);
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", crate::assets::INDEX_HTML) }),
        )
        .route(
            "/digits",
            get(|| async { asset("text/html; charset=utf-8", crate::assets::DIGITS_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", crate::assets::APP_JS) }),
        )
        .route(
            "/digits.js",
            get(|| async { asset("text/javascript; charset=utf-8", crate::assets::DIGITS_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", crate::assets::STYLE_CSS) }),
        )
        .route("/api/limits", get(limits_json))
        .route("/api/options", get(options_json))
        .route("/api/sessions", post(create))
        .route("/api/sessions/{id}", get(show).delete(close))
        .route("/api/sessions/{id}/config", put(configure))
        .route("/api/sessions/{id}/reset", post(reset))
        .route("/api/sessions/{id}/play", post(play))
        .route("/api/sessions/{id}/pause", post(pause))
        .route("/api/sessions/{id}/step", post(step))
        .route("/api/sessions/{id}/upload", post(upload))
        .route("/api/sessions/{id}/neuron", get(neuron))
        .route("/api/sessions/{id}/events", get(events))
        .route("/api/digits/status", get(digits_status))
        .route("/api/digits/weights.png", get(digits_weights))
        .route("/api/digits/predict", post(digits_predict))
        .fallback(not_found)
        .layer(deadline)
        .layer(axum::middleware::map_response(json_refusals))
        .layer(DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
        .with_state(app)
}
