//! Shared by the playground tests: the server started as a user starts it, and a small
//! HTTP/1.1 client (plain std, loopback only) that also reads server-sent events.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `backprop playground --port 0 ARGS...`, killed on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Server {
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_backprop"))
            .args(["playground", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start backprop playground");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the URL line");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Server { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a body sent with `Transfer-Encoding: chunked`, chunk by chunk.
struct Chunked<R: BufRead> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line.trim().is_empty() {
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            self.left = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got;
        Ok(got)
    }
}

/// Sends a request; returns the status, the headers (lower-case names) and a reader of the
/// body.
fn send(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> (u16, Vec<(String, String)>, Box<dyn BufRead>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    // A server may answer before reading the whole body (an oversized upload's 413) and
    // close; writing the rest then fails, and the answer is still there to read.
    if let Err(e) = s.write_all(body) {
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ),
            "sending the body: {e}"
        );
    }
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body: Box<dyn BufRead> = if chunked {
        Box::new(BufReader::new(Chunked {
            inner: r,
            left: 0,
            done: false,
        }))
    } else {
        Box::new(r)
    };
    (code, headers, body)
}

/// A whole request: the status and the body as text.
pub fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let ct = if body.starts_with('{') {
        "application/json"
    } else {
        "text/csv"
    };
    request_bytes(addr, method, path, body.as_bytes(), ct)
}

pub fn request_bytes(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    content_type: &str,
) -> (u16, String) {
    let (code, _, mut r) = send(addr, method, path, body, content_type);
    let mut text = String::new();
    let _ = r.read_to_string(&mut text);
    (code, text)
}

/// A request that must succeed with JSON.
pub fn json(addr: &str, method: &str, path: &str, body: &str) -> serde_json::Value {
    let (code, text) = request(addr, method, path, body);
    assert!((200..300).contains(&code), "{method} {path}: {code} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

/// Reads server-sent events from `path` for `duration` (or until `max` arrive); returns
/// each event's data with its arrival time.
pub fn events(addr: &str, path: &str, duration: Duration, max: usize) -> Vec<(Instant, String)> {
    let (code, headers, mut r) = send(addr, "GET", path, b"", "text/plain");
    assert_eq!(code, 200, "GET {path}");
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")),
        "{headers:?}"
    );
    let start = Instant::now();
    let mut out = Vec::new();
    let mut data = String::new();
    let mut line = String::new();
    while start.elapsed() < duration && out.len() < max {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if let Some(d) = l.strip_prefix("data:") {
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        } else if l.is_empty() && !data.is_empty() {
            out.push((Instant::now(), std::mem::take(&mut data)));
        }
    }
    out
}
