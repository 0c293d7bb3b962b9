//! Market analytics over daily bars: technical indicators that match TA-Lib.
//!
//! Every indicator takes plain `f64` series and returns series of the same
//! length, with `f64::NAN` on the bars that have no value yet (the first
//! `*_lookback()` bars). TA-Lib 0.8.2 (the Python wheel) is the reference: the
//! arithmetic follows its order of operations, so on the bundled sample bars the
//! results agree to 1e-9 relative or better (`tests/oracle/run` checks this).
//!
//! NaN in the input follows TA-Lib's Python wrapper: leading NaNs are skipped
//! (the series starts at its first valid bar, with the lookback counted from
//! there); a NaN after that poisons every later SMA, EMA, MACD and Bollinger
//! value, turns every later RSI into 0, and in ATR a NaN high or low poisons
//! every later value while a NaN close is ignored (see each function).

mod indicators;

pub use indicators::*;

#[cfg(test)]
mod tests;
