//! The two shapes plotters has no element for: a candle and a column, each
//! drawn straight onto the backend from the points plotters maps for it.

use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use plotters_backend::{BackendCoord, BackendStyle, DrawingErrorKind};

/// A candle: wick from low to high, body from open to close, `body` pixels wide.
pub(crate) struct Candle {
    pub points: [(f64, f64); 4],
    pub body: u32,
    pub style: ShapeStyle,
}

/// A column from `from` to `to` at one x, `width` pixels wide (volume, histogram).
pub(crate) struct Column {
    pub points: [(f64, f64); 2],
    pub width: u32,
    pub color: RGBColor,
}

/// Candles and columns hand plotters their points as the slice they hold.
macro_rules! points_held {
    ($($shape:ty),*) => {$(
        impl<'a> PointCollection<'a, (f64, f64)> for &'a $shape {
            type Point = &'a (f64, f64);
            type IntoIter = &'a [(f64, f64)];

            fn point_iter(self) -> Self::IntoIter {
                &self.points
            }
        }
    )*};
}

points_held!(Candle, Column);

impl<DB: DrawingBackend> Drawable<DB> for Candle {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let (Some(open), Some(high), Some(low), Some(close)) =
            (points.next(), points.next(), points.next(), points.next())
        else {
            return Ok(());
        };
        backend.draw_line((open.0, high.1), (open.0, low.1), &self.style)?;
        if self.body > 1 {
            fill(backend, open, close.1, self.body, &self.style)?;
        }
        Ok(())
    }
}

impl<DB: DrawingBackend> Drawable<DB> for Column {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        mut points: I,
        backend: &mut DB,
        _: (u32, u32),
    ) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
        let (Some(from), Some(to)) = (points.next(), points.next()) else {
            return Ok(());
        };
        fill(backend, from, to.1, self.width, &self.color)
    }
}

/// Fills `width` pixels centred on `from`'s x, from `from`'s y to `to_y`
/// (both included).
fn fill<DB: DrawingBackend, S: BackendStyle>(
    backend: &mut DB,
    from: BackendCoord,
    to_y: i32,
    width: u32,
    style: &S,
) -> Result<(), DrawingErrorKind<DB::ErrorType>> {
    // Backends fill rectangles up to, not including, the far corner.
    let left = from.0 - width as i32 / 2;
    let (top, bottom) = (from.1.min(to_y), from.1.max(to_y));
    backend.draw_rect((left, top), (left + width as i32, bottom + 1), style, true)
}
