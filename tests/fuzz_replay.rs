//! Replays every committed fuzz input (the seed corpora in `fuzz/corpus/<target>/` and the
//! crash inputs kept in `fuzz/regressions/<target>/`) through the entry points the fuzz
//! targets call, on the stable toolchain, so every finding stays fixed without nightly.

use std::path::Path;

#[path = "../src/images.rs"]
#[allow(dead_code)]
mod images;

#[path = "../fuzz/src/entries.rs"]
mod entries;

const TARGETS: [(&str, fn(&[u8])); 7] = [
    ("idx", entries::idx),
    ("csv", entries::csv),
    ("spec", entries::spec),
    ("spec_structured", structured),
    ("checkpoint", entries::checkpoint),
    ("image", entries::image),
    ("playground", entries::playground),
];

/// The structured target's input as libFuzzer hands it over: bytes read by `arbitrary`.
fn structured(data: &[u8]) {
    let u = arbitrary::Unstructured::new(data);
    if let Ok(spec) = <entries::SpecInput as arbitrary::Arbitrary>::arbitrary_take_rest(u) {
        entries::spec_structured(&spec);
    }
}

#[test]
fn every_corpus_file_and_kept_crash_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut total = 0;
    for (target, entry) in TARGETS {
        let mut files = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(list) = std::fs::read_dir(root.join(dir).join(target)) else {
                continue;
            };
            let mut paths: Vec<_> = list.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths.iter().filter(|p| p.is_file()) {
                let bytes = std::fs::read(p).unwrap();
                let r = std::panic::catch_unwind(|| entry(&bytes));
                assert!(r.is_ok(), "{} fails its target {target}", p.display());
                files += 1;
            }
        }
        assert!(files > 0, "the {target} target has no corpus");
        total += files;
    }
    eprintln!("{total} fuzz inputs replayed");
}
