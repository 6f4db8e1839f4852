//! Neighbourhoods, decays and errors against values worked by hand on tiny maps.

use super::*;

fn map(rows: usize, cols: usize, f: impl FnOnce(&mut SomConfig)) -> Som {
    let mut c = SomConfig {
        rows,
        cols,
        ..SomConfig::default()
    };
    f(&mut c);
    Som::new(&c, 1).unwrap()
}

fn close(a: &[f32], b: &[f64]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((f64::from(*x) - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[test]
fn neighbourhoods_on_a_3x3_map_match_hand_values() {
    // winner: the centre unit (1, 1) = index 4; σ = 1, so 2σ² = 2.
    // Gaussian: exp(−r²/2): r² = 0 → 1, 1 → e^{−1/2} = 0.60653, 2 → e^{−1} = 0.36788
    let (e1, e2) = ((-0.5f64).exp(), (-1.0f64).exp());
    let g = map(3, 3, |_| {}).neighborhood(4, 1.0);
    close(&g, &[e2, e1, e2, e1, 1.0, e1, e2, e1, e2]);
    // Mexican hat: e^{−r²/2}(1 − r²): r² = 1 → 0, r² = 2 → −e^{−1}
    let mh = map(3, 3, |c| c.neighborhood = Neighborhood::MexicanHat).neighborhood(4, 1.0);
    close(&mh, &[-e2, 0.0, -e2, 0.0, 1.0, 0.0, -e2, 0.0, -e2]);
    // bubble, σ = 1: only |Δi| < 1 and |Δj| < 1, i.e. the winner; σ = 1.5 takes the 3 × 3
    let b = map(3, 3, |c| c.neighborhood = Neighborhood::Bubble);
    close(
        &b.neighborhood(4, 1.0),
        &[0., 0., 0., 0., 1., 0., 0., 0., 0.],
    );
    close(
        &b.neighborhood(0, 1.5),
        &[1., 1., 0., 1., 1., 0., 0., 0., 0.],
    );
    // triangle, σ = 2 at corner (0, 0): (2 − |Δi|)(2 − |Δj|) → 4, 2, 0 / 2, 1, 0 / 0, 0, 0
    let t = map(3, 3, |c| c.neighborhood = Neighborhood::Triangle).neighborhood(0, 2.0);
    close(&t, &[4., 2., 0., 2., 1., 0., 0., 0., 0.]);
}

#[test]
fn hexagonal_positions_and_neighbours() {
    // 3 × 3 hexagonal: columns j = 2 and j = 0 (counted from the last) shift by −0.5 in x,
    // columns sit √3/2 apart, so diagonal neighbours are at distance √(¼ + ¾) = 1.
    let h = map(3, 3, |c| c.topology = Topology::Hexagonal);
    let s = 3f64.sqrt() / 2.0;
    assert_eq!(h.position(0), (-0.5, 0.0));
    assert_eq!(h.position(1), (0.0, s));
    assert_eq!(h.position(5), (0.5, 2.0 * s));
    // centre (1, 1) at (1, s): neighbours (0,1), (2,1) in its column, and in the shifted
    // columns (i − ½ within ½ of 1) i = 1, 2: (1,0), (2,0), (1,2), (2,2)
    let mut nb = h.neighbours(4);
    nb.sort();
    assert_eq!(nb, vec![1, 3, 5, 6, 7, 8]);
    // the Gaussian uses these plane positions: unit 6 = (2, 0) at (1.5, 0) is at squared
    // distance (1.5 − 1)² + s² = 0.25 + 0.75 = 1 → e^{−1/2}; unit 0 = (0, 0) at (−0.5, 0)
    // at 2.25 + 0.75 = 3 → e^{−3/2}
    let g = h.neighborhood(4, 1.0);
    assert!((f64::from(g[6]) - (-0.5f64).exp()).abs() < 1e-6);
    assert!((f64::from(g[0]) - (-1.5f64).exp()).abs() < 1e-6);
    assert_eq!(map(3, 3, |_| {}).neighbours(4).len(), 8);
}

#[test]
fn decays_match_their_formulas() {
    // T = 100, t = 50
    assert!((Decay::Asymptotic.at(0.5, 50, 100) - 0.25).abs() < 1e-12);
    assert!((Decay::InverseToZero.at(1.0, 50, 100) - 1.0 / 51.0).abs() < 1e-12);
    assert!((Decay::LinearToZero.at(0.8, 50, 100) - 0.4).abs() < 1e-12);
    assert!((Decay::InverseToOne.at(3.0, 50, 100) - 1.5).abs() < 1e-12);
    assert!((Decay::LinearToOne.at(3.0, 50, 100) - 2.0).abs() < 1e-12);
}

#[test]
fn topographic_and_quantization_error_by_hand() {
    // A 1 × 4 line map with 1-D weights 0, 1, 2, 10.
    let mut s = map(1, 4, |_| {});
    s.set_weights(&[0.0, 1.0, 2.0, 10.0]);
    // x = 0.4: best 0 (0.4), second 1 (0.6): adjacent → no error, distance 0.4
    // x = 1.9: best 2 (0.1), second 1 (0.9): adjacent, distance 0.1
    // x = 6.5: best 10 → unit 3 (3.5), second unit 2 (4.5): adjacent, distance 3.5
    // x = -3:  best 0 (3), second 1 (4): adjacent
    let data = [0.4, 1.9, 6.5, -3.0];
    assert!((s.quantization_error(&data) - (0.4 + 0.1 + 3.5 + 3.0) / 4.0).abs() < 1e-6);
    assert_eq!(s.topographic_error(&data), 0.0);
    // weights 0, 5, 1, 10: x = 0.4 → best 0, second unit 2 (0.6) two apart → error;
    // x = 4 → best 1 (1), second 2 (3): adjacent; x = 9 → 3 then 1: error; x = 5 → 1 then 2
    s.set_weights(&[0.0, 5.0, 1.0, 10.0]);
    assert!((s.topographic_error(&[0.4, 4.0, 9.0, 5.0]) - 0.5).abs() < 1e-12);
    // on a 2 × 2 rectangular map every pair is adjacent (diagonals count)
    let mut sq = map(2, 2, |_| {});
    sq.set_weights(&[0.0, 5.0, 1.0, 10.0]);
    assert_eq!(sq.topographic_error(&[0.4, 9.0]), 0.0);
    // hexagonal 1 × 4: units in one column are 1 apart, so 0 and 2 are not adjacent
    let mut hx = map(4, 1, |c| c.topology = Topology::Hexagonal);
    hx.set_weights(&[0.0, 5.0, 1.0, 10.0]);
    assert!((hx.topographic_error(&[0.4, 4.0, 9.0, 5.0]) - 0.5).abs() < 1e-12);
}

#[test]
fn one_online_step_moves_units_by_eta_times_neighbourhood() {
    // 1 × 3 map, weights 0, 1, 2; one sample x = 0 wins unit 0; η = 0.5, σ = 1 at t = 0.
    let mut s = map(1, 3, |_| {});
    s.set_weights(&[0.0, 1.0, 2.0]);
    s.train(&[0.0], 1, TrainMode::Online, false).unwrap();
    // unit 1: 1 + 0.5·e^{−1/2}·(0 − 1); unit 2: 2 − 0.5·e^{−2}·2
    let w = s.weights();
    assert!((f64::from(w[1]) - (1.0 - 0.5 * (-0.5f64).exp())).abs() < 1e-6);
    assert!((f64::from(w[2]) - (2.0 - (-2.0f64).exp())).abs() < 1e-6);
}

#[test]
fn the_map_orders_a_line_and_batch_training_agrees() {
    // 1-D data along [0, 1]: a trained 1 × 8 map is monotone and covers it
    let data: Vec<f32> = (0..200).map(|i| ((i * 37) % 200) as f32 / 199.0).collect();
    for mode in [TrainMode::Online, TrainMode::Batch] {
        let mut s = map(1, 8, |c| {
            c.sigma = 2.0;
            c.init = Init::Sample;
        });
        s.init_weights(&data).unwrap();
        s.train(
            &data,
            if mode == TrainMode::Online { 4000 } else { 30 },
            mode,
            false,
        )
        .unwrap();
        let w = s.weights();
        let up = w.windows(2).all(|p| p[0] < p[1]);
        let down = w.windows(2).all(|p| p[0] > p[1]);
        assert!(up || down, "{mode:?}: {w:?}");
        assert!(s.quantization_error(&data) < 0.1, "{mode:?}");
        assert_eq!(s.topographic_error(&data), 0.0);
    }
}

#[test]
fn other_distances_pick_their_nearest_unit() {
    let c = SomConfig {
        rows: 1,
        cols: 3,
        ..SomConfig::default()
    };
    let mut s = Som::new(&c, 2).unwrap();
    // w0 = (3, 0), w1 = (2, 2), w2 = (0, 1)
    s.set_weights(&[3.0, 0.0, 2.0, 2.0, 0.0, 1.0]);
    let x = [1.0, 1.0];
    // euclidean²: 5, 2, 1 → 2; manhattan: 3, 2, 1 → 2; chebyshev: 2, 1, 1 → 1 (tie, lowest)
    // cosine: 1 − 3/(3·√2), 1 − 4/(√8·√2) = 0, … → 1
    for (d, want) in [
        (Distance::Euclidean, 2),
        (Distance::Manhattan, 2),
        (Distance::Chebyshev, 1),
        (Distance::Cosine, 1),
    ] {
        let mut s2 = Som::new(
            &SomConfig {
                distance: d,
                ..c.clone()
            },
            2,
        )
        .unwrap();
        s2.set_weights(s.weights());
        assert_eq!(s2.bmu(&x), want, "{d:?}");
        assert_eq!(s2.bmus(&x), vec![want], "{d:?}");
    }
    s.set_weights(&[3.0, 0.0, 2.0, 2.0, 0.0, 1.0]);
    let lm = s.labels_map(&[1.0, 1.0, 3.0, 0.1, 0.0, 1.0], &[1, 0, 1], 2);
    assert_eq!(lm, vec![vec![1, 0], vec![0, 0], vec![0, 2]]);
    assert_eq!(s.activation_response(&[1.0, 1.0, 3.0, 0.1]), vec![1, 0, 1]);
    assert_eq!(
        s.winner_map(&[1.0, 1.0, 3.0, 0.1]),
        vec![vec![1], vec![], vec![0]]
    );
}

#[test]
fn u_matrix_on_a_line() {
    // weights 0, 1, 3: sums of neighbour distances 1, 1 + 2, 2 → divided by 3
    let mut s = map(1, 3, |_| {});
    s.set_weights(&[0.0, 1.0, 3.0]);
    let u = s.u_matrix(false);
    for (a, b) in u.iter().zip([1.0 / 3.0, 1.0, 2.0 / 3.0]) {
        assert!((a - b).abs() < 1e-9, "{u:?}");
    }
    let m = s.u_matrix(true); // means 1, 1.5, 2 → / 2
    for (a, b) in m.iter().zip([0.5, 0.75, 1.0]) {
        assert!((a - b).abs() < 1e-9, "{m:?}");
    }
}

#[test]
fn bad_settings_and_data_are_named() {
    let bad = |f: fn(&mut SomConfig)| {
        let mut c = SomConfig::default();
        f(&mut c);
        Som::new(&c, 3).unwrap_err().field
    };
    assert_eq!(bad(|c| c.rows = 0), "grid");
    assert_eq!(bad(|c| c.sigma = -1.0), "sigma");
    assert_eq!(bad(|c| c.learning_rate = f64::NAN), "lr");
    let mut s = Som::new(&SomConfig::default(), 3).unwrap();
    assert_eq!(
        s.train(&[1.0, 2.0], 10, TrainMode::Online, false)
            .unwrap_err()
            .field,
        "dataset"
    );
    assert_eq!(
        s.train(&[1.0, 2.0, 3.0], 0, TrainMode::Online, false)
            .unwrap_err()
            .field,
        "iterations"
    );
    assert!(s.init_weights(&[]).is_err());
    assert_eq!(
        Neighborhood::parse("mexican-hat"),
        Some(Neighborhood::MexicanHat)
    );
    assert_eq!(Decay::parse("nope"), None);
}

#[test]
fn the_gaussian_tables_give_the_formula_on_a_hexagonal_map() {
    // the factor tables (one exp each, then products) against exp(−r²/2σ²) from the unit
    // positions, for every winner of a 7 × 9 hexagonal and rectangular map
    for topology in [Topology::Hexagonal, Topology::Rectangular] {
        for neighborhood in [Neighborhood::Gaussian, Neighborhood::MexicanHat] {
            let s = map(7, 9, |c| {
                c.topology = topology;
                c.neighborhood = neighborhood;
            });
            let sigma = 2.3;
            for win in 0..s.units() {
                let h = s.neighborhood(win, sigma);
                let (cx, cy) = s.position(win);
                for (k, &v) in h.iter().enumerate() {
                    let (x, y) = s.position(k);
                    let r2 = (x - cx).powi(2) + (y - cy).powi(2);
                    let mut want = (-r2 / (2.0 * sigma * sigma)).exp();
                    if neighborhood == Neighborhood::MexicanHat {
                        want *= 1.0 - r2 / (sigma * sigma);
                    }
                    assert!(
                        (f64::from(v) - want).abs() < 1e-6,
                        "{topology:?} {neighborhood:?} winner {win} unit {k}: {v} vs {want}"
                    );
                }
            }
        }
    }
}

/// Online training written plainly: the BMU by [`Som::bmu`], then every unit pulled by
/// `η·h` with a scalar loop (the reference of the fused pass).
fn train_online_plainly(s: &mut Som, data: &[f32], iterations: usize, random_order: bool) {
    let (d, n) = (s.dim(), data.len() / s.dim());
    let mut rng = Rng::seed(s.config.seed ^ 0x50_4D);
    for t in 0..iterations {
        let i = if random_order { rng.below(n) } else { t % n };
        let x = &data[i * d..(i + 1) * d];
        let win = s.bmu(x);
        let eta = s.config.lr_decay.at(s.config.learning_rate, t, iterations);
        let sig = s.config.sigma_decay.at(s.config.sigma, t, iterations);
        let h = s.neighborhood(win, sig);
        for (k, &hk) in h.iter().enumerate() {
            let g = hk * eta as f32;
            if g.abs() >= kernels::NEGLIGIBLE {
                for (w, &v) in s.weights[k * d..(k + 1) * d].iter_mut().zip(x) {
                    *w += g * (v - *w);
                }
            }
        }
    }
}

#[test]
fn the_fused_online_pass_trains_as_the_plain_loop_does() {
    let (n, d) = (60, 37);
    let mut rng = Rng::seed(11);
    let data: Vec<f32> = (0..n * d).map(|_| rng.uniform() as f32).collect();
    for (topology, neighborhood, distance, random_order) in [
        (
            Topology::Rectangular,
            Neighborhood::Gaussian,
            Distance::Euclidean,
            false,
        ),
        (
            Topology::Hexagonal,
            Neighborhood::MexicanHat,
            Distance::Cosine,
            true,
        ),
        (
            Topology::Rectangular,
            Neighborhood::Bubble,
            Distance::Manhattan,
            true,
        ),
        (
            Topology::Hexagonal,
            Neighborhood::Triangle,
            Distance::Chebyshev,
            false,
        ),
    ] {
        let cfg = SomConfig {
            rows: 4,
            cols: 5,
            sigma: 1.5,
            topology,
            neighborhood,
            distance,
            init: Init::Sample,
            ..SomConfig::default()
        };
        let mut fused = Som::new(&cfg, d).unwrap();
        fused.init_weights(&data).unwrap();
        let mut plain = fused.clone();
        fused
            .train(&data, 300, TrainMode::Online, random_order)
            .unwrap();
        train_online_plainly(&mut plain, &data, 300, random_order);
        for (a, b) in fused.weights().iter().zip(plain.weights()) {
            assert!((a - b).abs() < 1e-5, "{distance:?}: {a} vs {b}");
        }
    }
}

#[test]
fn weights_shrinking_towards_zero_are_flushed_before_they_turn_subnormal() {
    // a 1 × 1 map pulled towards 0 forever: the weight falls geometrically, and would pass
    // through the subnormal range (slow on x86) if it were not set to zero below 2⁻⁶³
    let mut s = map(1, 1, |c| c.learning_rate = 0.5);
    s.set_weights(&[1.0]);
    s.train(&vec![0.0; 200], 200, TrainMode::Online, false)
        .unwrap();
    assert_eq!(s.weights()[0], 0.0);
}
