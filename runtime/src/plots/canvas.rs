//! A small RGB raster: filled rectangles, thick lines, and text in an 8×8 bitmap font (scaled),
//! enough to draw labelled charts without a plotting library or system fonts.

use crate::error::Result;
use crate::loggers::Image;

/// An RGB color.
pub type Rgb = [u8; 3];

/// White.
pub const WHITE: Rgb = [255, 255, 255];
/// Near-black for text and axes.
pub const INK: Rgb = [30, 30, 30];
/// Light grey for grid lines.
pub const GRID: Rgb = [225, 225, 225];

/// Matplotlib's `tab10` colors, for one line per class.
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Glyph size in pixels at scale 1.
pub const GLYPH: i64 = 8;

/// A white canvas to draw on.
#[derive(Debug, Clone)]
pub struct Canvas {
    width: i64,
    height: i64,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A white `width × height` canvas.
    pub fn new(width: u32, height: u32) -> Self {
        Canvas { width: width as i64, height: height as i64, rgb: vec![255; 3 * width as usize * height as usize] }
    }

    /// Sets one pixel (outside the canvas: ignored).
    pub fn set(&mut self, x: i64, y: i64, color: Rgb) {
        if (0..self.width).contains(&x) && (0..self.height).contains(&y) {
            let i = 3 * (y * self.width + x) as usize;
            self.rgb[i..i + 3].copy_from_slice(&color);
        }
    }

    /// Fills the rectangle `[x, x + w) × [y, y + h)`.
    pub fn fill(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, color);
            }
        }
    }

    /// A line `width` pixels thick from (x0, y0) to (x1, y1).
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), width: i64, color: Rgb) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as i64;
        let half = width / 2;
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let (x, y) = ((x0 + (x1 - x0) * t).round() as i64, (y0 + (y1 - y0) * t).round() as i64);
            self.fill(x - half, y - half, width, width, color);
        }
    }

    /// Draws `text` with its top-left corner at (x, y), each glyph `8 * scale` pixels square;
    /// characters outside ASCII are drawn as `?`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        self.glyphs(text, |i, col, row| (x + (i * GLYPH + col) * scale, y + row * scale), scale, color);
    }

    /// Calls `place(char index, glyph column, glyph row)` for every lit pixel of `text` and
    /// fills a `scale`-sized square where it says.
    fn glyphs(&mut self, text: &str, place: impl Fn(i64, i64, i64) -> (i64, i64), scale: i64, color: Rgb) {
        for (i, c) in text.chars().enumerate() {
            let code = if c.is_ascii() { c as usize } else { '?' as usize };
            for (row, bits) in font8x8::legacy::BASIC_LEGACY[code].iter().enumerate() {
                for col in 0..8 {
                    if bits >> col & 1 == 1 {
                        let (px, py) = place(i as i64, col, row as i64);
                        self.fill(px, py, scale, scale, color);
                    }
                }
            }
        }
    }

    /// Draws `text` centred on x.
    pub fn text_centred(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        self.text(x - text_width(text, scale) / 2, y, text, scale, color);
    }

    /// Draws `text` rotated a quarter turn counter-clockwise (reading upwards), centred on y,
    /// with its top at x.
    pub fn text_vertical(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb) {
        let start = y + text_width(text, scale) / 2;
        self.glyphs(text, |i, col, row| (x + row * scale, start - (i * GLYPH + col + 1) * scale), scale, color);
    }

    /// The finished image.
    pub fn into_image(self) -> Result<Image> {
        Image::from_rgb(self.width as u32, self.height as u32, self.rgb)
    }
}

/// The width of `text` in pixels at `scale`.
pub fn text_width(text: &str, scale: i64) -> i64 {
    text.chars().count() as i64 * GLYPH * scale
}

/// Shortens `text` to at most `max` characters (with `..` when cut).
pub fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(2)).collect();
        format!("{kept}..")
    }
}
