//! Every bad input a user can hand the `backprop` binary gets one `error:` line naming the
//! flag or file and the problem, a non-zero exit, and never a panic, an internal error or an
//! allocation abort. The binary runs under an address-space limit, so an attempt to allocate
//! what a bad size asks for fails this test instead of passing by luck on a large machine.

use std::path::PathBuf;
use std::process::{Command, Output};

/// The address-space limit of each run: far more than any refused case needs to say no,
/// far less than the sizes the cases ask for.
const MEMORY_LIMIT: u64 = 6 << 30;

/// The binary, run in `cwd`: a case that wrongly succeeded would write its run under runs/
/// of the working directory, so that is a temporary one (removed with it), never the
/// repository.
fn bin(cwd: &Dir) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backprop"));
    c.current_dir(&cwd.0);
    c.env("RAYON_NUM_THREADS", "2");
    limit_memory(&mut c);
    c
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_memory(c: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe and touches only the child about to exec.
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY_LIMIT,
                rlim_max: MEMORY_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_memory(_: &mut Command) {}

/// A path inside the repository.
fn repo(p: &str) -> String {
    format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cwd = Dir::new(&format!("cwd-{n}"));
    bin(&cwd).args(args).output().expect("the binary runs")
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("backprop-bad-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A PNG whose header promises `w`×`h` grey pixels and holds none.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit greyscale
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc(&ihdr).to_be_bytes());
    let mut idat = b"IDAT".to_vec();
    idat.extend([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    png.extend((idat.len() as u32 - 4).to_be_bytes());
    png.extend(&idat);
    png.extend(crc(&idat).to_be_bytes());
    png.extend(0u32.to_be_bytes());
    png.extend(b"IEND");
    png.extend(crc(b"IEND").to_be_bytes());
    png
}

/// Checks one refused run; returns a description of what is wrong with it, if anything.
fn check(args: &[String], needles: &[&str]) -> Option<String> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = run(&a);
    let err = String::from_utf8_lossy(&o.stderr);
    let errors = err.lines().filter(|l| l.starts_with("error:")).count();
    let bad = if o.status.success() {
        "succeeded".to_string()
    } else if o.status.code().is_none() {
        format!("was killed ({:?})", o.status)
    } else if err.contains("panicked")
        || err.contains("internal error")
        || err.contains("RUST_BACKTRACE")
        || err.contains("memory allocation")
    {
        "panicked or aborted".to_string()
    } else if errors != 1 {
        format!("printed {errors} error: lines")
    } else if let Some(n) = needles.iter().find(|n| !err.contains(*n)) {
        format!("lacks {n:?}")
    } else {
        return None;
    };
    Some(format!("{a:?} {bad}:\n{err}"))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A small trained MNIST model for the cases that need one.
fn trained_model(d: &Dir) -> String {
    let out = d.path("mnist");
    let o = run(&[
        "train",
        "--limit",
        "300",
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--validation",
        "0",
        "--out",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    format!("{out}/model.safetensors")
}

#[test]
fn every_bad_input_gets_one_clear_error_and_no_abort() {
    let d = Dir::new("table");
    let model = trained_model(&d);
    let huge_out = d.file(
        "huge.json",
        br#"{"layers": [{"type": "linear", "out": 1000000000000}]}"#,
    );
    let big = d.file(
        "big.json",
        br#"{"layers": [{"type": "linear", "out": 3000000000}, {"type": "linear", "out": 2}]}"#,
    );
    let wraps = d.file(
        "wraps.json",
        br#"{"layers": [{"type": "reshape", "shape": [4294967296, 4294967296, 2]}, {"type": "flatten"}, {"type": "linear", "out": 2}]}"#,
    );
    let unknown_key = d.file(
        "key.json",
        br#"{"layers": [{"type": "linear", "out": 2}], "lr": 1}"#,
    );
    let empty = d.file("empty.json", br#"{"layers": []}"#);
    let not_json = d.file("broken.json", b"{\"layers\": [");
    let not_toml = d.file("broken.toml", b"[[layers]\ntype = ");
    let garbage_model = d.file("garbage.safetensors", b"not a checkpoint at all");
    let text_png = d.file("text.png", b"hello");
    let giant_png = d.file("giant.png", &png_header(100_000, 100_000));
    let wrong_size = d.file(
        "small.pgm",
        b"P5 3 3 255\n\x00\x01\x02\x03\x04\x05\x06\x07\x08",
    );
    let wrapping_pgm = d.file("wrap.pgm", b"P5 4294967296 4294967296 255\n\x00");
    let bad_csv = d.file(
        "bad.csv",
        b"x,y,label\n1,2,a\n3,oops,b\n5,6,a\n7,8,b\n9,1,a\n2,3,b\n4,5,a\n",
    );
    let short_rows = d.file("rows.csv", b"1,2\n3\n");
    let a_file = d.file("a-file", b"");
    let missing = d.path("missing.json");
    let worked = &repo("examples/specs/worked_example.toml");

    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        // graph: the expression language and the --set list name the flag and where
        (
            s(&["graph", "--expr", "a + * b", "--set", "a=1,b=2"]),
            vec!["--expr", "column 5", "'*'"],
        ),
        (
            s(&["graph", "--expr", "foo(x)", "--set", "x=1"]),
            vec!["--expr", "unknown function 'foo'"],
        ),
        (
            s(&["graph", "--expr", "a*b", "--set", "a=1,b"]),
            vec!["--set", "item 2"],
        ),
        (
            s(&["graph", "--expr", "a*b", "--set", "a=1"]),
            vec!["--set", "b has no value", "column 3"],
        ),
        (
            s(&["graph", "--expr", "log(x)", "--set", "x=-1"]),
            vec!["--set", "log gives NaN"],
        ),
        (
            s(&[
                "graph", "--model", worked, "--input", "0.35,0.9", "--target", "0.5", "--expand",
                "fc9",
            ]),
            vec!["--expand", "fc9"],
        ),
        (s(&["graph"]), vec!["--expr"]),
        (
            s(&[
                "lr-find",
                "--dataset",
                "xor",
                "--start-lr",
                "1",
                "--end-lr",
                "0.1",
            ]),
            vec!["--start-lr", "increasing"],
        ),
        (
            s(&["lr-find", "--dataset", "xor", "--sweep", "0,0.1"]),
            vec!["--sweep", "positive"],
        ),
        // numbers reach their range checks (negative, fractional, zero)
        (
            s(&["train", "--dataset", "xor", "--epochs", "-1"]),
            vec!["--epochs", "negative"],
        ),
        (
            s(&["train", "--dataset", "xor", "--epochs", "0"]),
            vec!["--epochs"],
        ),
        (
            s(&["train", "--dataset", "xor", "--epochs", "1.5"]),
            vec!["--epochs", "whole number"],
        ),
        (
            s(&["train", "--dataset", "xor", "--warmup", "-5"]),
            vec!["--warmup", "negative"],
        ),
        (
            s(&["train", "--dataset", "circle", "--noise", "-1"]),
            vec!["--noise"],
        ),
        (
            s(&["train", "--dataset", "xor", "--seed", "-1"]),
            vec!["--seed", "negative"],
        ),
        (
            s(&["train", "--dataset", "xor", "--batch-size", "0"]),
            vec!["--batch-size", "at least 1"],
        ),
        (
            s(&["train", "--dataset", "xor", "--batch-size", "-64"]),
            vec!["--batch-size"],
        ),
        (
            s(&["train", "--dataset", "xor", "--lr", "-0.1"]),
            vec!["--lr", "positive"],
        ),
        (s(&["train", "--dataset", "xor", "--lr", "0"]), vec!["--lr"]),
        (
            s(&["train", "--dataset", "xor", "--lr", "NaN"]),
            vec!["--lr"],
        ),
        (
            s(&["train", "--dataset", "xor", "--lr", "inf"]),
            vec!["--lr"],
        ),
        (
            s(&["train", "--dataset", "xor", "--momentum", "1.5"]),
            vec!["--momentum"],
        ),
        (
            s(&["train", "--dataset", "xor", "--momentum", "-0.5"]),
            vec!["--momentum"],
        ),
        (
            s(&["train", "--dataset", "xor", "--clip", "-1"]),
            vec!["--clip"],
        ),
        (
            s(&["train", "--dataset", "xor", "--l1", "-1"]),
            vec!["--l1"],
        ),
        (
            s(&["train", "--dataset", "xor", "--l2", "-0.5"]),
            vec!["--l2"],
        ),
        (
            s(&[
                "train",
                "--dataset",
                "xor",
                "--optimizer",
                "adamw",
                "--weight-decay",
                "-1",
            ]),
            vec!["--weight-decay"],
        ),
        (
            s(&["train", "--dataset", "xor", "--dropout", "1"]),
            vec!["--dropout"],
        ),
        (
            s(&["train", "--dataset", "xor", "--hidden", "0"]),
            vec!["--hidden"],
        ),
        (
            s(&["train", "--dataset", "xor", "--hidden", "8,abc"]),
            vec!["--hidden"],
        ),
        (
            s(&["train", "--dataset", "xor", "--early-stopping", "0"]),
            vec!["--early-stopping"],
        ),
        (
            s(&["train", "--dataset", "xor", "--lr-schedule", "step:0:0.5"]),
            vec!["--lr-schedule"],
        ),
        (
            s(&["train", "--dataset", "xor", "--lr-schedule", "plateau:3:2"]),
            vec!["--lr-schedule"],
        ),
        (
            s(&["train", "--dataset", "xor", "--lr-schedule", "wiggly"]),
            vec!["--lr-schedule"],
        ),
        (
            s(&["train", "--dataset", "xor", "--validation", "100000"]),
            vec!["--validation"],
        ),
        (
            s(&["train", "--dataset", "xor", "--limit", "0"]),
            vec!["--limit"],
        ),
        (
            s(&["train", "--dataset", "xor", "--samples", "0"]),
            vec!["--samples"],
        ),
        (
            s(&["train", "--dataset", "xor", "--threads", "0"]),
            vec!["--threads"],
        ),
        (
            s(&["train", "--augment", "100", "--limit", "100"]),
            vec!["--augment", "smaller than"],
        ),
        // names from the one lists
        (
            s(&["train", "--dataset", "moons"]),
            vec!["--dataset moons", "unknown dataset"],
        ),
        (
            s(&["train", "--dataset", "xor", "--optimizer", "lbfgs"]),
            vec!["--optimizer", "lbfgs"],
        ),
        (
            s(&["train", "--dataset", "xor", "--loss", "wobble"]),
            vec!["--loss", "wobble"],
        ),
        (
            s(&["train", "--dataset", "xor", "--activation", "swoosh"]),
            vec!["--activation", "swoosh"],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", "resnet50"]),
            vec!["--model", "resnet50"],
        ),
        (
            s(&["train", "--dataset", "xor", "--encoding", "foo"]),
            vec!["--encoding", "foo"],
        ),
        (
            s(&["train", "--dataset", "xor", "--task", "sideways"]),
            vec!["--task"],
        ),
        (
            s(&["train", "--dataset", "xor", "--task", "regression"]),
            vec!["--task", "applies to CSV"],
        ),
        (
            s(&["train", "--dataset", "xor", "--label-column", "y"]),
            vec!["--label-column", "applies to CSV"],
        ),
        (
            s(&["train", "--dataset", "spiral", "--encoding", "binary"]),
            vec!["--encoding", "applies to images"],
        ),
        // files
        (
            s(&["train", "--dataset", &d.path("missing.csv")]),
            vec!["missing.csv"],
        ),
        (
            s(&["train", "--dataset", &bad_csv]),
            vec!["bad.csv", "line 3", "oops"],
        ),
        (
            s(&["train", "--data-dir", "/nonexistent/backprop-data"]),
            vec!["--data-dir", "no such directory"],
        ),
        (
            s(&[
                "train",
                "--dataset",
                "xor",
                "--out",
                &format!("{a_file}/sub"),
            ]),
            vec!["--out"],
        ),
        (
            s(&[
                "train",
                "--dataset",
                "xor",
                "--resume",
                "--out",
                &d.path("none"),
            ]),
            vec!["--resume", "no saved run"],
        ),
        (
            s(&["train", "--dataset", "xor", "--resume", "--overwrite"]),
            vec!["--overwrite"],
        ),
        // specs
        (
            s(&["train", "--dataset", "xor", "--model", &missing]),
            vec!["missing.json"],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", &not_json]),
            vec!["broken.json", "JSON"],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", &not_toml]),
            vec!["broken.toml", "TOML"],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", &unknown_key]),
            vec!["key.json", "\"lr\""],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", &empty]),
            vec!["empty.json", "empty"],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", &huge_out]),
            vec!["--model", "outputs"],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", &big]),
            vec!["--model", "too large for this machine", "layer 1"],
        ),
        (
            s(&["train", "--dataset", "xor", "--model", &wraps]),
            vec!["--model", "layer 1", "2^64"],
        ),
        (
            s(&["train", "--dataset", "xor", "--hidden", "2000000000"]),
            vec!["too large for this machine"],
        ),
        // eval
        (s(&["eval", "--model-path", &missing]), vec!["missing.json"]),
        (
            s(&["eval", "--model-path", &garbage_model]),
            vec!["garbage.safetensors"],
        ),
        (
            s(&["eval", "--model-path", worked]),
            vec!["worked_example.toml"],
        ),
        (
            s(&["eval", "--model-path", &model, "--threads", "-2"]),
            vec!["--threads", "negative"],
        ),
        // predict
        (
            s(&["predict", "--model-path", &model]),
            vec!["nothing to predict"],
        ),
        (
            s(&["predict", "--model-path", &model, &d.path("none.png")]),
            vec!["none.png"],
        ),
        (
            s(&["predict", "--model-path", &model, &text_png]),
            vec!["text.png", "not a PNG or PGM"],
        ),
        (
            s(&["predict", "--model-path", &model, &giant_png]),
            vec!["giant.png"],
        ),
        (
            s(&["predict", "--model-path", &model, &wrapping_pgm]),
            vec!["wrap.pgm"],
        ),
        (
            s(&["predict", "--model-path", &model, &wrong_size]),
            vec!["small.pgm", "28×28"],
        ),
        (
            s(&["predict", "--model-path", &model, "--index", "-1"]),
            vec!["--index", "negative"],
        ),
        (
            s(&["predict", "--model-path", &model, "--index", "99999999"]),
            vec!["--index 99999999"],
        ),
        (
            s(&[
                "predict",
                "--model-path",
                &model,
                "--csv",
                &d.path("none.csv"),
            ]),
            vec!["--csv", "none.csv"],
        ),
        (
            s(&["predict", "--model-path", &model, "--csv", &short_rows]),
            vec!["--csv", "rows.csv", "line 1"],
        ),
        (
            s(&["predict", "--model-path", &model, "--segment"]),
            vec!["--segment"],
        ),
        // summary, gradcheck, trace, visualize
        (
            s(&["summary", "--inputs", "0", "--outputs", "3"]),
            vec!["--inputs 0"],
        ),
        (
            s(&["summary", "--inputs", "3", "--outputs", "0"]),
            vec!["--outputs 0"],
        ),
        (
            s(&[
                "summary",
                "--model",
                &missing,
                "--inputs",
                "3",
                "--outputs",
                "2",
            ]),
            vec!["missing.json"],
        ),
        (
            s(&[
                "summary",
                "--model",
                &huge_out,
                "--inputs",
                "3",
                "--outputs",
                "1000000000000",
            ]),
            vec!["too large for this machine"],
        ),
        (
            s(&[
                "gradcheck",
                "--hidden",
                "100000",
                "--inputs",
                "100000",
                "--outputs",
                "10",
            ]),
            vec!["too large for this machine"],
        ),
        (
            s(&[
                "gradcheck",
                "--batch",
                "0",
                "--inputs",
                "3",
                "--outputs",
                "2",
            ]),
            vec!["--batch"],
        ),
        (
            s(&[
                "gradcheck",
                "--max-elements",
                "-1",
                "--inputs",
                "3",
                "--outputs",
                "2",
            ]),
            vec!["--max-elements", "negative"],
        ),
        (
            s(&[
                "trace", "--model", worked, "--input", "1", "--target", "0.5",
            ]),
            vec!["--input"],
        ),
        (
            s(&["trace", "--model", worked, "--input", "0.35,0.9"]),
            vec!["--target"],
        ),
        (
            s(&["trace", "--model-path", &model, "--index", "-1"]),
            vec!["--index", "negative"],
        ),
        (
            s(&["visualize", "--model-path", &model, "--top", "0"]),
            vec!["--top"],
        ),
        (
            s(&["visualize", "--model-path", &model, "--search", "0"]),
            vec!["--search"],
        ),
        // the playground and the benchmarks
        (s(&["playground", "--port", "70000"]), vec!["--port"]),
        (
            s(&["playground", "--max-sessions", "0"]),
            vec!["--max-sessions"],
        ),
        (
            s(&["playground", "--digits-model", &garbage_model]),
            vec!["--digits-model", "garbage.safetensors"],
        ),
        (s(&["bench", "resnet"]), vec!["resnet"]),
        // the classic networks
        (
            s(&["som", "--dataset", "xor", "--grid", "5000x5000"]),
            vec!["--grid", "units"],
        ),
        (
            s(&["som", "--dataset", "xor", "--iterations", "-1"]),
            vec!["--iterations", "negative"],
        ),
        (
            s(&["som", "--dataset", "xor", "--sigma", "nan"]),
            vec!["--sigma"],
        ),
        (
            s(&["som", "--dataset", "xor", "--threads", "0"]),
            vec!["--threads"],
        ),
        (
            s(&["som", "--dataset", "xor", "--topology", "triangular"]),
            vec!["--topology"],
        ),
        (s(&["som", "--dataset", &bad_csv]), vec!["bad.csv"]),
        (s(&["esn", "--units", "1000000000"]), vec!["--units"]),
        (s(&["esn", "--points", "100000000000"]), vec!["--points"]),
        (s(&["esn", "--seed", "-3"]), vec!["--seed", "negative"]),
        (s(&["esn", "--series", &short_rows]), vec!["--series"]),
        (
            s(&["rbf", "--dataset", "xor", "--centres", "1000000"]),
            vec!["--centres"],
        ),
        (
            s(&["rbf", "--dataset", "xor", "--centres", "-5"]),
            vec!["--centres", "negative"],
        ),
        (
            s(&["rbf", "--dataset", "xor", "--width-scale", "inf"]),
            vec!["--width-scale"],
        ),
        (
            s(&["rbf", "--dataset", "xor", "--kmeans-samples", "3"]),
            vec!["--kmeans-samples"],
        ),
        (s(&["rbf", "--dataset", &bad_csv]), vec!["bad.csv"]),
        (
            s(&["bench", "mlp", "--threads", "-1"]),
            vec!["--threads", "negative"],
        ),
    ];
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(args, needles)| check(args, needles))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not refused cleanly:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // `backprop trace ... | head -1`: the reader goes away; the command ends without an
    // error or a panic message, as other command-line tools do
    let cwd = Dir::new("pipe-cwd");
    let mut child = bin(&cwd)
        .args([
            "trace",
            "--model",
            &repo("examples/specs/worked_example.toml"),
            "--input",
            "0.35,0.9",
            "--target",
            "0.5",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before the first line is written
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.is_empty(), "{err}");
}

/// A build without the `mpi` feature refuses `--distributed` and says how to build one.
#[cfg(not(feature = "mpi"))]
#[test]
fn distributed_training_without_mpi_says_how_to_build_it() {
    let args = s(&["train", "--dataset", "xor", "--distributed"]);
    if let Some(failure) = check(&args, &["--distributed", "--features mpi", "mpirun"]) {
        panic!("{failure}");
    }
}
