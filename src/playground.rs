//! `backprop playground`: checks the flags, then runs the server of `backprop-playground`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use backprop_playground::{DigitsOptions, Options};

use crate::args::PlaygroundArgs;
use backprop_train::run::default_mnist_dir;

/// Returns the memory freed by closed sessions to the system: the allocator is tuned to keep
/// freed memory for training (see `tune_allocator` in main.rs), which a long-running server
/// should not do after a load peak.
fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own heaps; it takes
    // the allocator's locks itself and may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A long-running server wants the allocator's defaults back, not the training tuning of
/// `tune_allocator` in main.rs: large blocks mapped and unmapped on their own, the heap's
/// free top returned, and few arenas (its many short request threads would otherwise
/// each leave memory in an arena of their own).
fn server_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters, under the allocator's own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 10);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

pub fn playground(a: PlaygroundArgs) -> Result<ExitCode> {
    if a.host.trim().is_empty() {
        bail!("--host: give an address such as 127.0.0.1");
    }
    if !(1..=1000).contains(&a.max_sessions) {
        bail!("--max-sessions {}: choose 1 to 1000", a.max_sessions);
    }
    if !(1..=64).contains(&a.max_playing) {
        bail!("--max-playing {}: choose 1 to 64", a.max_playing);
    }
    if !(1..=10_000).contains(&a.max_connections) {
        bail!("--max-connections {}: choose 1 to 10000", a.max_connections);
    }
    if !(1..=3600).contains(&a.request_timeout) {
        bail!(
            "--request-timeout {}: choose 1 to 3600 seconds",
            a.request_timeout
        );
    }
    if !(1..=86_400).contains(&a.session_ttl) {
        bail!("--session-ttl {}: choose 1 to 86400 seconds", a.session_ttl);
    }
    if !(1..=100).contains(&a.digits_epochs) {
        bail!("--digits-epochs {}: choose 1 to 100", a.digits_epochs);
    }
    let mnist_dir = a.data_dir.clone().unwrap_or_else(default_mnist_dir);
    let model = a
        .digits_model
        .clone()
        .unwrap_or_else(backprop_playground::digits::default_model_path);
    if model.is_dir() {
        bail!(
            "--digits-model {}: a directory; give the checkpoint file (model.safetensors)",
            model.display()
        );
    }
    if model.exists() {
        // a model the digits page cannot use is reported here, not only on the page
        let saved = crate::commands::load_saved_model(&model)
            .map_err(|e| anyhow!("--digits-model {}: {e:#}", model.display()))?;
        if saved.inputs != 784 {
            bail!(
                "--digits-model {}: the model takes {} inputs; the digits page needs a 28×28 digit model (784 inputs)",
                model.display(),
                saved.inputs
            );
        }
    }
    if !model.exists() && !mnist_dir.is_dir() {
        bail!(
            "--data-dir {}: no such directory, and {} does not exist yet to load instead",
            mnist_dir.display(),
            model.display()
        );
    }
    let opts = Options {
        max_sessions: a.max_sessions,
        max_playing: a.max_playing,
        session_ttl: Duration::from_secs(a.session_ttl),
        max_connections: a.max_connections,
        request_timeout: Duration::from_secs(a.request_timeout),
        release_memory: Some(release_memory),
        digits: DigitsOptions {
            model,
            mnist_dir,
            epochs: a.digits_epochs,
        },
        ..Options::default()
    };
    let open = a.open;
    server_allocator();
    backprop_playground::run(&a.host, a.port, opts, |addr| {
        let url = format!("http://{addr}/");
        println!("backprop playground: {url}  (digits: {url}digits)  Ctrl-C stops it");
        if open {
            open_browser(&url);
        }
    })
    .map_err(|e| anyhow!("--host {} --port {}: {e}", a.host, a.port))?;
    Ok(ExitCode::SUCCESS)
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    if std::process::Command::new(opener).arg(url).spawn().is_err() {
        eprintln!("--open: could not start {opener}; open {url} yourself");
    }
}
