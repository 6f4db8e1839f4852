//! The one font the pictures use: a 25 kB subset of DejaVu Sans compiled into the crate
//! (`assets/FONT-LICENSE.md` says what it holds and under which licence), registered with
//! `plotters` under the family name `sans-serif` so that its pure-Rust `ab_glyph` text path
//! needs no system font library.

use std::sync::OnceLock;

use plotters::style::FontStyle;

static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

/// The family name every picture asks for.
pub const FAMILY: &str = "sans-serif";

/// Registers the font once per process; later calls are free.
///
/// # Errors
/// If the compiled-in font cannot be parsed (a broken build, never user input).
pub fn ensure_font() -> Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, DEJAVU_SANS).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the plot font (assets/DejaVuSans-subset.ttf) cannot be parsed".to_string())
    }
}
