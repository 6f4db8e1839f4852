//! `backprop playground` driven over HTTP, as the page drives it: sessions, training to a
//! target accuracy, the event stream, the math of a neuron, uploads, and every kind of bad
//! request.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{events, json, request, request_bytes, Server};

fn create(s: &Server, cfg: &Value) -> (String, Value) {
    let v = json(&s.addr, "POST", "/api/sessions", &cfg.to_string());
    (v["id"].as_str().expect("an id").to_string(), v)
}

#[test]
fn trains_the_spiral_to_90_percent_and_streams_frames() {
    let s = Server::start(&[]);
    // the pages are served from the binary
    let (code, page) = request(&s.addr, "GET", "/", "");
    assert_eq!(code, 200);
    assert!(page.contains("backprop playground") && page.contains("/app.js"));
    for asset in ["/app.js", "/digits.js", "/style.css", "/digits"] {
        assert_eq!(request(&s.addr, "GET", asset, "").0, 200, "{asset}");
    }

    let cfg = json!({
        "dataset": "spiral", "noise": 0.0, "points": 500, "train_fraction": 0.5,
        "features": ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"],
        "layers": [{"neurons": 8, "activation": "tanh"}, {"neurons": 8, "activation": "tanh"}],
        "optimizer": "adam", "learning_rate": 0.01, "batch_size": 10, "seed": 3
    });
    let (id, snap) = create(&s, &cfg);
    assert_eq!(snap["setup"]["train"].as_array().unwrap().len(), 250);
    assert_eq!(snap["frame"]["epoch"], 0);
    let start_loss = snap["frame"]["train_loss"].as_f64().unwrap();
    let mut acc = 0.0;
    let mut epochs = 0;
    while acc < 0.9 && epochs < 1000 {
        let f = json(
            &s.addr,
            "POST",
            &format!("/api/sessions/{id}/step?epochs=100"),
            "",
        );
        epochs = f["epoch"].as_u64().unwrap();
        acc = f["train_accuracy"].as_f64().unwrap();
    }
    println!(
        "spiral: {:.1}% training accuracy after {epochs} epochs",
        100.0 * acc
    );
    assert!(acc >= 0.9, "spiral: {acc} after {epochs} epochs");
    let f = json(&s.addr, "GET", &format!("/api/sessions/{id}"), "");
    assert!(f["frame"]["train_loss"].as_f64().unwrap() < start_loss / 2.0);
    assert!(!f["history"].as_array().unwrap().is_empty());

    // the math of a hidden neuron: the engine's δ agrees with BP2
    let m = json(
        &s.addr,
        "GET",
        &format!("/api/sessions/{id}/neuron?layer=2&neuron=3"),
        "",
    );
    let (d, bp2) = (
        m["delta"].as_f64().unwrap(),
        m["delta_bp2"].as_f64().unwrap(),
    );
    assert!((d - bp2).abs() <= 1e-5 * (1.0 + d.abs()), "{d} vs {bp2}");
    assert_eq!(m["inputs"].as_array().unwrap().len(), 8);

    // play streams frames with a rising epoch; pause stops it
    let (id2, _) = create(&s, &json!({}));
    json(&s.addr, "POST", &format!("/api/sessions/{id2}/play"), "");
    let got = events(
        &s.addr,
        &format!("/api/sessions/{id2}/events"),
        Duration::from_secs(3),
        1000,
    );
    json(&s.addr, "POST", &format!("/api/sessions/{id2}/pause"), "");
    let epochs: Vec<u64> = got
        .iter()
        .map(|(_, d)| {
            serde_json::from_str::<Value>(d).unwrap()["epoch"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(epochs.len() >= 3, "{} frames", epochs.len());
    assert!(epochs.windows(2).all(|w| w[0] <= w[1]) && epochs.last() > epochs.first());
    if got.len() > 2 {
        let span = got.last().unwrap().0 - got[1].0;
        println!(
            "default network: {:.1} frames/s over {:.1} s",
            (got.len() - 2) as f64 / span.as_secs_f64(),
            span.as_secs_f64()
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let a = json(&s.addr, "GET", &format!("/api/sessions/{id2}"), "")["frame"]["epoch"].clone();
    std::thread::sleep(Duration::from_millis(300));
    let b = json(&s.addr, "GET", &format!("/api/sessions/{id2}"), "")["frame"]["epoch"].clone();
    assert_eq!(a, b, "paused sessions do not train");

    // reset, a new set-up, multiclass and regression
    let r = json(&s.addr, "POST", &format!("/api/sessions/{id}/reset"), "");
    assert_eq!(r["frame"]["epoch"], 0);
    let r = json(
        &s.addr,
        "PUT",
        &format!("/api/sessions/{id}/config"),
        &json!({"dataset": "blobs", "classes": 4, "layers": [{"neurons": 5, "activation": "relu"}], "dropout": 0.2}).to_string(),
    );
    assert_eq!(r["setup"]["classes"], 4);
    assert_eq!(r["frame"]["output_class"].as_array().unwrap().len(), 2500);
    let r = json(
        &s.addr,
        "PUT",
        &format!("/api/sessions/{id}/config"),
        &json!({"dataset": "multigauss", "problem": "regression", "loss": "squared", "optimizer": "sgd", "momentum": 0.9, "regularization": "l2", "regularization_rate": 0.001}).to_string(),
    );
    assert!(r["setup"]["classes"].is_null());
    json(
        &s.addr,
        "POST",
        &format!("/api/sessions/{id}/step?epochs=5"),
        "",
    );

    // an uploaded CSV with three classes
    let mut csv = String::from("x1,x2,label\n");
    for i in 0..90 {
        let (c, t) = (i % 3, i as f64 * 0.1);
        csv.push_str(&format!(
            "{},{},{}\n",
            c as f64 + t.sin() * 0.2,
            t.cos() * 0.2,
            ["a", "b", "c"][c]
        ));
    }
    let r = json(&s.addr, "POST", &format!("/api/sessions/{id}/upload"), &csv);
    assert_eq!(r["setup"]["config"]["dataset"], "upload");
    assert_eq!(r["setup"]["classes"], 3);
    let f = json(
        &s.addr,
        "POST",
        &format!("/api/sessions/{id}/step?epochs=50"),
        "",
    );
    assert!(f["train_accuracy"].as_f64().unwrap() > 0.5);

    assert_eq!(
        request(&s.addr, "DELETE", &format!("/api/sessions/{id}"), "").0,
        204
    );
    assert_eq!(
        request(&s.addr, "GET", &format!("/api/sessions/{id}"), "").0,
        404
    );
}

#[test]
fn bad_requests_are_refused_with_a_message() {
    let s = Server::start(&["--max-sessions", "3", "--session-ttl", "1"]);
    let bad = |method: &str, path: &str, body: &str, want: u16, says: &str| {
        let (code, text) = request(&s.addr, method, path, body);
        assert_eq!(code, want, "{method} {path} {body:.80}: {text}");
        assert!(
            text.contains(says),
            "{method} {path}: {text:?} should mention {says:?}"
        );
    };
    let post = "/api/sessions";
    bad("POST", post, r#"{"dataset": "moons"}"#, 400, "dataset");
    bad("POST", post, r#"{"points": 100000000}"#, 400, "points");
    bad(
        "POST",
        post,
        r#"{"layers": [{"neurons": 100000, "activation": "tanh"}]}"#,
        400,
        "neurons",
    );
    let deep = json!({"layers": vec![json!({"neurons": 2, "activation": "tanh"}); 50]});
    bad("POST", post, &deep.to_string(), 400, "layers");
    bad(
        "POST",
        post,
        r#"{"layers": [{"neurons": 2, "activation": "swoosh"}]}"#,
        400,
        "activation",
    );
    bad(
        "POST",
        post,
        r#"{"learning_rate": -1}"#,
        400,
        "learning_rate",
    );
    bad("POST", post, r#"{"batch_size": 0}"#, 400, "batch_size");
    bad("POST", post, r#"{"features": []}"#, 400, "features");
    bad("POST", post, r#"{"speed": 1000}"#, 400, "speed");
    bad("POST", post, r#"{"dataset": "plane"}"#, 400, "problem");
    bad("POST", post, r#"{"unknown": 1}"#, 400, "unknown field");
    bad("POST", post, "{not json", 400, "config");
    bad("GET", "/api/sessions/nope", "", 404, "no session");
    bad("GET", "/nowhere", "", 404, "no such page");

    let (id, _) = create(&s, &json!({}));
    let base = format!("/api/sessions/{id}");
    bad("POST", &format!("{base}/step?epochs=0"), "", 400, "epochs");
    bad(
        "POST",
        &format!("{base}/step?epochs=99999999"),
        "",
        400,
        "epochs",
    );
    let big = json(
        &s.addr,
        "PUT",
        &format!("{base}/config"),
        r#"{"points": 2000}"#,
    );
    assert_eq!(big["setup"]["train"].as_array().unwrap().len(), 1000);
    bad(
        "POST",
        &format!("{base}/step?epochs=2000"),
        "",
        400,
        "at most 1000",
    );
    bad(
        "GET",
        &format!("{base}/neuron?layer=9&neuron=0"),
        "",
        400,
        "layer",
    );
    bad(
        "GET",
        &format!("{base}/neuron?layer=1&neuron=99"),
        "",
        400,
        "neuron",
    );
    bad(
        "PUT",
        &format!("{base}/config"),
        r#"{"noise": 7}"#,
        400,
        "noise",
    );
    bad(
        "POST",
        &format!("{base}/upload"),
        "x1,x2,x3,label\n1,2,3,a\n4,5,6,b\n",
        400,
        "2 feature columns",
    );
    bad(
        "POST",
        &format!("{base}/upload"),
        "x1,x2,label\n1,oops,a\n4,5,b\n",
        400,
        "not a number",
    );
    bad(
        "POST",
        &format!("{base}/upload"),
        "x1,x2,label\n1,2,a\n4,5,b\n",
        400,
        "rows",
    );
    bad(
        "POST",
        &format!("{base}/upload?problem=poetry"),
        "x1,x2,label\n",
        400,
        "problem",
    );
    let many: String = (0..10_000)
        .map(|i| format!("{i},{i},{}\n", i % 2))
        .collect();
    bad("POST", &format!("{base}/upload"), &many, 400, "rows");
    // more than the body limit (1 MiB) is refused before it is read into memory
    let huge = vec![b'1'; 2 << 20];
    let (code, body) = request_bytes(
        &s.addr,
        "POST",
        &format!("{base}/upload"),
        &huge,
        "text/csv",
    );
    assert_eq!(code, 413);
    // as JSON like every other refusal, saying the limit
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON refusal");
    assert!(
        v["error"].as_str().unwrap().contains("1048576 bytes"),
        "{v}"
    );
    bad(
        "POST",
        "/api/digits/predict",
        r#"{"width": 100000, "height": 1, "pixels": []}"#,
        400,
        "",
    );

    // the session limit
    create(&s, &json!({}));
    create(&s, &json!({}));
    bad("POST", post, "{}", 429, "sessions");

    // idle sessions are closed (time to live 1 s here)
    std::thread::sleep(Duration::from_millis(2600));
    bad("GET", &base, "", 404, "no session");
    create(&s, &json!({}));
}
