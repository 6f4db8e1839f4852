//! The pictures' promises: whole-epoch ticks, accuracy in percent never above 100 %, a log
//! loss axis when the losses span decades, the run name in the titles, a legend; a decision
//! boundary PNG of the stated size with a title, both kinds of marker and shading; captioned
//! tile grids with text in their title strip.

use std::path::PathBuf;

use backprop_train::plot::{
    accuracy_chart, captioned_tile_grid, decision_boundary_png, line_chart_svg, loss_chart,
    tile_grid, training_curves, YAxis, CAPTION_STRIP, DECISION_BOUNDARY_SIZE, TITLE_STRIP,
};
use backprop_train::{EpochRecord, History};

/// A temporary directory, removed when the test ends.
struct TmpDir(PathBuf);

impl std::ops::Deref for TmpDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir(name: &str) -> TmpDir {
    let d = std::env::temp_dir().join(format!("backprop-plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TmpDir(d)
}

/// `n` epochs: loss `loss(e)`, accuracy `acc(e)`, validation slightly worse.
fn history(n: usize, loss: impl Fn(f64) -> f64, acc: impl Fn(f64) -> f64) -> History {
    History {
        epochs: (1..=n)
            .map(|e| {
                let x = e as f64;
                EpochRecord {
                    epoch: e,
                    train_loss: loss(x),
                    train_accuracy: acc(x),
                    val_loss: loss(x) * 1.1,
                    val_accuracy: acc(x) * 0.98,
                    lr: 0.1,
                    seconds: 0.5,
                }
            })
            .collect(),
    }
}

fn decode(path: &std::path::Path) -> (Vec<u8>, usize, usize) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (buf, info.width as usize, info.height as usize)
}

fn is_whole_number(label: &str) -> bool {
    !label.is_empty() && label.chars().all(|c| c.is_ascii_digit())
}

#[test]
fn epoch_ticks_are_whole_numbers_for_any_run_length() {
    for n in [1, 2, 3, 7, 30, 137] {
        let h = history(n, |e| 1.0 / e, |e| 1.0 - 0.5 / e);
        for chart in [
            loss_chart("r", &h).unwrap(),
            accuracy_chart("r", &h).unwrap(),
        ] {
            assert!(!chart.x_ticks.is_empty(), "{n} epochs: no ticks");
            assert!(
                chart.x_ticks.iter().all(|t| is_whole_number(t)),
                "{n} epochs: {:?}",
                chart.x_ticks
            );
            let t: Vec<usize> = chart.x_ticks.iter().map(|t| t.parse().unwrap()).collect();
            assert!(t.windows(2).all(|w| w[0] < w[1]) && t[t.len() - 1] <= n && t[0] >= 1);
            assert!(t.len() <= 11, "{n} epochs: {t:?}");
        }
    }
}

#[test]
fn accuracy_is_in_percent_and_its_axis_never_passes_100() {
    // a perfect classifier: the old chart's axis went to 1.02
    let h = history(20, |e| 1.0 / e, |e| (0.5 + e / 20.0).min(1.0));
    let c = accuracy_chart("spiral", &h).unwrap();
    assert_eq!(c.y_axis, YAxis::Percent);
    assert!(
        c.y_range.1 <= 100.0 && c.y_range.0 >= 0.0,
        "{:?}",
        c.y_range
    );
    assert!(
        c.y_ticks.iter().all(|t| t.ends_with('%')),
        "{:?}",
        c.y_ticks
    );
    let top: f64 = c
        .y_ticks
        .last()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert_eq!(top, 100.0);
    // the axis fits the data rather than always spanning 0–100
    assert!(c.y_range.0 > 40.0, "{:?}", c.y_range);
    assert!(c.svg.contains("accuracy (%)"));
}

#[test]
fn loss_axis_is_log_only_when_the_losses_span_decades() {
    // one early spike (epoch 1: 50) above losses near 0.05: log
    let spiky = history(
        30,
        |e| if e == 1.0 { 50.0 } else { 0.05 + 0.5 / e },
        |_| 0.9,
    );
    let c = loss_chart("spike", &spiky).unwrap();
    assert_eq!(c.y_axis, YAxis::Log);
    assert!(c.svg.contains("log scale"));
    let ticks: Vec<f64> = c.y_ticks.iter().map(|t| t.parse().unwrap()).collect();
    assert!(
        ticks.contains(&0.1) && ticks.contains(&1.0) && ticks.contains(&10.0),
        "{ticks:?}"
    );
    // within one decade: linear, with ticks a nice step apart
    let gentle = history(30, |e| 0.69 - 0.01 * e, |_| 0.9);
    let c = loss_chart("gentle", &gentle).unwrap();
    assert_eq!(c.y_axis, YAxis::Linear);
    let ticks: Vec<f64> = c.y_ticks.iter().map(|t| t.parse().unwrap()).collect();
    let steps: Vec<f64> = ticks.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        steps.iter().all(|s| (s - steps[0]).abs() < 1e-9),
        "{ticks:?}"
    );
    assert!(c.y_range.0 >= 0.0);
}

#[test]
fn titles_name_the_run_and_legends_name_the_series() {
    let h = history(5, |e| 1.0 / e, |e| 1.0 - 0.5 / e);
    let c = loss_chart("moons-mlp-7", &h).unwrap();
    assert!(c.svg.contains("moons-mlp-7"));
    assert_eq!(c.legend.len(), 2);
    assert!(c.legend[0].starts_with("train") && c.legend[1].starts_with("validation"));
    assert!(c.legend.iter().all(|l| c.svg.contains(l.as_str())));
    // without a validation set, there is no validation line or legend entry
    let mut h = h;
    for r in &mut h.epochs {
        r.val_loss = f64::NAN;
    }
    let c = loss_chart("r", &h).unwrap();
    assert_eq!(c.legend.len(), 1);
    assert!(!c.svg.contains("validation"));
}

#[test]
fn training_curves_writes_loss_and_accuracy_svgs() {
    let d = tmpdir("curves");
    let h = history(10, |e| 1.0 / e, |e| 1.0 - 0.5 / e);
    let written = training_curves(&d, "run", &h, true).unwrap();
    assert_eq!(written, vec![d.join("loss.svg"), d.join("accuracy.svg")]);
    for p in &written {
        let s = std::fs::read_to_string(p).unwrap();
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
    }
    let regression = tmpdir("curves-regression");
    let written = training_curves(&regression, "run", &h, false).unwrap();
    assert_eq!(written, vec![regression.join("loss.svg")]);
    assert!(training_curves(&d, "run", &History::default(), true)
        .unwrap()
        .is_empty());
}

#[test]
fn the_generic_line_chart_keeps_whole_epoch_ticks_too() {
    let svg = line_chart_svg("xor", "loss", &[("sgd", vec![0.7, 0.6, 0.5])]);
    let label = |t: &str| svg.contains(&format!(">\n{t}\n</text>"));
    assert!(label("1") && label("2") && label("3"), "{svg}");
    assert!(!label("1.5") && !label("1.0"));
}

#[test]
fn decision_boundary_png_has_title_markers_and_shading() {
    let d = tmpdir("boundary");
    let path = d.join("decision_boundary.png");
    let train: Vec<[f32; 2]> = (0..40).map(|i| [(i % 8) as f32, (i / 8) as f32]).collect();
    let train_labels: Vec<usize> = train.iter().map(|p| usize::from(p[0] > 3.5)).collect();
    let test = [[1.5f32, 1.5], [6.5, 2.5]];
    // the model is right on train and wrong on one test point
    decision_boundary_png(
        &path,
        "toy: decision boundary",
        (&train, &train_labels),
        Some((&test, &[0, 0])),
        2,
        |g| {
            g.chunks(2)
                .map(|p| {
                    if p[0] > 3.5 {
                        vec![0.1, 0.9]
                    } else {
                        vec![0.9, 0.1]
                    }
                })
                .collect()
        },
    )
    .unwrap();
    let (rgb, w, h) = decode(&path);
    assert_eq!((w as u32, h as u32), DECISION_BOUNDARY_SIZE);
    let px = |x: usize, y: usize| {
        [
            rgb[(y * w + x) * 3],
            rgb[(y * w + x) * 3 + 1],
            rgb[(y * w + x) * 3 + 2],
        ]
    };
    // dark pixels of the title text in the title strip
    let dark_title = (0..TITLE_STRIP as usize)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| px(x, y).iter().all(|&c| c < 100))
        .count();
    assert!(
        dark_title > 50,
        "{dark_title} dark pixels in the title strip"
    );
    // both classes' shades are present (tints of blue and of orange)
    let count = |f: &dyn Fn([u8; 3]) -> bool| {
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| f(px(x, y)))
            .count()
    };
    let bluish = count(&|c| c[2] as i32 > c[0] as i32 + 30 && c[2] > 150);
    let orangish = count(&|c| c[0] as i32 > c[2] as i32 + 40 && c[0] > 200);
    assert!(bluish > 10_000 && orangish > 10_000, "{bluish} {orangish}");
    // hollow test markers have white centres: pure white pixels ringed by colour exist
    // inside the shaded area (the shade itself is never pure white at 90 % confidence)
    let white_in_shade = count(&|c| c == [255, 255, 255]);
    assert!(white_in_shade > 0);
}

#[test]
fn captioned_tiles_have_text_in_the_title_strip_and_labels() {
    let tiles: Vec<Vec<f32>> = (0..6)
        .map(|k| (0..25).map(|i| (i * k) as f32).collect())
        .collect();
    let labels: Vec<String> = (0..6).map(|k| format!("filter {k}")).collect();
    let (plain, pw, ph) = tile_grid(&tiles, 5, 5, 16, 3);
    let (rgb, w, h) =
        captioned_tile_grid("conv1: 6 filters, 5×5", &tiles, &labels, 5, 5, 16, 3).unwrap();
    assert_eq!(rgb.len(), w * h * 3);
    assert!(w >= pw && h > ph + CAPTION_STRIP, "{w}×{h} vs {pw}×{ph}");
    let dark_in_title = (0..CAPTION_STRIP * w).filter(|i| rgb[i * 3] < 100).count();
    assert!(dark_in_title > 30, "{dark_in_title}");
    // the first tile's pixels sit right under the strip, unchanged
    let row =
        |img: &[u8], width: usize, y: usize| img[y * width * 3..(y * width + pw) * 3].to_vec();
    assert_eq!(row(&rgb, w, CAPTION_STRIP + 5), row(&plain, pw, 5));
    // labels: light text pixels in the strip under the first row of tiles
    let label_y = CAPTION_STRIP + 5 * 16 + 2..CAPTION_STRIP + 5 * 16 + 14;
    let light = label_y
        .flat_map(|y| (0..w).map(move |x| (y * w + x) * 3))
        .filter(|&i| rgb[i] > 150)
        .count();
    assert!(light > 20, "{light}");
    // labels too wide for the tiles are left out, the picture is then only a title taller
    let long: Vec<String> = (0..6).map(|k| format!("a very long label {k}")).collect();
    let (_, _, h2) = captioned_tile_grid("t", &tiles, &long, 5, 5, 2, 3).unwrap();
    let (_, _, ph2) = tile_grid(&tiles, 5, 5, 2, 3);
    assert_eq!(h2, ph2 + CAPTION_STRIP);
}
