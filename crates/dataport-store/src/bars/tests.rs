use dataport_core::market::bars::parse_csv;

use super::*;

/// A store in a fresh directory, which lives as long as the guard.
fn opened() -> (tempfile::TempDir, SqliteBarStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteBarStore::open(dir.path()).unwrap();
    (dir, store)
}

fn bars(csv: &str) -> Vec<Bar> {
    parse_csv(format!("date,open,high,low,close,volume\n{csv}").as_bytes()).unwrap()
}

#[test]
fn migrations_are_valid() {
    assert!(migrations().validate().is_ok());
}

#[test]
fn imported_bars_come_back_in_date_order_per_symbol() {
    let (_dir, store) = opened();
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
    let (_dir, store) = opened();
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

#[test]
fn adjusted_closes_are_stored_and_summarised() {
    let (_dir, store) = opened();
    let adjusted = parse_csv(
        "date,open,high,low,close,adj_close\n2020-01-02,1,2,1,2,1\n2020-01-03,1,2,1,2,\n".as_bytes(),
    );
    store.import("A", &adjusted.unwrap()).unwrap();
    store.import("B", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    let got = store.bars("A").unwrap().unwrap();
    assert_eq!((got[0].adj_close, got[1].adj_close), (Some(1.0), None));
    let flags: Vec<(String, bool)> =
        store.symbols().unwrap().into_iter().map(|s| (s.symbol, s.adjusted)).collect();
    assert_eq!(flags, [("A".to_owned(), true), ("B".to_owned(), false)]);
}

#[test]
fn deleting_a_symbol_removes_its_bars_and_only_its_bars() {
    let (_dir, store) = opened();
    store.import("A", &bars("2020-01-02,1,2,1,2,10\n2020-01-03,1,2,1,2,10\n")).unwrap();
    store.import("B", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    assert_eq!(store.delete("A").unwrap(), 2);
    assert_eq!(store.delete("A").unwrap(), 0, "a second delete finds nothing");
    assert_eq!(store.bars("A").unwrap(), None);
    assert_eq!(store.symbols().unwrap().into_iter().map(|s| s.symbol).collect::<Vec<_>>(), ["B"]);
}

#[test]
fn the_sample_is_wanted_once_by_an_empty_store() {
    let (dir, store) = opened();
    assert!(store.wants_sample().unwrap());
    store.import("A", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    store.sample_loaded().unwrap();
    assert!(!store.wants_sample().unwrap());
    store.delete("A").unwrap();
    drop(store);
    let again = SqliteBarStore::open(dir.path()).unwrap();
    assert!(!again.wants_sample().unwrap(), "removing every symbol does not bring the sample back");
    let other = tempfile::tempdir().unwrap();
    let filled = SqliteBarStore::open(other.path()).unwrap();
    filled.import("A", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    assert!(!filled.wants_sample().unwrap(), "a store holding bars wants no sample");
}

#[test]
fn a_store_of_the_first_version_is_migrated_to_upper_case_symbols() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = rusqlite::Connection::open(dir.path().join(SqliteBarStore::FILE)).unwrap();
        conn.execute_batch(include_str!("schema.sql")).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO bars VALUES ('aapl', '2020-01-02', 1, 2, 1, 1.5, 10);
             INSERT INTO bars VALUES ('aapl', '2020-01-03', 1, 2, 1, 1.5, 10);
             INSERT INTO bars VALUES ('AAPL', '2020-01-03', 5, 6, 4, 5, 20);
             INSERT INTO bars VALUES ('ibm', '2020-01-02', 9, 9, 9, 9, NULL);",
        )
        .unwrap();
    }
    let store = SqliteBarStore::open(dir.path()).unwrap();
    let symbols: Vec<(String, u64)> =
        store.symbols().unwrap().into_iter().map(|s| (s.symbol, s.bars)).collect();
    assert_eq!(symbols, [("AAPL".to_owned(), 2), ("IBM".to_owned(), 1)]);
    let aapl = store.bars("AAPL").unwrap().unwrap();
    assert_eq!((aapl[0].close, aapl[1].close), (1.5, 5.0), "where both held a date, AAPL's bar stays");
    assert_eq!(aapl[0].adj_close, None);
    assert!(!store.wants_sample().unwrap());
}

#[test]
fn a_full_disk_refuses_the_whole_import_and_keeps_what_was_stored() {
    let (_dir, store) = opened();
    let kept = bars("2020-01-02,1,2,1,2,10\n");
    store.import("X", &kept).unwrap();
    // The database may not grow past its size now: SQLite's own "disk full".
    let pages: i64 = store.conn().query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    store.conn().query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())).unwrap();
    let many: String = (0..2000)
        .map(|i| format!("{:04}-{:02}-{:02},1,2,1,2,10\n", 1900 + i / 336, i / 28 % 12 + 1, i % 28 + 1))
        .collect();
    let err = store.import("X", &bars(&many)).unwrap_err();
    assert!(matches!(err, BarStoreError::DiskFull { .. }), "{err}");
    assert!(err.to_string().contains("disk is full"), "{err}");
    assert_eq!(*store.bars("X").unwrap().unwrap(), *kept);
}
