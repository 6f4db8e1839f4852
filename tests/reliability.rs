//! Reliability of `backprop train` that can be shown, not only claimed:
//!
//! - the weights a fixed seed trains do not depend on the thread count (1 and 2 threads give
//!   the same bits for the MLP, LeNet-5 and the `cnn` preset);
//! - a run killed with SIGKILL at random moments always leaves a checkpoint that loads, and
//!   `--resume` from it ends with exactly the weights of an uninterrupted run;
//! - a checkpoint that cannot be written (a full disk: here a file-size limit) is a clear
//!   error that leaves the previous checkpoint as it was;
//! - a checkpoint with a flipped byte inside a tensor is refused, naming the file.
//!
//! The kill test runs a few kills here; `scripts/fault-tests.sh` runs it with 100
//! (`BACKPROP_FAULT_KILLS=100`) and adds a real full disk (a small tmpfs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use backprop::train::checkpoint::training_path;
use backprop::train::Checkpoint;
use backprop::Rng;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backprop"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("RAYON_NUM_THREADS", "2");
    c
}

#[track_caller]
fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-rel-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every tensor of a saved run (weights, optimizer state, best weights) by name, as bits.
fn tensors(dir: &Path) -> Vec<(String, Vec<usize>, Vec<u32>)> {
    let ck = Checkpoint::load(&dir.join("model.safetensors"))
        .unwrap_or_else(|e| panic!("the checkpoint in {} loads: {e}", dir.display()));
    let mut v: Vec<_> = ck
        .tensors
        .iter()
        .map(|(n, t)| {
            let bits = t.data().iter().map(|x| x.to_bits()).collect();
            (n.clone(), t.shape().to_vec(), bits)
        })
        .collect();
    v.sort();
    v
}

/// The first tensor whose bits differ, and how many of its elements do.
fn first_difference(
    a: &[(String, Vec<usize>, Vec<u32>)],
    b: &[(String, Vec<usize>, Vec<u32>)],
) -> Option<String> {
    if a.len() != b.len() {
        return Some(format!("{} tensors vs {}", a.len(), b.len()));
    }
    a.iter().zip(b).find(|(x, y)| x != y).map(|(x, y)| {
        let n = x.2.iter().zip(&y.2).filter(|(p, q)| p != q).count();
        format!("{} ({n} of {} elements differ)", x.0, x.2.len())
    })
}

fn train(out: &Path, threads: usize, args: &[&str]) {
    ok(bin()
        .args(["train", "--json", "--overwrite", "--threads"])
        .arg(threads.to_string())
        .arg("--out")
        .arg(out)
        .args(args)
        .output()
        .unwrap());
}

#[test]
fn one_and_two_threads_train_the_same_weights() {
    let d = tmpdir("threads");
    let small = ["--epochs", "1", "--validation", "64", "--seed", "3"];
    let cases: [(&str, &[&str]); 4] = [
        // halves of each batch run side by side; every product stays on its task's thread
        ("mlp", &["--limit", "1024"]),
        // dropout keeps the batch whole: the products split over the pool themselves
        ("mlp-dropout", &["--limit", "512", "--dropout", "0.2"]),
        (
            "lenet5",
            &["--model", "lenet5", "--limit", "320", "--batch-size", "32"],
        ),
        // batch norm keeps the batch whole; convolutions split by image
        (
            "cnn",
            &["--model", "cnn", "--limit", "160", "--batch-size", "32"],
        ),
    ];
    for (name, args) in cases {
        let runs: Vec<_> = [1, 2]
            .iter()
            .map(|&t| {
                let out = d.join(format!("{name}-{t}"));
                train(&out, t, &[&small[..], args].concat());
                tensors(&out)
            })
            .collect();
        assert!(
            first_difference(&runs[0], &runs[1]).is_none(),
            "{name}: 1 and 2 threads differ in {}",
            first_difference(&runs[0], &runs[1]).unwrap()
        );
    }
    let _ = std::fs::remove_dir_all(d);
}

/// The run the kill test interrupts: epochs short enough that checkpoints come often.
const KILLED_RUN: &[&str] = &[
    "--dataset",
    "spiral",
    "--samples",
    "1500",
    "--hidden",
    "32,32",
    "--optimizer",
    "adam",
    "--epochs",
    "40",
    "--batch-size",
    "8",
    "--validation",
    "100",
    "--early-stopping",
    "30",
    "--seed",
    "7",
    "--json",
];

/// How many epochs the checkpoint in `out` has, if it loads; `None` if there is none yet.
/// A checkpoint that exists but does not load fails the test.
fn saved_epochs(out: &Path) -> Option<u64> {
    let path = out.join("model.safetensors");
    if !path.exists() {
        return None;
    }
    let ck = Checkpoint::load(&path)
        .unwrap_or_else(|e| panic!("after a kill the checkpoint does not load: {e}"));
    let state: serde_json::Value = serde_json::from_str(
        ck.metadata
            .get("backprop.training")
            .expect("training state"),
    )
    .unwrap();
    state["epochs_done"].as_u64()
}

/// Starts the run (resuming when there is a checkpoint), kills it after `after`, and
/// returns whether it had already finished by then.
fn run_and_kill(out: &Path, after: Duration) -> bool {
    let mut c = bin();
    c.args(["train", "--out"]).arg(out).args(KILLED_RUN);
    if saved_epochs(out).is_some() {
        c.arg("--resume");
    } else {
        c.arg("--overwrite");
    }
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while t0.elapsed() < after {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            assert!(
                status.success() || err.contains("already finished"),
                "a resumed run failed: {err}"
            );
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    false
}

#[test]
fn killed_runs_always_leave_a_checkpoint_that_resumes_to_the_same_weights() {
    let kills: usize = std::env::var("BACKPROP_FAULT_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let d = tmpdir("kill");
    let reference = d.join("reference");
    ok(bin()
        .args(["train", "--out"])
        .arg(&reference)
        .args(KILLED_RUN)
        .output()
        .unwrap());
    let want = tensors(&reference);
    let t0 = Instant::now();
    ok(bin()
        .args(["train", "--overwrite", "--out"])
        .arg(d.join("timing"))
        .args(KILLED_RUN)
        .output()
        .unwrap());
    let whole = t0.elapsed();
    let out = d.join("killed");
    let mut rng = Rng::seed(kills as u64);
    let (mut killed, mut loaded, mut rounds) = (0, 0, 0);
    // each round restarts (or resumes) and kills at a random moment of a whole run's time
    // (which includes start-up); a round that finished starts over from nothing
    while killed < kills {
        rounds += 1;
        assert!(
            rounds < 20 * kills + 20,
            "the run keeps finishing before the kill"
        );
        let after = whole.mul_f64(rng.uniform());
        if run_and_kill(&out, after) {
            assert_eq!(tensors(&out), want, "a run resumed to the end");
            std::fs::remove_dir_all(&out).unwrap();
            continue;
        }
        killed += 1;
        if saved_epochs(&out).is_some() {
            loaded += 1;
        }
    }
    // the last checkpoint, resumed to the end, gives the uninterrupted weights bit for bit
    while !run_and_kill(&out, Duration::from_secs(600)) {}
    let got = tensors(&out);
    assert!(
        first_difference(&got, &want).is_none(),
        "resumed after {killed} kills: {}",
        first_difference(&got, &want).unwrap()
    );
    eprintln!(
        "{killed} kills at random moments ({loaded} with a checkpoint on disk, every one loaded); resumed bit-exact"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_checkpoint_that_cannot_be_written_keeps_the_previous_one() {
    let d = tmpdir("full");
    let out = d.join("run");
    let run = |epochs: &str| {
        let mut c = bin();
        c.args([
            "train",
            "--dataset",
            "xor",
            "--samples",
            "200",
            "--hidden",
            "64,64",
        ])
        .args(["--epochs", epochs, "--json", "--out"])
        .arg(&out);
        c
    };
    ok(run("2").output().unwrap());
    let model = out.join("model.safetensors");
    let before = [
        std::fs::read(&model).unwrap(),
        std::fs::read(training_path(&model)).unwrap(),
    ];
    // the resumed run may not write files larger than the model file: its first
    // checkpoint write fails midway, as on a full disk
    let limit = (before[0].len() - 1) as u64;
    let mut c = run("4");
    c.arg("--resume");
    limit_file_size(&mut c, limit);
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("cannot write the checkpoint")
            && err.contains("model.training.safetensors")
            && !err.contains("panicked"),
        "{err}"
    );
    let after = [
        std::fs::read(&model).unwrap(),
        std::fs::read(training_path(&model)).unwrap(),
    ];
    assert!(after == before, "the previous checkpoint changed");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-") || n.contains(".prev."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // and the run resumes from it once there is room
    let mut c = run("4");
    c.arg("--resume");
    ok(c.output().unwrap());
    let _ = std::fs::remove_dir_all(d);
}

/// Limits the size of every file the child writes (RLIMIT_FSIZE), with SIGXFSZ ignored so
/// that a write past it fails with an error instead of killing the process.
fn limit_file_size(c: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // async-signal-safe functions (setrlimit, signal) on values it owns.
    unsafe {
        c.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

#[test]
fn a_flipped_byte_in_a_saved_tensor_is_refused() {
    let d = tmpdir("flip");
    let out = d.join("run");
    ok(bin()
        .args([
            "train",
            "--dataset",
            "xor",
            "--samples",
            "200",
            "--epochs",
            "1",
            "--json",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap());
    let model = out.join("model.safetensors");
    let mut bytes = std::fs::read(&model).unwrap();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mid = header + (bytes.len() - header) / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&model, &bytes).unwrap();
    for args in [
        vec!["eval", "--model-path", model.to_str().unwrap()],
        vec![
            "train",
            "--dataset",
            "xor",
            "--samples",
            "200",
            "--epochs",
            "2",
            "--resume",
            "--out",
            out.to_str().unwrap(),
        ],
    ] {
        let o = bin().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} accepted a corrupted file");
        assert!(
            err.contains("model.safetensors")
                && err.contains("corrupted")
                && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(d);
}
