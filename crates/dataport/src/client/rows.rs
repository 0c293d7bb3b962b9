//! Rows printed as an aligned table, CSV or JSON lines: what the client
//! commands that answer many values print.

use std::io::Write;

/// How rows are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for reading.
    #[default]
    Table,
    Csv,
    /// One JSON object per line.
    Json,
}

/// One printed value.
pub enum Cell {
    Text(String),
    /// A number and the decimals a table shows.
    Number(f64, usize),
    /// A count or a position: exact, and an integer in JSON.
    Integer(u64),
    /// A size in bytes: exact, and an integer in JSON; in a table as `1.5K`,
    /// `23M`, ... (powers of 1024, as `ls -h`) when the printer is told to.
    Size(u64),
    /// `true` or `false`, a boolean in JSON.
    Bool(bool),
    /// No value: blank in a table or CSV, null in JSON.
    Empty,
}

/// Prints `rows` under `header` as a table, CSV or JSON lines.
pub fn print_rows(
    format: Format,
    header: &[&str],
    rows: impl Iterator<Item = Vec<Cell>>,
) -> anyhow::Result<()> {
    Printer::new(std::io::BufWriter::new(std::io::stdout().lock()), format, header).print(rows)?;
    Ok(())
}

/// Writes rows one at a time, for output that must appear as it comes. NaN
/// prints as no value.
pub struct Printer<W: Write> {
    out: W,
    format: Format,
    header: Vec<String>,
    /// Per column, whether it aligns left; known once the first row is seen
    /// (text columns align left, numbers right), when a table prints its header.
    left: Option<Vec<bool>>,
    /// Per column, the table's width: at least 10, the header's and the
    /// first row's; set with `left`.
    widths: Vec<usize>,
    /// Whether a table shows sizes human-readable.
    human: bool,
    /// The widest line a table may print, if limited.
    max_width: Option<usize>,
    /// How many leading columns a table shows; set with `left`.
    shown: usize,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, header: &[&str]) -> Self {
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        let widths = header.iter().map(|h| h.len().max(10)).collect();
        let shown = header.len();
        Printer { out, format, header, left: None, widths, human: false, max_width: None, shown }
    }

    /// Limits a table's lines to `max_width` characters by leaving out the
    /// columns, rightmost first, that do not fit (the first always shows).
    pub fn fit(mut self, max_width: Option<usize>) -> Self {
        self.max_width = max_width;
        self
    }

    /// Prints every row, then finishes; answers the columns a table left
    /// out to fit.
    pub fn print(mut self, rows: impl Iterator<Item = Vec<Cell>>) -> std::io::Result<Vec<String>> {
        for row in rows {
            self.row(&row)?;
        }
        let left_out = self.header[self.shown..].to_vec();
        self.finish()?;
        Ok(left_out)
    }

    /// Shows sizes human-readable in a table (CSV and JSON keep them exact).
    pub fn human_sizes(mut self, human: bool) -> Self {
        self.human = human;
        self
    }

    pub fn row(&mut self, row: &[Cell]) -> std::io::Result<()> {
        if self.left.is_none() {
            self.left = Some(row.iter().map(|c| matches!(c, Cell::Text(_))).collect());
            let shown: Vec<usize> = row.iter().map(|cell| self.text(cell, true).chars().count()).collect();
            for (width, shown) in self.widths.iter_mut().zip(shown) {
                *width = (*width).max(shown);
            }
            if let (Format::Table, Some(max)) = (self.format, self.max_width) {
                let mut line = 0;
                let fitting = self.widths.iter().take_while(|&&w| {
                    line += w + usize::from(line > 0);
                    line <= max
                });
                self.shown = fitting.count().max(1);
            }
            self.print_header()?;
        }
        match self.format {
            Format::Table => {
                let cells: Vec<String> = row.iter().map(|c| self.text(c, true)).collect();
                let line = self.table_line(&cells);
                writeln!(self.out, "{line}")
            }
            Format::Csv => {
                let cells: Vec<String> = row.iter().map(|c| self.text(c, false)).collect();
                writeln!(self.out, "{}", cells.join(","))
            }
            Format::Json => {
                let object: serde_json::Map<String, serde_json::Value> =
                    self.header
                        .iter()
                        .zip(row)
                        .map(|(h, cell)| {
                            let value = match *cell {
                                Cell::Text(ref s) => serde_json::Value::from(s.as_str()),
                                Cell::Number(v, _) => serde_json::Number::from_f64(v)
                                    .map_or(serde_json::Value::Null, Into::into),
                                Cell::Integer(n) | Cell::Size(n) => n.into(),
                                Cell::Bool(b) => b.into(),
                                Cell::Empty => serde_json::Value::Null,
                            };
                            (h.clone(), value)
                        })
                        .collect();
                writeln!(self.out, "{}", serde_json::Value::Object(object))
            }
        }
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Prints the header if no row did, and flushes.
    pub fn finish(mut self) -> std::io::Result<()> {
        if self.left.is_none() {
            self.left = Some(vec![true; self.header.len()]);
            self.print_header()?;
        }
        self.out.flush()
    }

    fn print_header(&mut self) -> std::io::Result<()> {
        match self.format {
            Format::Table => {
                let line = self.table_line(&self.header.clone());
                writeln!(self.out, "{line}")
            }
            Format::Csv => writeln!(self.out, "{}", self.header.join(",")),
            Format::Json => Ok(()),
        }
    }

    fn table_line(&self, cells: &[String]) -> String {
        let left = self.left.as_deref().unwrap_or_default();
        let padded: Vec<String> = cells[..self.shown.min(cells.len())]
            .iter()
            .zip(&self.widths)
            .enumerate()
            .map(|(i, (cell, &width))| match left.get(i).copied().unwrap_or(true) {
                true => format!("{cell:<width$}"),
                false => format!("{cell:>width$}"),
            })
            .collect();
        padded.join(" ").trim_end().to_owned()
    }

    fn text(&self, cell: &Cell, table: bool) -> String {
        match *cell {
            Cell::Text(ref s) => s.clone(),
            Cell::Number(v, _) if v.is_nan() => String::new(),
            Cell::Number(v, decimals) if table => format!("{v:.decimals$}"),
            Cell::Number(v, _) => v.to_string(),
            Cell::Size(n) if table && self.human => human_size(n),
            Cell::Integer(n) | Cell::Size(n) => n.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

/// `n` bytes as `ls -h` shows them: bytes below 1K, else one decimal below
/// 10 and none above, in powers of 1024.
pub fn human_size(n: u64) -> String {
    if n < 1024 {
        return n.to_string();
    }
    let mut value = n as f64;
    let mut unit = 'K';
    for u in ['K', 'M', 'G', 'T', 'P', 'E'] {
        value /= 1024.0;
        unit = u;
        if value < 1023.95 {
            break;
        }
    }
    match value < 9.95 {
        true => format!("{value:.1}{unit}"),
        false => format!("{value:.0}{unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{Cell, Format, Printer, human_size};

    fn table(max_width: Option<usize>, header: &[&str]) -> (String, Vec<String>) {
        let mut out = Vec::new();
        let numbers = (1..header.len()).map(|i| Cell::Number(i as f64, 2));
        let row = std::iter::once(Cell::Text("2024-01-02".into())).chain(numbers).collect();
        let left_out =
            Printer::new(&mut out, Format::Table, header).fit(max_width).print(std::iter::once(row)).unwrap();
        (String::from_utf8(out).unwrap(), left_out)
    }

    #[test]
    fn a_table_told_a_width_leaves_out_the_columns_that_do_not_fit() {
        let header = ["date", "close", "a_rather_long_column_name", "d"];
        let (text, left_out) = table(Some(40), &header);
        assert!(text.lines().all(|l| l.len() <= 40), "{text}");
        assert_eq!(text.lines().collect::<Vec<_>>(), ["date            close", "2024-01-02       1.00"]);
        assert_eq!(left_out, ["a_rather_long_column_name", "d"]);
        let (text, left_out) = table(None, &header);
        assert!(text.lines().next().is_some_and(|l| l.ends_with(" d")), "{text}");
        assert!(left_out.is_empty());
        let (text, _) = table(Some(3), &header);
        assert_eq!(text.lines().next(), Some("date"), "the first column always shows");
    }

    #[test]
    fn sizes_read_as_ls_h_shows_them() {
        let cases = [
            (0, "0"),
            (1023, "1023"),
            (1024, "1.0K"),
            (1536, "1.5K"),
            (10 * 1024, "10K"),
            (1024 * 1024 - 1, "1.0M"),
            (1536 * 1024, "1.5M"),
            (5 << 30, "5.0G"),
            (u64::MAX, "16E"),
        ];
        for (n, shown) in cases {
            assert_eq!(human_size(n), shown, "{n}");
        }
    }
}
