use dataport_core::market::bars::parse_csv;

use super::*;

fn bars(csv: &str) -> Vec<Bar> {
    parse_csv(format!("date,open,high,low,close,volume\n{csv}").as_bytes()).unwrap()
}

#[test]
fn migrations_are_valid() {
    assert!(migrations().validate().is_ok());
}

#[test]
fn imported_bars_come_back_in_date_order_per_symbol() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBarStore::open(dir.path()).unwrap();
    assert_eq!(store.bars("AAPL").unwrap(), None);
    assert!(store.symbols().unwrap().is_empty());
    let aapl = bars("2020-01-03,2,3,1,2.5,100\n2020-01-02,1,2,0.5,1.5,\n");
    assert_eq!(store.import("AAPL", &aapl).unwrap(), 2);
    store.import("IBM", &bars("2020-01-02,9,9,9,9,9\n")).unwrap();
    let got = store.bars("AAPL").unwrap().unwrap();
    assert_eq!(*got, *aapl);
    assert_eq!(got[0].volume, None);
    let symbols = store.symbols().unwrap();
    assert_eq!(
        symbols.iter().map(|s| (s.symbol.as_str(), s.bars)).collect::<Vec<_>>(),
        [("AAPL", 2), ("IBM", 1)]
    );
    assert_eq!(
        (symbols[0].first.to_string(), symbols[0].last.to_string()),
        ("2020-01-02".into(), "2020-01-03".into())
    );
}

#[test]
fn reimporting_a_date_replaces_it_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBarStore::open(dir.path()).unwrap();
    store.import("X", &bars("2020-01-02,1,2,1,2,10\n2020-01-03,1,2,1,2,10\n")).unwrap();
    store.import("X", &bars("2020-01-03,5,6,4,5,20\n2020-01-06,1,1,1,1,1\n")).unwrap();
    let got = store.bars("X").unwrap().unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!((got[1].close, got[1].volume), (5.0, Some(20.0)));
}

#[test]
fn bars_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteBarStore::open(dir.path()).unwrap();
    first.import("X", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    drop(first);
    let again = SqliteBarStore::open(dir.path()).unwrap();
    assert_eq!(again.bars("X").unwrap().unwrap().len(), 1);
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SqliteBarStore::FILE), vec![b'x'; 4096]).unwrap();
    let err = SqliteBarStore::open(dir.path()).unwrap_err().to_string();
    assert!(err.starts_with("bar database") && err.contains("bars.sqlite3"), "{err}");
}
