//! The playground in a real headless browser (Debian's `chromium`, driven over the Chrome
//! DevTools Protocol): press play and watch the epoch counter and the test loss, change an
//! activation, open a neuron's math, draw a digit and read the prediction. Screenshots go to
//! `target/tmp/playground-screenshots/`.
//!
//! Needs `chromium` on the PATH (or `BACKPROP_CHROMIUM=/path/to/chrome`); `.ci/run`
//! installs Debian's package when it is missing. Without Chromium the test prints one line
//! saying so and passes, unless `BACKPROP_REQUIRE_BROWSER` is set (as `.ci/run` does): then a
//! missing browser is a failure.

mod support;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::Server;
use tungstenite::{stream::MaybeTlsStream, Message, WebSocket};

/// The browser to drive: `BACKPROP_CHROMIUM` if set (taken as given, so a wrong path fails
/// loudly at launch), else the first of Debian's usual paths that exists.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BACKPROP_CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Whether a missing browser is a failure rather than a skip (CI sets
/// `BACKPROP_REQUIRE_BROWSER=1`; empty or `0` count as unset).
fn browser_required() -> bool {
    std::env::var("BACKPROP_REQUIRE_BROWSER").is_ok_and(|v| !v.is_empty() && v != "0")
}

struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
    session: String,
    _profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    fn launch(chromium: &Path) -> Browser {
        let profile = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chromium-profile");
        let _ = std::fs::remove_dir_all(&profile);
        let mut child = Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let mut url = None;
        for line in stderr.lines() {
            let line = line.unwrap_or_default();
            if let Some(u) = line.split("DevTools listening on ").nth(1) {
                url = Some(u.trim().to_string());
                break;
            }
        }
        let url = url.expect("chromium printed no DevTools address");
        let (ws, _) = tungstenite::connect(url.as_str()).expect("connect to DevTools");
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        let mut b = Browser {
            child,
            ws,
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let tid = target["targetId"].as_str().unwrap().to_string();
        let att = b.call(
            "Target.attachToTarget",
            json!({"targetId": tid, "flatten": true}),
        );
        b.session = att["sessionId"].as_str().unwrap().to_string();
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .expect("send to DevTools");
        loop {
            let m = self.ws.read().expect("read from DevTools");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"].as_u64() == Some(id) {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    fn wait_for(&mut self, what: &str, expr: &str, timeout: Duration) -> Value {
        let start = Instant::now();
        loop {
            let v = self.eval(expr);
            if !(v.is_null() || v == json!(false)) {
                return v;
            }
            assert!(
                start.elapsed() < timeout,
                "waited {timeout:?} for {what} ({expr})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(
            "the page to load",
            "document.readyState === 'complete'",
            Duration::from_secs(30),
        );
    }

    fn mouse(&mut self, kind: &str, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": if kind == "mouseReleased" { 0 } else { 1 }, "clickCount": 1}),
        );
    }

    fn click(&mut self, selector: &str) {
        let r = self.eval(&format!(
            "(() => {{ const r = document.querySelector({selector:?}).getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
        ));
        let (x, y) = (r[0].as_f64().unwrap(), r[1].as_f64().unwrap());
        self.mouse("mouseMoved", x, y);
        self.mouse("mousePressed", x, y);
        self.mouse("mouseReleased", x, y);
    }

    /// Draws a polyline on the element, in its own pixel coordinates (0..width).
    fn draw(&mut self, selector: &str, points: &[(f64, f64)]) {
        let r = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); const r = e.getBoundingClientRect(); return [r.left, r.top, r.width / e.width]; }})()"
        ));
        let (x0, y0, s) = (
            r[0].as_f64().unwrap(),
            r[1].as_f64().unwrap(),
            r[2].as_f64().unwrap(),
        );
        let at = |p: (f64, f64)| (x0 + p.0 * s, y0 + p.1 * s);
        let (x, y) = at(points[0]);
        self.mouse("mouseMoved", x, y);
        self.mouse("mousePressed", x, y);
        for w in points.windows(2) {
            for k in 1..=8 {
                let t = f64::from(k) / 8.0;
                let (x, y) = at((
                    w[0].0 + (w[1].0 - w[0].0) * t,
                    w[0].1 + (w[1].1 - w[0].1) * t,
                ));
                self.mouse("mouseMoved", x, y);
            }
        }
        let (x, y) = at(*points.last().unwrap());
        self.mouse("mouseReleased", x, y);
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let bytes = base64_decode(r["data"].as_str().unwrap());
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        println!("screenshot: {}", path.display());
        path
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            _ => 63,
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}

#[test]
fn the_playground_and_the_digits_page_work_in_a_browser() {
    let Some(chromium) = chromium() else {
        const NEEDS: &str =
            "it needs Chromium — apt-get install chromium, or set BACKPROP_CHROMIUM";
        if browser_required() {
            panic!("BACKPROP_REQUIRE_BROWSER is set and the browser test cannot run: {NEEDS}");
        }
        // straight to the process's stderr: the test harness captures eprintln! of a
        // passing test, and this line must be seen
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipping the browser test: {NEEDS}");
        return;
    };
    let model = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("playground-digits.safetensors");
    let _ = std::fs::remove_file(&model);
    // the digits model does not exist yet: the server trains it on first use (1 epoch here)
    let server = Server::start(&[
        "--digits-model",
        model.to_str().unwrap(),
        "--digits-epochs",
        "1",
    ]);
    let mut b = Browser::launch(&chromium);
    let long = Duration::from_secs(60);

    // --- the playground: play, and the epoch counter advances while the test loss falls
    b.goto(&server.url("/#dataset=circle&noise=0.1&lr=0.03"));
    b.wait_for(
        "the first frame",
        "window.playground && window.playground.frame !== null",
        long,
    );
    let loss0 = b
        .eval("Number(document.getElementById('test-loss').dataset.value)")
        .as_f64()
        .unwrap();
    assert_eq!(
        b.eval("document.getElementById('epoch').dataset.epoch"),
        json!("0")
    );
    b.click("#play");
    b.wait_for(
        "the epoch counter to pass 30 and the test loss to fall",
        &format!("Number(document.getElementById('epoch').dataset.epoch) > 30 && Number(document.getElementById('test-loss').dataset.value) < {loss0} * 0.8"),
        long,
    );
    let fps = b.wait_for(
        "a frame rate",
        "Number(document.getElementById('fps').textContent) || null",
        long,
    );
    println!("page frame rate while playing the default network: {fps} frames/s");
    b.screenshot("playground.png");

    // --- change an activation: the server rebuilds the network, which goes on training
    b.eval("(() => { const s = document.querySelector('.act-select[data-layer=\"0\"]'); s.value = 'relu'; s.dispatchEvent(new Event('change')); })()");
    b.wait_for(
        "the server to confirm ReLU",
        "window.playground.cfg.layers[0].activation === 'relu'",
        long,
    );
    assert!(b
        .eval("location.hash")
        .as_str()
        .unwrap()
        .contains("layers=4%3Arelu"));
    b.wait_for(
        "training to continue with ReLU",
        "Number(document.getElementById('epoch').dataset.epoch) > 10",
        long,
    );

    // --- the math of one neuron
    b.click(".node.neuron[data-layer=\"1\"][data-neuron=\"0\"]");
    b.wait_for(
        "the math panel",
        "!document.getElementById('math').hidden && document.getElementById('math-delta') !== null",
        long,
    );
    let text = b
        .eval("document.getElementById('math-body').innerText")
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("BP2") && text.contains("∂C/∂b"), "{text}");
    b.click("#play"); // pause
    b.wait_for("pause", "window.playground.playing === false", long);
    b.screenshot("playground-math.png");

    // --- a reload from the URL restores the set-up exactly
    let hash = b.eval("location.hash").as_str().unwrap().to_string();
    b.goto(&server.url(&format!("/{hash}")));
    b.wait_for(
        "the reloaded page",
        "window.playground && window.playground.frame !== null",
        long,
    );
    assert_eq!(b.eval("location.hash").as_str().unwrap(), hash);

    // --- digits: wait for the first-use training, draw a 1, read the prediction
    b.goto(&server.url("/digits"));
    b.wait_for(
        "the digits model (trained on first use)",
        "document.getElementById('status').dataset.state === 'ready'",
        Duration::from_secs(600),
    );
    b.draw("#pad", &[(140.0, 40.0), (140.0, 240.0)]);
    let digit = b.wait_for(
        "a prediction",
        "document.getElementById('prediction').dataset.digit || null",
        long,
    );
    let probs =
        b.eval("[...document.querySelectorAll('#probs .bar')].map(e => Number(e.dataset.p))");
    let p: Vec<f64> = probs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(p.len(), 10);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-3, "{p:?}");
    assert_eq!(digit, json!("1"), "a vertical stroke reads as 1: {p:?}");
    b.wait_for("the weights image", "document.getElementById('weights').complete && document.getElementById('weights').naturalWidth > 0", long);
    b.screenshot("digits-1.png");

    // a zero, drawn as a loop
    b.click("#clear");
    let ring: Vec<(f64, f64)> = (0..=24)
        .map(|k| {
            let a = f64::from(k) / 24.0 * std::f64::consts::TAU;
            (140.0 + 60.0 * a.sin(), 140.0 - 85.0 * a.cos())
        })
        .collect();
    b.draw("#pad", &ring);
    let zero = b.wait_for(
        "a prediction for the loop",
        "document.getElementById('prediction').dataset.digit || null",
        long,
    );
    b.screenshot("digits-0.png");
    assert_eq!(zero, json!("0"), "a loop reads as 0");
    assert!(model.exists(), "the first-use model was saved");
}
