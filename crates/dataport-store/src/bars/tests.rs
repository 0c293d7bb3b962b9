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

/// The tests every bar store passes, each over a fresh, empty store made by
/// `$open` (which returns a guard to keep while the store is used).
macro_rules! bar_store_suite {
    ($(#[$attr:meta])* $open:path) => {
        #[test]
        $(#[$attr])*
        fn imported_bars_come_back_in_date_order_per_symbol() {
            let (_guard, store) = $open();
            super::imported_bars_come_back_in_date_order_per_symbol(&store);
        }

        #[test]
        $(#[$attr])*
        fn reimporting_a_date_replaces_it_and_keeps_the_rest() {
            let (_guard, store) = $open();
            super::reimporting_a_date_replaces_it_and_keeps_the_rest(&store);
        }

        #[test]
        $(#[$attr])*
        fn adjusted_closes_are_stored_and_summarised() {
            let (_guard, store) = $open();
            super::adjusted_closes_are_stored_and_summarised(&store);
        }

        #[test]
        $(#[$attr])*
        fn deleting_a_symbol_removes_its_bars_and_only_its_bars() {
            let (_guard, store) = $open();
            super::deleting_a_symbol_removes_its_bars_and_only_its_bars(&store);
        }

        #[test]
        $(#[$attr])*
        fn the_sample_is_wanted_by_an_empty_store_until_loaded() {
            let (_guard, store) = $open();
            super::the_sample_is_wanted_by_an_empty_store_until_loaded(&store);
        }

        #[test]
        $(#[$attr])*
        fn a_cache_in_front_answers_what_the_store_holds() {
            let (_guard, store) = $open();
            super::a_cache_in_front_answers_what_the_store_holds(store);
        }
    };
}

mod sqlite {
    bar_store_suite!(super::opened);
}

mod postgres {
    bar_store_suite!(
        #[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
        super::pg::fresh
    );
}

fn imported_bars_come_back_in_date_order_per_symbol(store: &dyn BarStore) {
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

fn reimporting_a_date_replaces_it_and_keeps_the_rest(store: &dyn BarStore) {
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

fn adjusted_closes_are_stored_and_summarised(store: &dyn BarStore) {
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

fn deleting_a_symbol_removes_its_bars_and_only_its_bars(store: &dyn BarStore) {
    store.import("A", &bars("2020-01-02,1,2,1,2,10\n2020-01-03,1,2,1,2,10\n")).unwrap();
    store.import("B", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    assert_eq!(store.delete("A").unwrap(), 2);
    assert_eq!(store.delete("A").unwrap(), 0, "a second delete finds nothing");
    assert_eq!(store.bars("A").unwrap(), None);
    assert_eq!(store.symbols().unwrap().into_iter().map(|s| s.symbol).collect::<Vec<_>>(), ["B"]);
}

fn the_sample_is_wanted_by_an_empty_store_until_loaded(store: &dyn BarStore) {
    assert!(store.wants_sample().unwrap());
    store.import("A", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    assert!(!store.wants_sample().unwrap(), "a store holding bars wants no sample");
    store.sample_loaded().unwrap();
    store.sample_loaded().unwrap();
    store.delete("A").unwrap();
    assert!(!store.wants_sample().unwrap(), "removing every symbol does not bring the sample back");
}

fn a_cache_in_front_answers_what_the_store_holds(store: impl BarStore) {
    let cached = CachedBarStore::new(store, 1000);
    let one = bars("2020-01-02,1,2,1,2,10\n");
    cached.import("A", &one).unwrap();
    assert_eq!(*cached.bars("A").unwrap().unwrap(), *one);
    assert_eq!(*cached.bars("A").unwrap().unwrap(), *one);
    let two = bars("2020-01-02,3,4,3,4,10\n2020-01-03,1,2,1,2,10\n");
    cached.import("A", &two).unwrap();
    assert_eq!(*cached.bars("A").unwrap().unwrap(), *two);
    cached.delete("A").unwrap();
    assert_eq!(cached.bars("A").unwrap(), None);
    assert_eq!(cached.stats().hits, 1);
}

#[test]
fn the_sample_stays_unwanted_after_reopening() {
    let (dir, store) = opened();
    store.import("A", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
    store.sample_loaded().unwrap();
    store.delete("A").unwrap();
    drop(store);
    let again = SqliteBarStore::open(dir.path()).unwrap();
    assert!(!again.wants_sample().unwrap(), "removing every symbol does not bring the sample back");
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

/// The PostgreSQL store: the suite's store, and its tests beyond the suite.
mod pg {
    use super::*;
    use crate::postgres::test_database as database;

    pub(super) fn fresh() -> ((), PgBarStore) {
        ((), PgBarStore::connect(&database(), 4).unwrap())
    }

    #[test]
    #[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
    fn a_replica_sees_an_import_made_through_another_at_its_next_read() {
        let url = database();
        let one = CachedBarStore::new(PgBarStore::connect(&url, 2).unwrap(), 1000);
        let two = CachedBarStore::new(PgBarStore::connect(&url, 2).unwrap(), 1000);
        one.import("A", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
        assert_eq!(two.bars("A").unwrap().unwrap().len(), 1);
        assert_eq!(two.bars("A").unwrap().unwrap().len(), 1);
        assert_eq!(two.stats().hits, 1, "an unchanged symbol is answered from memory");
        // No waiting for the notification: the generation is checked on the read.
        one.import("A", &bars("2020-01-03,1,2,1,2,10\n")).unwrap();
        assert_eq!(two.bars("A").unwrap().unwrap().len(), 2);
        one.delete("A").unwrap();
        assert_eq!(two.bars("A").unwrap(), None);
        // And the notification drops the other replica's copy soon after.
        one.import("B", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
        assert!(two.bars("B").unwrap().is_some());
        assert_eq!(two.stats().bars, 1);
        one.import("B", &bars("2020-01-03,1,2,1,2,10\n")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while two.stats().bars != 0 {
            assert!(std::time::Instant::now() < deadline, "no notification reached the other replica in 5 s");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    #[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
    fn replicas_starting_together_migrate_once() {
        let url = database();
        let stores: Vec<PgBarStore> = std::thread::scope(|s| {
            let started: Vec<_> = (0..4).map(|_| s.spawn(|| PgBarStore::connect(&url, 1).unwrap())).collect();
            started.into_iter().map(|t| t.join().unwrap()).collect()
        });
        stores[0].import("A", &bars("2020-01-02,1,2,1,2,10\n")).unwrap();
        assert_eq!(stores[3].bars("A").unwrap().unwrap().len(), 1);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let versions: i64 = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            let row =
                client.query_one("SELECT COUNT(*) FROM dataport_migrations WHERE area = 'bars'", &[]).await;
            // A newer dataport's migration: this one must refuse the database.
            client
                .batch_execute("INSERT INTO dataport_migrations (area, version) VALUES ('bars', 99)")
                .await
                .unwrap();
            row.unwrap().get(0)
        });
        assert_eq!(versions, 1);
        let err = PgBarStore::connect(&url, 1).unwrap_err().to_string();
        assert!(err.contains("its bars schema is version 99, newer than this dataport knows (1)"), "{err}");
    }

    #[test]
    #[ignore = "needs PostgreSQL: tests/run starts one and sets DATAPORT_TEST_POSTGRES"]
    fn errors_name_the_database_without_its_password() {
        // A port nothing listens on: refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let err = PgBarStore::connect(&format!("postgres://dp:s3cret@127.0.0.1:{port}/bars"), 1).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, BarStoreError::Database(DbError::Unreachable { .. })), "{text}");
        assert!(
            text.starts_with(&format!("database postgres://dp@127.0.0.1:{port}/bars is unreachable")),
            "{text}"
        );
        assert!(!text.contains("s3cret") && !format!("{err:?}").contains("s3cret"), "{text}");
        let store = PgBarStore::connect(&database(), 1).unwrap();
        assert!(!format!("{store:?}").contains("password"));
        let err = PgBarStore::connect("mysql://x", 1).unwrap_err().to_string();
        assert!(err.starts_with("bars_url: not a PostgreSQL URL"), "{err}");
        // TLS settings it refuses name themselves, never the password.
        for query in ["sslmode=always", "sslmode=require&sslrootcert=/nonexistent.pem"] {
            let err = PgBarStore::connect(&format!("postgres://dp:s3cret@127.0.0.1:{port}/bars?{query}"), 1);
            let text = err.unwrap_err().to_string();
            assert!(text.starts_with("bars_url: ssl") && !text.contains("s3cret"), "{text}");
        }
    }
}
