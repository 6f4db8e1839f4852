//! `train --distributed` under `mpirun` with 2 ranks (built with `--features mpi`; `.ci/run`
//! installs OpenMPI and runs these): 2 ranks × 32 samples give the weights of 1 process ×
//! 64, bit for bit; a rank killed mid-epoch ends the job within seconds, and the last
//! checkpoint resumes in one process to the weights of an uninterrupted run.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use backprop::train::Checkpoint;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-mpi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `backprop train` on a small MNIST slice: `limit` samples, 160 of them held out.
fn train_args(model: &str, limit: usize, epochs: usize, out: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--dataset",
        "mnist",
        "--model",
        model,
        "--batch-size",
        "64",
        "--validation",
        "160",
        "--threads",
        "1",
        "--seed",
        "3",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(["--limit".into(), limit.to_string()]);
    v.extend(["--epochs".into(), epochs.to_string()]);
    v.extend(["--out".into(), out.display().to_string()]);
    v
}

fn single(args: &[String]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_backprop"));
    c.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

/// `mpirun -np 2 backprop <args> --distributed` (as root too; more ranks than cores).
fn mpirun(args: &[String]) -> Command {
    let mut c = Command::new("mpirun");
    c.args([
        "--oversubscribe",
        "-np",
        "2",
        env!("CARGO_BIN_EXE_backprop"),
    ])
    .args(args)
    .arg("--distributed")
    .current_dir(env!("CARGO_MANIFEST_DIR"))
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
    c
}

fn ok(c: &mut Command) -> Output {
    let o = c.output().expect("run the command");
    assert!(
        o.status.success(),
        "{c:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Every tensor of the checkpoint (weights and optimizer state), by name.
fn tensors(dir: &Path) -> Vec<(String, Vec<u32>)> {
    let ck = Checkpoint::load(&dir.join("model.safetensors")).unwrap();
    let mut v: Vec<(String, Vec<u32>)> = ck
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.data().iter().map(|x| x.to_bits()).collect()))
        .collect();
    v.sort();
    v
}

fn assert_same_weights(a: &Path, b: &Path) {
    let (ta, tb) = (tensors(a), tensors(b));
    assert_eq!(ta.len(), tb.len());
    for ((na, va), (nb, vb)) in ta.iter().zip(&tb) {
        assert_eq!(na, nb);
        assert!(
            va == vb,
            "tensor {na} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// 100 steps (4 epochs of 25 global batches of 64) in one process and on 2 ranks.
fn equivalence(model: &str) {
    let dir = tmpdir(model);
    let (one, two) = (dir.join("one"), dir.join("two"));
    ok(&mut single(&train_args(model, 1760, 4, &one)));
    let o = ok(&mut mpirun(&train_args(model, 1760, 4, &two)));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("distributed over 2 ranks"), "{err}");
    // rank 0 alone reports
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.matches("test accuracy").count(), 1, "{out}");
    assert_same_weights(&one, &two);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_ranks_of_32_give_the_mlps_weights_of_one_process_of_64() {
    equivalence("mlp");
}

#[test]
fn two_ranks_of_32_give_lenet5s_weights_of_one_process_of_64() {
    equivalence("lenet5");
}

/// The pid of rank `rank` among `mpirun`'s children.
fn rank_pid(mpirun: u32, rank: usize) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{mpirun}/task/{mpirun}/children")).ok()?;
    children.split_whitespace().find_map(|p| {
        let env = std::fs::read(format!("/proc/{p}/environ")).ok()?;
        let want = format!("OMPI_COMM_WORLD_RANK={rank}");
        env.split(|&b| b == 0)
            .any(|kv| kv == want.as_bytes())
            .then(|| p.parse().ok())?
    })
}

/// A running `mpirun`, ended (SIGTERM: mpirun ends its ranks) if the test fails first.
struct Job(std::process::Child);

impl Drop for Job {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            // SAFETY: kill only sends a signal to the mpirun this test started.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_killed_rank_ends_the_job_and_one_process_resumes_to_the_same_weights() {
    let dir = tmpdir("kill");
    let (killed, whole) = (dir.join("killed"), dir.join("whole"));
    // 3 epochs of 100 steps; rank 1 is killed once epoch 1's checkpoint is written
    let args = train_args("mlp", 6560, 3, &killed);
    let mut job = Job(mpirun(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap());
    let model = killed.join("model.safetensors");
    let t0 = Instant::now();
    while !model.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "no checkpoint written"
        );
        assert!(job.0.try_wait().unwrap().is_none(), "the job ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rank_pid(job.0.id(), 1).expect("rank 1 among mpirun's children");
    // SAFETY: kill only sends a signal to the rank this test started.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let killed_at = Instant::now();
    let status = loop {
        if let Some(s) = job.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "the job still runs 10 s after a rank was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(job.0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("rank 1") && err.contains("signal 9"), "{err}");
    eprintln!(
        "the job ended {:.2} s after rank 1 was killed",
        killed_at.elapsed().as_secs_f64()
    );

    // the last checkpoint loads and resumes in one process (no mpirun) ...
    let done = Checkpoint::load(&model).unwrap();
    let state = &done.metadata["backprop.training"];
    assert!(
        !state.contains("\"epochs_done\":3"),
        "the run finished before the kill: {state}"
    );
    let mut resume = train_args("mlp", 6560, 3, &killed);
    resume.push("--resume".into());
    ok(&mut single(&resume));
    // ... to the weights of an uninterrupted single-process run
    ok(&mut single(&train_args("mlp", 6560, 3, &whole)));
    assert_same_weights(&killed, &whole);
    let _ = std::fs::remove_dir_all(dir);
}
