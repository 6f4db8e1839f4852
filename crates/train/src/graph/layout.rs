//! A layered left-to-right layout (Sugiyama's scheme, kept small):
//!
//! 1. **Ranks.** A node's column is the longest path to it from a source; a source (a
//!    variable, a weight, a constant) then moves right to one column before its first user,
//!    so that a weight sits next to the op that uses it rather than at the far left.
//! 2. **Order.** Within a column, nodes are sorted by the barycentre of their neighbours'
//!    positions, sweeping right and left a few times, which removes most crossings.
//! 3. **Coordinates.** Columns are placed left to right, as wide as their widest box plus a
//!    gap for edge labels; within a column each box moves towards the mean height of its
//!    neighbours, keeping the order and a minimum gap.
//!
//! Linear in the graph's size per sweep, so a few thousand boxes lay out in milliseconds.

/// Where a box goes: its top-left corner, its size and its column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// Column, from 0 at the left.
    pub rank: usize,
}

/// Lays out boxes of the given `(width, height)` joined by `(from, to)` edges, left to
/// right, with `col_gap` between columns and `row_gap` between boxes of a column. The
/// top-left of the drawing is at (0, 0). Edges that close a cycle are ignored for ranking.
///
/// ```
/// use backprop_train::graph::layout;
/// // a → c ← b, c → d
/// let p = layout(&[(40.0, 20.0); 4], &[(0, 2), (1, 2), (2, 3)], 50.0, 10.0);
/// assert_eq!((p[0].rank, p[1].rank, p[2].rank, p[3].rank), (0, 0, 1, 2));
/// assert!(p[0].x < p[2].x && p[2].x < p[3].x);
/// assert!(p[0].y + p[0].h <= p[1].y || p[1].y + p[1].h <= p[0].y); // no overlap
/// ```
pub fn layout(
    sizes: &[(f64, f64)],
    edges: &[(usize, usize)],
    col_gap: f64,
    row_gap: f64,
) -> Vec<Placement> {
    layout_with_gaps(sizes, edges, &vec![col_gap; edges.len()], row_gap)
}

/// [`layout`] where the gap before a column is the largest `gaps[k]` of the edges `k`
/// entering it (room for those edges' labels), at least the smallest of `gaps`.
pub fn layout_with_gaps(
    sizes: &[(f64, f64)],
    edges: &[(usize, usize)],
    gaps: &[f64],
    row_gap: f64,
) -> Vec<Placement> {
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let min_gap = if min_gap.is_finite() { min_gap } else { 0.0 };
    let n = sizes.len();
    let mut preds = vec![Vec::new(); n];
    let mut succs = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a < n && b < n && a != b {
            succs[a].push(b);
            preds[b].push(a);
        }
    }
    let rank = ranks(n, &preds, &succs);
    let columns = rank.iter().max().map_or(0, |r| r + 1);
    let mut cols: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for v in 0..n {
        cols[rank[v]].push(v);
    }
    order_columns(&mut cols, &preds, &succs);
    // x: columns side by side, each after the gap its incoming labels need
    let mut gap_before = vec![min_gap; columns];
    for (&(_, b), &g) in edges.iter().zip(gaps) {
        if b < n {
            gap_before[rank[b]] = gap_before[rank[b]].max(g);
        }
    }
    let mut x = vec![0.0; columns];
    let mut left = 0.0;
    for (c, col) in cols.iter().enumerate() {
        if c > 0 {
            left += gap_before[c];
        }
        x[c] = left;
        left += col.iter().map(|&v| sizes[v].0).fold(0.0, f64::max);
    }
    let y = heights(sizes, &cols, &preds, &succs, row_gap);
    (0..n)
        .map(|v| Placement {
            x: x[rank[v]],
            y: y[v],
            w: sizes[v].0,
            h: sizes[v].1,
            rank: rank[v],
        })
        .collect()
}

/// Longest-path ranks (Kahn's order), then sources moved next to their first user.
fn ranks(n: usize, preds: &[Vec<usize>], succs: &[Vec<usize>]) -> Vec<usize> {
    let mut indeg: Vec<usize> = preds.iter().map(Vec::len).collect();
    let mut queue: Vec<usize> = (0..n).filter(|&v| indeg[v] == 0).collect();
    let mut rank = vec![0usize; n];
    let mut done = vec![false; n];
    let mut head = 0;
    while head < queue.len() {
        let v = queue[head];
        head += 1;
        done[v] = true;
        for &s in &succs[v] {
            rank[s] = rank[s].max(rank[v] + 1);
            indeg[s] -= 1;
            if indeg[s] == 0 {
                queue.push(s);
            }
        }
    }
    // nodes on a cycle (not possible for the engine's graphs) go after their ranked inputs
    for v in (0..n).filter(|&v| !done[v]) {
        rank[v] = preds[v]
            .iter()
            .filter(|&&p| done[p])
            .map(|&p| rank[p] + 1)
            .max()
            .unwrap_or(0);
    }
    for v in 0..n {
        if preds[v].is_empty() && !succs[v].is_empty() {
            let first_use = succs[v].iter().map(|&s| rank[s]).min().unwrap_or(1);
            rank[v] = first_use.saturating_sub(1);
        }
    }
    rank
}

/// Barycentre ordering: four sweeps, alternating direction.
fn order_columns(cols: &mut [Vec<usize>], preds: &[Vec<usize>], succs: &[Vec<usize>]) {
    let n = preds.len();
    let mut pos = vec![0.0f64; n];
    let set_pos = |cols: &[Vec<usize>], pos: &mut [f64]| {
        for col in cols {
            for (i, &v) in col.iter().enumerate() {
                pos[v] = (i as f64 + 0.5) / col.len() as f64;
            }
        }
    };
    set_pos(cols, &mut pos);
    for sweep in 0..4 {
        let forward = sweep % 2 == 0;
        let order: Vec<usize> = if forward {
            (0..cols.len()).collect()
        } else {
            (0..cols.len()).rev().collect()
        };
        for c in order {
            let neighbours = if forward { preds } else { succs };
            let mut keyed: Vec<(f64, usize)> = cols[c]
                .iter()
                .map(|&v| {
                    let nb = &neighbours[v];
                    let key = if nb.is_empty() {
                        pos[v]
                    } else {
                        nb.iter().map(|&u| pos[u]).sum::<f64>() / nb.len() as f64
                    };
                    (key, v)
                })
                .collect();
            keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
            cols[c] = keyed.into_iter().map(|(_, v)| v).collect();
            for (i, &v) in cols[c].iter().enumerate() {
                pos[v] = (i as f64 + 0.5) / cols[c].len() as f64;
            }
        }
    }
}

/// Top edges: columns centred, then each box pulled towards its neighbours' mean centre
/// with the column's order and gaps kept.
fn heights(
    sizes: &[(f64, f64)],
    cols: &[Vec<usize>],
    preds: &[Vec<usize>],
    succs: &[Vec<usize>],
    gap: f64,
) -> Vec<f64> {
    let n = sizes.len();
    let mut y = vec![0.0f64; n];
    let col_h = |col: &[usize]| {
        col.iter().map(|&v| sizes[v].1).sum::<f64>() + gap * col.len().saturating_sub(1) as f64
    };
    let tallest = cols.iter().map(|c| col_h(c)).fold(0.0, f64::max);
    for col in cols {
        let mut top = (tallest - col_h(col)) / 2.0;
        for &v in col {
            y[v] = top;
            top += sizes[v].1 + gap;
        }
    }
    for _ in 0..4 {
        for col in cols {
            let want: Vec<f64> = col
                .iter()
                .map(|&v| {
                    let nb: Vec<usize> = preds[v].iter().chain(&succs[v]).copied().collect();
                    if nb.is_empty() {
                        y[v]
                    } else {
                        let c = nb.iter().map(|&u| y[u] + sizes[u].1 / 2.0).sum::<f64>()
                            / nb.len() as f64;
                        c - sizes[v].1 / 2.0
                    }
                })
                .collect();
            // place top-down at the wanted height or just below the box above, then pull
            // the column up as a whole so that its mean displacement is zero
            let mut bottom = f64::NEG_INFINITY;
            let mut shift = 0.0;
            for (i, &v) in col.iter().enumerate() {
                y[v] = want[i].max(bottom + gap);
                bottom = y[v] + sizes[v].1;
                shift += y[v] - want[i];
            }
            let shift = shift / col.len().max(1) as f64;
            for &v in col {
                y[v] -= shift;
            }
        }
    }
    let min = y.iter().copied().fold(f64::INFINITY, f64::min);
    if min.is_finite() {
        y.iter_mut().for_each(|v| *v -= min);
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_of_a_column_never_overlap_and_edges_go_right() {
        // a wide fan-in: 30 sources into one op, then a chain
        let mut edges: Vec<(usize, usize)> = (0..30).map(|k| (k, 30)).collect();
        edges.extend([(30, 31), (31, 32), (5, 32)]);
        let sizes: Vec<(f64, f64)> = (0..33)
            .map(|k| (40.0 + k as f64, 20.0 + (k % 3) as f64))
            .collect();
        let p = layout(&sizes, &edges, 30.0, 8.0);
        for &(a, b) in &edges {
            assert!(p[a].x + p[a].w < p[b].x, "edge {a}->{b} does not go right");
        }
        for a in 0..33 {
            for b in a + 1..33 {
                if p[a].rank == p[b].rank {
                    let apart = p[a].y + p[a].h + 8.0 - 1e-9 <= p[b].y
                        || p[b].y + p[b].h + 8.0 - 1e-9 <= p[a].y;
                    assert!(apart, "{a} and {b} overlap");
                }
            }
        }
        // source 5 also feeds node 32: it still sits before its first user
        assert_eq!(p[5].rank, 0);
        assert!(p.iter().all(|q| q.y >= 0.0));
    }

    #[test]
    fn crossings_are_removed_by_ordering() {
        // two chains given in crossed order: 0→3, 1→2; the ordering uncrosses them
        let p = layout(&[(10.0, 10.0); 4], &[(0, 3), (1, 2)], 20.0, 5.0);
        assert_eq!((p[0].y < p[1].y), (p[3].y < p[2].y));
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let p = layout(&[(10.0, 10.0); 3], &[(0, 1), (1, 2), (2, 1)], 20.0, 5.0);
        assert_eq!(p.len(), 3);
    }
}
