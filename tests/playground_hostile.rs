//! The playground against hostile and careless clients (the fast versions of what
//! `scripts/playground-load.py` does at scale): headers trickled a byte at a time, idle
//! connections, bodies promised and never sent, more connections than the cap, and a bad
//! config sent to a full server.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{json, request, Server};

/// Reads until the server closes the connection (or `limit` passes); returns what it sent
/// and when it closed.
fn until_closed(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let t0 = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), t0.elapsed())
}

#[test]
fn slow_and_idle_connections_are_closed_after_the_request_timeout() {
    let s = Server::start(&["--request-timeout", "1"]);
    // a client that trickles its headers a byte every 100 ms never gets an answer
    let mut slow = TcpStream::connect(&s.addr).unwrap();
    let t0 = Instant::now();
    let req = format!(
        "GET /api/limits HTTP/1.1\r\nHost: {}\r\nX-Slow: {}\r\n\r\n",
        s.addr,
        "a".repeat(60)
    );
    let mut closed = false;
    for b in req.bytes() {
        if slow.write_all(&[b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if t0.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let (answer, _) = until_closed(&mut slow, Duration::from_secs(3));
    assert!(
        closed || !answer.contains("200 OK"),
        "a trickled request was served: {answer:?}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "held for {:?}",
        t0.elapsed()
    );
    // an idle connection is closed
    let mut idle = TcpStream::connect(&s.addr).unwrap();
    let (_, held) = until_closed(&mut idle, Duration::from_secs(10));
    assert!(
        held < Duration::from_secs(4),
        "an idle connection was held {held:?}"
    );
    // a body promised and never sent is refused with a 408
    let mut promise = TcpStream::connect(&s.addr).unwrap();
    write!(
        promise,
        "POST /api/sessions HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n{{",
        s.addr
    )
    .unwrap();
    let (answer, held) = until_closed(&mut promise, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(answer.contains("\"error\""), "{answer:?}");
    assert!(held < Duration::from_secs(4), "held {held:?}");
    // and the server still answers
    assert_eq!(request(&s.addr, "GET", "/api/limits", "").0, 200);
}

#[test]
fn connections_over_the_cap_get_a_503_and_the_cap_frees_again() {
    let s = Server::start(&["--max-connections", "2", "--request-timeout", "30"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let (code, text) = request(&s.addr, "GET", "/api/limits", "");
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("connections"), "{text}");
    drop(held);
    let t0 = Instant::now();
    loop {
        let (code, _) = request(&s.addr, "GET", "/api/limits", "");
        if code == 200 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the cap did not free"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_bad_config_is_a_400_even_when_the_server_is_full() {
    let s = Server::start(&["--max-sessions", "1"]);
    json(&s.addr, "POST", "/api/sessions", "{\"points\": 50}");
    let (code, text) = request(&s.addr, "POST", "/api/sessions", "{\"points\": 3}");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("points"), "{text}");
    let (code, text) = request(&s.addr, "POST", "/api/sessions", "{\"points\": 50}");
    assert_eq!(code, 429, "{text}");
}

#[test]
fn the_flags_that_bound_connections_are_checked() {
    for (flag, value) in [("--max-connections", "0"), ("--request-timeout", "0")] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_backprop"))
            .args(["playground", "--port", "0", flag, value])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !o.status.success() && err.contains(flag),
            "{flag} {value}: {err}"
        );
    }
}
