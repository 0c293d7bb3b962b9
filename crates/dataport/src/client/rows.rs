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
    /// A count or a size: exact, and an integer in JSON.
    Integer(u64),
    /// No value: blank in a table or CSV, null in JSON.
    Empty,
}

/// Prints `rows` under `header` as a table, CSV or JSON lines.
pub fn print_rows(
    format: Format,
    header: &[&str],
    rows: impl Iterator<Item = Vec<Cell>>,
) -> anyhow::Result<()> {
    let mut printer = Printer::new(std::io::BufWriter::new(std::io::stdout().lock()), format, header);
    for row in rows {
        printer.row(&row)?;
    }
    printer.finish()?;
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
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, header: &[&str]) -> Self {
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        let widths = header.iter().map(|h| h.len().max(10)).collect();
        Printer { out, format, header, left: None, widths }
    }

    pub fn row(&mut self, row: &[Cell]) -> std::io::Result<()> {
        if self.left.is_none() {
            self.left = Some(row.iter().map(|c| matches!(c, Cell::Text(_))).collect());
            for (width, cell) in self.widths.iter_mut().zip(row) {
                *width = (*width).max(text(cell, true).chars().count());
            }
            self.print_header()?;
        }
        match self.format {
            Format::Table => {
                let cells: Vec<String> = row.iter().map(|c| text(c, true)).collect();
                let line = self.table_line(&cells);
                writeln!(self.out, "{line}")
            }
            Format::Csv => {
                let cells: Vec<String> = row.iter().map(|c| text(c, false)).collect();
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
                                Cell::Integer(n) => n.into(),
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
        let padded: Vec<String> = cells
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
}

fn text(cell: &Cell, table: bool) -> String {
    match *cell {
        Cell::Text(ref s) => s.clone(),
        Cell::Number(v, _) if v.is_nan() => String::new(),
        Cell::Number(v, decimals) if table => format!("{v:.decimals$}"),
        Cell::Number(v, _) => v.to_string(),
        Cell::Integer(n) => n.to_string(),
        Cell::Empty => String::new(),
    }
}
