//! The pages, embedded at compile time.

pub const INDEX_HTML: &str = include_str!("../assets/index.html");
pub const DIGITS_HTML: &str = include_str!("../assets/digits.html");
pub const APP_JS: &str = include_str!("../assets/app.js");
pub const DIGITS_JS: &str = include_str!("../assets/digits.js");
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
