-- Version 2 of the bar store: symbols are stored upper-case, so lookups,
-- which upper-case the symbol asked for, find bars imported as `aapl`.
-- Where `aapl` and `AAPL` both held a date, the bar of `AAPL` stays.
INSERT OR IGNORE INTO bars (symbol, date, open, high, low, close, volume)
    SELECT upper(symbol), date, open, high, low, close, volume FROM bars WHERE symbol <> upper(symbol);
DELETE FROM bars WHERE symbol <> upper(symbol);
