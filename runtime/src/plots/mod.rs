//! Charts as PNG-ready images, for users without a tracker: the test set's precision-recall
//! curves and its confusion matrix, saved next to the logs.

use crate::error::{Error, Result};
use crate::loggers::{ClassCurves, ConfusionTable, Image};

mod canvas;

pub use canvas::{Canvas, GLYPH, PALETTE, Rgb, fit, text_width};
use canvas::{GRID, INK, WHITE};

/// Size of the precision-recall chart.
pub const PR_SIZE: (u32, u32) = (800, 600);

/// One precision-recall curve per class (recall on x, precision on y, both 0..1) with a legend
/// of class names and average precisions, 800 × 600.
pub fn pr_curves(curves: &ClassCurves, title: &str) -> Result<Image> {
    if curves.curves.is_empty() || curves.classes.len() != curves.curves.len() {
        return Err(Error::Media {
            what: "a precision-recall chart".into(),
            reason: format!("it needs one class name per curve (got {} names, {} curves)", curves.classes.len(), curves.curves.len()),
        });
    }
    let (w, h) = PR_SIZE;
    let mut c = Canvas::new(w, h);
    let (left, top, right, bottom) = (70i64, 50i64, 600i64, h as i64 - 60);
    let (pw, ph) = ((right - left) as f64, (bottom - top) as f64);
    let to_px = |recall: f64, precision: f64| (left as f64 + recall * pw, bottom as f64 - precision * ph);
    c.text_centred((left + right) / 2, 15, &fit(title, 60), 2, INK);
    for k in 0..=5 {
        let v = k as f64 / 5.0;
        let (x, y) = to_px(v, v);
        c.line((x, top as f64), (x, bottom as f64), 1, GRID);
        c.line((left as f64, y), (right as f64, y), 1, GRID);
        let label = format!("{v:.1}");
        c.text_centred(x as i64, bottom + 8, &label, 1, INK);
        c.text(left - 8 - text_width(&label, 1), y as i64 - 4, &label, 1, INK);
    }
    c.line((left as f64, top as f64), (left as f64, bottom as f64), 2, INK);
    c.line((left as f64, bottom as f64), (right as f64, bottom as f64), 2, INK);
    c.text_centred((left + right) / 2, bottom + 28, "Recall", 2, INK);
    c.text_vertical(12, (top + bottom) / 2, "Precision", 2, INK);
    for (i, (name, curve)) in curves.classes.iter().zip(&curves.curves).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // Points go from the lowest threshold (recall 1) to the highest (recall 0).
        let points: Vec<(f64, f64)> = curve.recall.iter().zip(&curve.precision).map(|(&r, &p)| to_px(r, p)).collect();
        for pair in points.windows(2) {
            c.line(pair[0], pair[1], 2, color);
        }
        let y = top + 10 + i as i64 * 22;
        if y + 16 < h as i64 {
            c.fill(right + 20, y + 2, 18, 4, color);
            let ap = average_precision(curve);
            c.text(right + 44, y, &fit(&format!("{name} {ap:.3}"), 18), 1, INK);
        }
    }
    c.text(right + 20, top - 14, "class  AP", 1, INK);
    c.into_image()
}

/// `Σ (R_n − R_{n+1}) P_n` over a curve ordered by increasing threshold.
fn average_precision(curve: &crate::metrics::PrCurve) -> f64 {
    curve.recall.windows(2).zip(&curve.precision).map(|(r, p)| (r[0] - r[1]) * p).sum()
}

/// The confusion matrix as a heat map (rows: true class, columns: predicted class), each cell
/// labelled with its value; cells are 48 pixels, the image grows with the class count.
pub fn confusion_matrix(matrix: &ConfusionTable) -> Result<Image> {
    let n = matrix.classes.len();
    if n == 0 || matrix.matrix.len() != n || matrix.matrix.iter().any(|r| r.len() != n) {
        return Err(Error::Media { what: "a confusion-matrix chart".into(), reason: format!("it needs an n × n matrix with n class names (got {n} names)") });
    }
    let cell = 48i64;
    let label_chars = matrix.classes.iter().map(|s| s.chars().count()).max().unwrap_or(1).min(12);
    let margin = 40 + label_chars as i64 * GLYPH;
    let (w, h) = (margin + n as i64 * cell + 20, margin + n as i64 * cell + 50);
    let mut c = Canvas::new(w as u32, h as u32);
    let max = matrix.matrix.iter().flatten().cloned().fold(0.0f64, f64::max);
    let (x0, y0) = (margin, 50i64);
    c.text_centred(x0 + n as i64 * cell / 2, 6, "Confusion matrix", 2, INK);
    c.text_centred(x0 + n as i64 * cell / 2, 28, "predicted", 1, INK);
    c.text_vertical(4, y0 + n as i64 * cell / 2, "true", 1, INK);
    for (i, row) in matrix.matrix.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            let t = if max > 0.0 { v / max } else { 0.0 };
            let shade = |lo: f64, hi: f64| (lo + (hi - lo) * t).round() as u8;
            let color = [shade(247.0, 8.0), shade(251.0, 48.0), shade(255.0, 107.0)];
            let (x, y) = (x0 + j as i64 * cell, y0 + i as i64 * cell);
            c.fill(x, y, cell - 1, cell - 1, color);
            let label = if v.fract() == 0.0 && v.abs() < 1e6 { format!("{v:.0}") } else { format!("{v:.2}") };
            let ink = if t > 0.5 { WHITE } else { INK };
            c.text_centred(x + cell / 2, y + cell / 2 - 4, &fit(&label, 6), 1, ink);
        }
        let name = fit(&matrix.classes[i], 12);
        c.text(x0 - 6 - text_width(&name, 1), y0 + i as i64 * cell + cell / 2 - 4, &name, 1, INK);
    }
    for (j, name) in matrix.classes.iter().enumerate() {
        let name = fit(name, 12);
        c.text_vertical(x0 + j as i64 * cell + cell / 2 - 4, y0 + n as i64 * cell + 6 + text_width(&name, 1) / 2, &name, 1, INK);
    }
    c.into_image()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::PrCurve;

    fn curve(precision: Vec<f64>, recall: Vec<f64>) -> PrCurve {
        let n = precision.len() - 1;
        PrCurve { precision, recall, thresholds: vec![0.5; n], true_positives: vec![1.0; n], false_positives: vec![0.0; n], positives: 1.0, negatives: 1.0 }
    }

    #[test]
    fn pr_chart_has_its_size_and_draws_each_class_in_its_color() {
        let curves = ClassCurves {
            classes: vec!["cat".into(), "dog".into()],
            curves: vec![curve(vec![0.5, 1.0], vec![1.0, 0.0]), curve(vec![1.0, 1.0], vec![1.0, 0.0])],
        };
        let image = pr_curves(&curves, "test").unwrap();
        assert_eq!((image.width(), image.height()), PR_SIZE);
        let count =
            |color: [u8; 3]| (0..image.height()).flat_map(|y| (0..image.width()).map(move |x| (x, y))).filter(|&(x, y)| image.pixel(x, y) == color).count();
        assert!(count(PALETTE[0]) > 200, "class 0's line is missing");
        assert!(count(PALETTE[1]) > 200, "class 1's line is missing");
        // The second curve is precision 1 everywhere: its line runs along the top of the plot.
        assert_eq!(image.pixel(300, 50), PALETTE[1]);
        assert!(pr_curves(&ClassCurves { classes: vec![], curves: vec![] }, "x").is_err());
    }

    #[test]
    fn confusion_chart_grows_with_classes_and_shades_by_count() {
        let table =
            ConfusionTable { classes: vec!["a".into(), "b".into(), "c".into()], matrix: vec![vec![9.0, 0.0, 1.0], vec![0.0, 5.0, 0.0], vec![2.0, 0.0, 7.0]] };
        let image = confusion_matrix(&table).unwrap();
        // margin 40 + 8 (one-letter names), 3 cells of 48, 20 right; 50 top, 3 cells, 50 below.
        assert_eq!((image.width(), image.height()), (48 + 3 * 48 + 20, 48 + 3 * 48 + 50));
        let corner = |i: u32, j: u32| image.pixel(48 + j * 48 + 2, 50 + i * 48 + 2);
        assert_eq!(corner(0, 0), [8, 48, 107], "the largest count is the darkest");
        assert_eq!(corner(0, 1), [247, 251, 255], "zero is the lightest");
        assert!(corner(2, 2)[0] < corner(1, 1)[0], "7 is darker than 5");
        assert!(confusion_matrix(&ConfusionTable { classes: vec!["a".into()], matrix: vec![vec![1.0, 2.0]] }).is_err());
    }
}
