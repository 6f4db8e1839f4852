//! Tables: header detection, line numbers, the fixed test split, scaling fitted on the
//! training rows only, categories, missing cells and the label guard.

use std::path::Path;

use backprop_data::{
    load_table_split, test_split, FeatureKind, LabelColumn, Missing, Table, TableOptions,
    TableTarget, Targets, Task,
};

fn table(text: &str) -> Table {
    Table::parse(Path::new("t.csv"), text.as_bytes()).unwrap()
}

fn split(text: &str, opts: &TableOptions) -> backprop_data::SplitTable {
    load_table_split(table(text), opts).unwrap()
}

fn split_err(text: &str, opts: &TableOptions) -> String {
    load_table_split(table(text), opts).unwrap_err().to_string()
}

/// 40 rows: x = i, z = 2i, a class from i.
fn rows40(header: bool) -> String {
    let mut s = if header {
        "x,z,class\n".to_string()
    } else {
        String::new()
    };
    for i in 0..40 {
        s += &format!("{i},{},{}\n", 2 * i, ["setosa", "versicolor"][i % 2]);
    }
    s
}

#[test]
fn a_headerless_file_with_text_labels_keeps_its_first_row() {
    let s = split(&rows40(false), &TableOptions::default());
    assert!(!s.schema.header);
    assert_eq!(s.train.len() + s.test.len(), 40, "no row taken as a header");
    assert_eq!(s.schema.classes(), ["setosa", "versicolor"]);
    let h = split(&rows40(true), &TableOptions::default());
    assert!(h.schema.header);
    assert_eq!(h.train.len() + h.test.len(), 40);
    assert_eq!(h.schema.label, "class");
    // a numeric label column with a text header is still a header (judged on features)
    let mut t = table("a,b,y\n1,2,0\n3,4,1\n");
    assert!(t.looks_like_header(2));
    t.use_header().unwrap();
    assert_eq!(t.names, ["a", "b", "y"]);
    // all-text features: a header when its cells recur nowhere below
    assert!(table("colour,size,y\nred,big,a\nblue,small,b\nred,small,a\n").looks_like_header(2));
    assert!(!table("red,big,a\nblue,small,b\nred,small,a\n").looks_like_header(2));
}

#[test]
fn line_numbers_are_right_for_crlf_files() {
    let text = "a,b,label\r\n1,2,x\r\n3,4,y\r\n5,oops,x\r\n7,8,y\r\n9,10,x\r\n";
    let e = split_err(text, &TableOptions::default());
    assert!(
        e.contains("line 4, column 2 (b)") && e.contains("\"oops\""),
        "{e}"
    );
    // a quoted line break counts as a line too
    let text = "a,b,label\n1,2,\"x\ny\"\n3,oops,z\n5,6,z\n7,8,z\n9,9,z\n";
    let e = split_err(text, &TableOptions::default());
    assert!(e.contains("line 4, column 2 (b)"), "{e}");
    let t = table("1,2\r\n\r\n3,4\r\n");
    assert_eq!(t.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3]);
}

#[test]
fn the_test_split_is_stratified_and_fixed_by_its_own_seed() {
    let keys: Vec<usize> = (0..100).map(|i| usize::from(i >= 90)).collect();
    let (train, test) = test_split(&keys, 3);
    assert_eq!((train.len(), test.len()), (80, 20));
    assert_eq!(
        test.iter().filter(|&&i| keys[i] == 1).count(),
        2,
        "a fifth of each class"
    );
    assert_eq!(test_split(&keys, 3).1, test, "the same seed, the same rows");
    assert_ne!(
        test_split(&keys, 4).1,
        test,
        "another split seed, other rows"
    );
    let s = split(&rows40(true), &TableOptions::default());
    assert_eq!(s.test_rows.len(), 8);
    assert_eq!(s.test.len(), 8);
}

#[test]
fn scaling_statistics_come_from_the_training_rows_only() {
    let base = rows40(true);
    let opts = TableOptions::default();
    let s = split(&base, &opts);
    let outlier = s.test_rows[0];
    // the same table with one test row's x far outside
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    let cells: Vec<&str> = lines[outlier + 1].split(',').collect();
    lines[outlier + 1] = format!("1000000,{},{}", cells[1], cells[2]);
    let far = split(&(lines.join("\n") + "\n"), &opts);
    assert_eq!(
        far.test_rows, s.test_rows,
        "the split depends on the labels only"
    );
    assert_eq!(
        far.schema.features, s.schema.features,
        "a test row does not move the statistics"
    );
    let FeatureKind::Numeric { center, scale, .. } = far.schema.features[0].kind else {
        panic!("x is numeric")
    };
    let train_x: Vec<f64> = (0..40)
        .filter(|i| !s.test_rows.contains(i))
        .map(|i| i as f64)
        .collect();
    let mean = train_x.iter().sum::<f64>() / train_x.len() as f64;
    let std =
        (train_x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / train_x.len() as f64).sqrt();
    assert!((center - mean).abs() < 1e-9 && (scale - std).abs() < 1e-9);
    // the training inputs are standardized: mean 0, variance 1
    let xs: Vec<f32> = far.train.x.data().chunks_exact(2).map(|r| r[0]).collect();
    let m = xs.iter().sum::<f32>() / xs.len() as f32;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f32>() / xs.len() as f32;
    assert!(
        m.abs() < 1e-5 && (v - 1.0).abs() < 1e-4,
        "mean {m}, variance {v}"
    );
    // and the test row far outside is scaled by them, not clipped
    let k = far.test_rows.iter().position(|&r| r == outlier).unwrap();
    assert!((far.test.x.data()[2 * k] as f64 - (1e6 - mean) / std).abs() < 1.0);
    let minmax = split(
        &base,
        &TableOptions {
            scale: backprop_data::Scaling::MinMax,
            ..opts
        },
    );
    let lo = minmax
        .train
        .x
        .data()
        .chunks_exact(2)
        .map(|r| r[0])
        .fold(f32::MAX, f32::min);
    let hi = minmax
        .train
        .x
        .data()
        .chunks_exact(2)
        .map(|r| r[0])
        .fold(f32::MIN, f32::max);
    assert_eq!((lo, hi), (0.0, 1.0));
}

fn with_categories_and_gaps() -> String {
    let mut s = "size,colour,weight,label\n".to_string();
    for i in 0..30 {
        let colour = ["red", "green", "blue"][i % 3];
        let weight = if i == 7 {
            "NA".to_string()
        } else {
            format!("{}", 10 + i)
        };
        let colour = if i == 11 { "" } else { colour };
        s += &format!(
            "{},{colour},{weight},{}\n",
            i % 5,
            if i % 3 == 0 { "yes" } else { "no" }
        );
    }
    s
}

#[test]
fn categories_are_one_hot_and_missing_cells_follow_the_policy() {
    let text = with_categories_and_gaps();
    let e = split_err(&text, &TableOptions::default());
    assert!(
        e.contains("line 9, column 3 (weight)") && e.contains("missing value \"NA\""),
        "{e}"
    );
    assert!(
        e.contains("--missing drop") && e.contains("--missing impute"),
        "{e}"
    );
    let dropped = split(
        &text,
        &TableOptions {
            missing: Missing::Drop,
            ..TableOptions::default()
        },
    );
    assert_eq!(dropped.dropped, 2);
    assert_eq!(dropped.train.len() + dropped.test.len(), 28);
    let s = split(
        &text,
        &TableOptions {
            missing: Missing::Impute,
            ..TableOptions::default()
        },
    );
    assert_eq!(s.train.len() + s.test.len(), 30);
    assert_eq!(
        s.schema.inputs(),
        1 + 3 + 1,
        "colour expands to three inputs"
    );
    assert_eq!(
        s.schema.input_names(),
        [
            "size",
            "colour=blue",
            "colour=green",
            "colour=red",
            "weight"
        ]
    );
    let FeatureKind::Categorical { categories, .. } = &s.schema.features[1].kind else {
        panic!("colour is categorical")
    };
    assert_eq!(categories, &["blue", "green", "red"]);
    // a one-hot row has exactly one 1 among the colour inputs
    for row in s.train.x.data().chunks_exact(5) {
        assert_eq!(row[1] + row[2] + row[3], 1.0);
    }
    // an unseen category in a later file is an error naming it
    let mut later =
        Table::parse(Path::new("new.csv"), b"size,colour,weight\n1,purple,12\n").unwrap();
    s.schema.settle_header(&mut later).unwrap();
    let cols = s.schema.locate(&later).unwrap();
    let e = s
        .schema
        .encode_features(&later, &cols, &[0])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("\"purple\"") && e.contains("blue, green, red"),
        "{e}"
    );
    // an identifier column is refused
    let mut ids = "id,x,y\n".to_string();
    for i in 0..300 {
        ids += &format!("id{i},{i},{}\n", i % 2);
    }
    let e = split_err(&ids, &TableOptions::default());
    assert!(
        e.contains("column 1 (id)") && e.contains("identifier"),
        "{e}"
    );
}

#[test]
fn decimal_labels_ask_for_a_task() {
    let mut s = "x,price\n".to_string();
    for i in 0..100 {
        s += &format!("{i},{}.25\n", 100 + 3 * (i / 2));
    }
    let e = split_err(&s, &TableOptions::default());
    assert!(
        e.contains("--task regression") && e.contains("50 distinct numbers"),
        "{e}"
    );
    let forced = split(
        &s,
        &TableOptions {
            task: Some(Task::Classification),
            ..TableOptions::default()
        },
    );
    assert_eq!(forced.schema.classes().len(), 50);
    assert_eq!(
        forced.test.len(),
        20,
        "a fifth of the rows, though each class has two"
    );
    let r = split(
        &s,
        &TableOptions {
            task: Some(Task::Regression),
            ..TableOptions::default()
        },
    );
    let TableTarget::Regression { mean, std } = r.schema.target else {
        panic!("regression")
    };
    assert!(
        mean > 100.0 && std > 10.0,
        "targets are standardized with the training rows' statistics"
    );
    let Targets::Values(v) = &r.train.targets else {
        panic!()
    };
    let m = v.data().iter().sum::<f32>() / v.data().len() as f32;
    assert!(m.abs() < 1e-4);
    assert!((r.schema.unscale_target(0.0) - mean).abs() < 1e-12);
    // whole-number codes of a few classes are fine without a task
    let ok = split(
        &rows40(true)
            .replace("setosa", "1")
            .replace("versicolor", "2"),
        &TableOptions::default(),
    );
    assert_eq!(ok.schema.classes(), ["1", "2"]);
}

#[test]
fn a_later_file_maps_labels_through_the_models_classes() {
    let s = split(
        &rows40(true),
        &TableOptions {
            label: LabelColumn::Name("class".into()),
            ..TableOptions::default()
        },
    );
    let dir = std::env::temp_dir().join(format!("backprop-tabular-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // only the second class, columns in another order
    let other = dir.join("other.csv");
    std::fs::write(&other, "class,z,x\nversicolor,2,1\nversicolor,6,3\n").unwrap();
    let d = s.schema.labelled(&other, false).unwrap();
    let Targets::Classes { labels, names } = &d.targets else {
        panic!()
    };
    assert_eq!(
        (labels.clone(), names.clone()),
        (
            vec![1, 1],
            vec!["setosa".to_string(), "versicolor".to_string()]
        )
    );
    // x and z are read from their named columns and scaled as in training
    for (k, raw) in [(0, 1.0), (1, 2.0)] {
        let FeatureKind::Numeric { center, scale, .. } = s.schema.features[k].kind else {
            panic!()
        };
        assert!((d.x.data()[k] as f64 - (raw - center) / scale).abs() < 1e-6);
    }
    let bad = dir.join("bad.csv");
    std::fs::write(&bad, "x,z,class\n1,2,virginica\n").unwrap();
    let e = s.schema.labelled(&bad, false).unwrap_err().to_string();
    assert!(
        e.contains("\"virginica\"") && e.contains("setosa, versicolor"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
