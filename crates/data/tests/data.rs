//! Loaders, encodings, splits and batches.

use std::io::Write;

use backprop_data::{
    decode_idx, load_csv, load_idx_pair, read_idx, synthetic, BatchTargets, CsvOptions, Encoding,
    LabelColumn, Targets, Task, SYNTHETIC,
};
use backprop_tensor::Rng;

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("backprop-data-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

#[test]
fn reads_the_shipped_mnist_test_split() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let raw = load_idx_pair(&dir, "t10k").unwrap();
    assert_eq!(raw.labels.len(), 10_000);
    assert_eq!(raw.size, (28, 28));
    assert_eq!(&raw.labels[..3], &[7, 2, 1]);
    let d = raw
        .into_dataset("mnist", Encoding::Grey, backprop_data::digit_names(10))
        .unwrap();
    assert_eq!((d.len(), d.features(), d.num_classes()), (10_000, 784, 10));
    assert!(d.x.data().iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn gzipped_and_raw_idx_read_the_same() {
    let d = tmpdir("gz");
    let bytes = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    std::fs::write(d.join("a"), &bytes).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(d.join("a.gz"), &gz).unwrap();
    assert_eq!(
        read_idx(&d.join("a")).unwrap(),
        read_idx(&d.join("a.gz")).unwrap()
    );
    // a cut-off gzip stream names the file
    std::fs::write(d.join("cut.gz"), &gz[..gz.len() / 2]).unwrap();
    let e = read_idx(&d.join("cut.gz")).unwrap_err().to_string();
    assert!(e.contains("cut.gz") && e.contains("decompress"), "{e}");
    let e = load_idx_pair(&d, "train").unwrap_err().to_string();
    assert!(e.contains("train-images-idx3-ubyte"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_small_gzipped_file_promising_terabytes_is_refused_before_allocating() {
    let gz = |bytes: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    };
    // 10^12 bytes promised by a file of a few dozen bytes
    let e = decode_idx(&gz(&idx(&[1_000_000, 1_000_000], &[1, 2, 3]))).unwrap_err();
    assert!(e.contains("more than a gzipped file"), "{e}");
    // the most the header can say (2^64 − 2^33 + 1 bytes), and an overflowing product
    let e = decode_idx(&gz(&idx(&[u32::MAX, u32::MAX], &[]))).unwrap_err();
    assert!(e.contains("more than a gzipped file"), "{e}");
    let e = decode_idx(&gz(&idx(&[u32::MAX, u32::MAX, u32::MAX], &[]))).unwrap_err();
    assert!(e.contains("overflow"), "{e}");
    // short and long data, a header cut off, and the honest file
    let e = decode_idx(&gz(&idx(&[2, 3], &[1, 2]))).unwrap_err();
    assert!(e.contains("only 2 follow"), "{e}");
    let e = decode_idx(&gz(&idx(&[2], &[1, 2, 3, 4]))).unwrap_err();
    assert!(e.contains("2 bytes after"), "{e}");
    let e = decode_idx(&gz(&[0, 0, 8, 3, 0])).unwrap_err();
    assert!(e.contains("truncated inside its header"), "{e}");
    let e = decode_idx(&gz(&[0, 0])).unwrap_err();
    assert!(e.contains("too short"), "{e}");
    let ok = decode_idx(&gz(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6]))).unwrap();
    assert_eq!((ok.dims, ok.data), (vec![2, 3], vec![1, 2, 3, 4, 5, 6]));
}

#[test]
fn encodings() {
    assert_eq!(Encoding::Grey.encode(255), 1.0);
    assert_eq!(Encoding::Grey.encode(0), 0.0);
    assert_eq!(
        (Encoding::Binary.encode(127), Encoding::Binary.encode(128)),
        (0.0, 1.0)
    );
    let Encoding::Standardized { mean, std } = Encoding::standardized_from(&[0, 255]) else {
        unreachable!()
    };
    assert!((mean - 0.5).abs() < 1e-6 && (std - 0.5).abs() < 1e-6);
    let e = Encoding::Standardized { mean, std };
    assert!((e.encode(255) - 1.0).abs() < 1e-6 && (e.encode(0) + 1.0).abs() < 1e-6);
}

#[test]
fn csv_with_and_without_header_label_by_name_or_index() {
    let d = tmpdir("csv");
    let p = d.join("h.csv");
    std::fs::write(&p, "label,f1,f2\ncat,1,2\ndog,3,4\ncat,5,6\n").unwrap();
    let ds = load_csv(
        &p,
        &CsvOptions {
            label: LabelColumn::Name("label".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ds.x.to_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let Targets::Classes { labels, names } = &ds.targets else {
        panic!()
    };
    assert_eq!(
        (labels.clone(), names.clone()),
        (vec![0, 1, 0], vec!["cat".to_string(), "dog".to_string()])
    );
    let same = load_csv(
        &p,
        &CsvOptions {
            label: LabelColumn::Index(0),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(same.x, ds.x);

    let q = d.join("n.csv");
    std::fs::write(&q, "1,2,10\n3,4,2\n5,6,10\n").unwrap();
    let ds = load_csv(&q, &CsvOptions::default()).unwrap();
    assert_eq!(ds.len(), 3, "a numeric first row is data, not a header");
    let Targets::Classes { labels, names } = &ds.targets else {
        panic!()
    };
    assert_eq!(
        names,
        &vec!["2".to_string(), "10".to_string()],
        "numeric classes sort numerically"
    );
    assert_eq!(labels, &vec![1, 0, 1]);
    let r = load_csv(
        &q,
        &CsvOptions {
            task: Task::Regression,
            ..Default::default()
        },
    )
    .unwrap();
    let Targets::Values(v) = &r.targets else {
        panic!()
    };
    assert_eq!(v.to_vec(), vec![10.0, 2.0, 10.0]);

    let bad = d.join("bad.csv");
    std::fs::write(&bad, "a,b,c\n1,2,x\n3,four,y\n").unwrap();
    let e = load_csv(&bad, &CsvOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.csv")
            && e.contains("line 3")
            && e.contains("column 2 (b)")
            && e.contains("\"four\""),
        "{e}"
    );
    let e = load_csv(
        &bad,
        &CsvOptions {
            label: LabelColumn::Name("z".into()),
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no column named \"z\""), "{e}");
    let ragged = d.join("ragged.csv");
    std::fs::write(&ragged, "1,2,3\n4,5\n").unwrap();
    assert!(load_csv(&ragged, &CsvOptions::default())
        .unwrap_err()
        .to_string()
        .contains("line 2 has 2 columns"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn batch_sizes_cover_sgd_minibatch_and_full_batch() {
    let d = synthetic("xor", 10, 0.0, 1).unwrap();
    assert_eq!(d.batches(1, None).count(), 10, "batch size 1 is SGD");
    assert_eq!(
        d.batches(10, None).count(),
        1,
        "the whole set is full-batch gradient descent"
    );
    assert_eq!(d.batches(1000, None).count(), 1);
    let sizes: Vec<usize> = d.batches(4, None).map(|b| b.x.shape()[0]).collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    // seeded shuffling: same seed same order, another seed another order, every sample once
    let order = |seed| -> Vec<f32> {
        d.batches(3, Some(&mut Rng::seed(seed)))
            .flat_map(|b| b.x.to_vec())
            .collect()
    };
    assert_eq!(order(5), order(5));
    assert_ne!(order(5), order(6));
    let mut a = order(5);
    let mut b = d.x.to_vec();
    a.sort_by(f32::total_cmp);
    b.sort_by(f32::total_cmp);
    assert_eq!(a, b);
    let first = d.batches(4, None).next().unwrap();
    let BatchTargets::Classes(l) = first.targets else {
        panic!()
    };
    assert_eq!(l.len(), 4);
}

#[test]
fn validation_split_is_seeded_and_disjoint() {
    let d = synthetic("gauss", 100, 0.2, 2).unwrap();
    let (t1, v1) = d.split(25, 9).unwrap();
    let (t2, v2) = d.split(25, 9).unwrap();
    assert_eq!((t1.len(), v1.len()), (75, 25));
    assert_eq!(v1.x, v2.x);
    assert_eq!(t1.x, t2.x);
    let mut all: Vec<f32> = t1.x.to_vec().into_iter().chain(v1.x.to_vec()).collect();
    let mut orig = d.x.to_vec();
    all.sort_by(f32::total_cmp);
    orig.sort_by(f32::total_cmp);
    assert_eq!(all, orig);
    assert!(d.split(100, 1).is_err());
}

#[test]
fn synthetic_sets_are_seeded_and_noise_moves_points() {
    for name in SYNTHETIC {
        let a = synthetic(name, 50, 0.2, 3).unwrap();
        let b = synthetic(name, 50, 0.2, 3).unwrap();
        let c = synthetic(name, 50, 0.0, 3).unwrap();
        assert_eq!(a.x, b.x, "{name}");
        assert_eq!(a.targets, b.targets, "{name}");
        // classification noise moves the points; regression noise moves the targets
        match (&a.targets, &c.targets) {
            (Targets::Values(va), Targets::Values(vc)) => {
                assert_ne!(va, vc, "{name}: noise changes nothing")
            }
            _ => assert_ne!(a.x, c.x, "{name}: noise changes nothing"),
        }
        assert_eq!(a.features(), 2);
        assert!(
            a.x.data().iter().all(|v| v.abs() < 3.0),
            "{name} out of range"
        );
    }
    // xor without noise is labelled by the sign of x1·x2
    let x = synthetic("xor", 200, 0.0, 1).unwrap();
    let Targets::Classes { labels, .. } = &x.targets else {
        panic!()
    };
    for (p, &l) in x.x.data().chunks(2).zip(labels) {
        assert_eq!(l, usize::from(p[0] * p[1] > 0.0));
    }
}

#[test]
fn random_shift_moves_whole_images_and_fills_with_background() {
    use backprop_data::random_shift;
    use backprop_tensor::Tensor;
    // a 5×5 image with one bright pixel in the middle, on a background of 0.1
    let mut img = vec![0.1f32; 25];
    img[12] = 1.0;
    let mut x = Tensor::from_vec(
        [img.clone(), img.clone(), img.clone(), img].concat(),
        &[4, 25],
    );
    random_shift(&mut x, [1, 5, 5], 2, &mut Rng::seed(8));
    for row in x.data().chunks(25) {
        // still one bright pixel, within 2 of the centre, everything else background
        let bright: Vec<usize> = (0..25).filter(|&k| row[k] == 1.0).collect();
        assert_eq!(bright.len(), 1, "{row:?}");
        let (y, x) = (bright[0] / 5, bright[0] % 5);
        assert!(y.abs_diff(2) <= 2 && x.abs_diff(2) <= 2);
        assert!(row.iter().filter(|&&v| v != 1.0).all(|&v| v == 0.1));
    }
    // seeded: the same seed shifts the same way
    let a = {
        let mut t = Tensor::from_vec((0..50).map(|v| v as f32).collect(), &[2, 25]);
        random_shift(&mut t, [1, 5, 5], 1, &mut Rng::seed(1));
        t
    };
    let b = {
        let mut t = Tensor::from_vec((0..50).map(|v| v as f32).collect(), &[2, 25]);
        random_shift(&mut t, [1, 5, 5], 1, &mut Rng::seed(1));
        t
    };
    assert_eq!(a, b);
}
