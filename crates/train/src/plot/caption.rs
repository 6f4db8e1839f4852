//! Tile grids with words on them: a title strip across the top saying what the picture shows,
//! and a label under each tile (which filter, which channel, which input) where it fits.

use plotters::prelude::*;

use super::chart::draw_err;
use super::font::{ensure_font, FAMILY};
use super::tile_grid;

/// Height in pixels of the title strip of [`captioned_tile_grid`].
pub const CAPTION_STRIP: usize = 30;
const LABEL_H: usize = 15;
const LABEL_PX: u32 = 11;
const TITLE_PX: u32 = 15;

/// [`tile_grid`] with a white title strip of [`CAPTION_STRIP`] pixels on top carrying
/// `title`, and, if `labels` has one entry per tile and the widest fits under a tile, a
/// label strip under every tile. The picture is widened (dark background) when the title is
/// wider than the grid. Returns `(rgb, width, height)`.
///
/// # Errors
/// Only if drawing text fails (the compiled-in font is broken).
///
/// ```
/// use backprop_train::plot::{captioned_tile_grid, CAPTION_STRIP};
/// let tiles = vec![vec![0.0, 1.0, 2.0, 3.0]; 4];
/// let labels: Vec<String> = (0..4).map(|k| format!("f{k}")).collect();
/// let (rgb, w, h) = captioned_tile_grid("filters", &tiles, &labels, 2, 2, 12, 4).unwrap();
/// assert_eq!(rgb.len(), w * h * 3);
/// assert!(h > CAPTION_STRIP + 2 * 12);
/// ```
pub fn captioned_tile_grid(
    title: &str,
    tiles: &[Vec<f32>],
    labels: &[String],
    tile_h: usize,
    tile_w: usize,
    scale: usize,
    columns: usize,
) -> Result<(Vec<u8>, usize, usize), String> {
    ensure_font()?;
    let label_font = (FAMILY, LABEL_PX).into_font();
    let title_font = (FAMILY, TITLE_PX).into_font();
    let width_of = |text: &str, font: &FontDesc| {
        font.box_size(text)
            .map(|(w, _)| w as usize)
            .map_err(draw_err)
    };
    let cell_w = tile_w * scale;
    let mut widest = 0;
    for l in labels {
        widest = widest.max(width_of(l, &label_font)?);
    }
    let with_labels = labels.len() == tiles.len() && !labels.is_empty() && widest + 2 <= cell_w;
    let (grid, gw, gh) = tile_grid(tiles, tile_h, tile_w, scale, columns);
    let cols = columns.max(1).min(tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let extra = if with_labels { LABEL_H } else { 0 };
    let w = gw.max(width_of(title, &title_font)? + 16);
    let h = CAPTION_STRIP + gh + rows * extra;
    let mut img = vec![40u8; w * h * 3];
    img[..CAPTION_STRIP * w * 3].fill(255);
    // copy the grid line by line, leaving a label strip under each row of tiles: tile row r
    // is lines r·ch+1 ..= r·ch+ch−1 of the grid, its bottom border line (r+1)·ch
    let (ch, cw) = (tile_h * scale + 1, tile_w * scale + 1);
    for y in 0..gh {
        let dst_y = CAPTION_STRIP + y + (y / ch) * extra;
        let src = &grid[y * gw * 3..(y + 1) * gw * 3];
        img[(dst_y * w) * 3..(dst_y * w + gw) * 3].copy_from_slice(src);
    }
    {
        let root = BitMapBackend::with_buffer(&mut img, (w as u32, h as u32)).into_drawing_area();
        root.draw_text(title, &title_font.color(&BLACK), (8, 7))
            .map_err(draw_err)?;
        if with_labels {
            let style = label_font.color(&RGBColor(235, 235, 235));
            for (k, l) in labels.iter().enumerate() {
                let (c, r) = (k % cols, k / cols);
                let x = c * cw + 1 + (cell_w - width_of(l, &label_font)?) / 2;
                let y = CAPTION_STRIP + (r + 1) * (ch + extra) - extra + 1;
                root.draw_text(l, &style, (x as i32, y as i32))
                    .map_err(draw_err)?;
            }
        }
        root.present().map_err(draw_err)?;
    }
    Ok((img, w, h))
}
