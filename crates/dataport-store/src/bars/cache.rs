//! The bars of recently read symbols, kept in memory in front of any
//! [`BarStore`].
//!
//! Every indicator and chart reads a symbol's whole history (the warm-up
//! needs it), so without a cache each call re-reads and re-parses thousands of
//! rows. Imports and deletes go through the cache and drop the symbol's entry. When only
//! this process writes the store (SQLite in its data directory) nothing else can make an
//! entry stale; when other replicas write it too (PostgreSQL), each entry keeps the
//! symbol's generation read before its bars, and every read checks it against the store's
//! current one ([`BarStore::generation`]); the store's notifications drop entries early.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use dataport_core::market::bars::Bar;

use super::{BarStore, BarStoreError, Changed, SymbolSummary};

/// A [`BarStore`] that keeps up to `budget` bars in memory, evicting the
/// least recently read symbols first.
#[derive(Debug)]
pub struct CachedBarStore<S> {
    inner: S,
    budget: usize,
    /// Shared with the store's subscriber, which drops entries.
    cache: Arc<Mutex<Cache>>,
}

#[derive(Debug, Default)]
struct Cache {
    entries: HashMap<String, Entry>,
    /// Bars held by `entries`.
    held: usize,
    /// Ticks on every read, to find the least recently read entry.
    clock: u64,
    /// Ticks on every import: a read that began before an import must not
    /// fill the cache with what it read.
    generation: u64,
    hits: u64,
    misses: u64,
}

/// How the cache has done since it was made, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from memory, and reads that went to the store.
    pub hits: u64,
    pub misses: u64,
    /// Bars held now.
    pub bars: u64,
}

#[derive(Debug)]
struct Entry {
    bars: Arc<[Bar]>,
    last_read: u64,
    /// The store's generation of the symbol, read before the bars.
    generation: Option<u64>,
}

impl<S: BarStore> CachedBarStore<S> {
    /// `budget` is the most bars held at once (a bar is about 56 bytes).
    pub fn new(inner: S, budget: usize) -> Self {
        let cache: Arc<Mutex<Cache>> = Arc::default();
        let weak: Weak<Mutex<Cache>> = Arc::downgrade(&cache);
        inner.subscribe(Arc::new(move |change| {
            let Some(cache) = weak.upgrade() else { return };
            let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
            cache.generation += 1;
            match change {
                Changed::Symbol(symbol) => cache.remove(&symbol),
                Changed::Everything => {
                    cache.entries.clear();
                    cache.held = 0;
                }
            }
        }));
        CachedBarStore { inner, budget, cache }
    }

    pub fn stats(&self) -> CacheStats {
        let cache = self.cache();
        CacheStats { hits: cache.hits, misses: cache.misses, bars: cache.held as u64 }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        // Every update leaves the cache consistent before anything can panic.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Cache {
    fn remove(&mut self, symbol: &str) {
        if let Some(old) = self.entries.remove(symbol) {
            self.held -= old.bars.len();
        }
    }

    /// Makes room for `bars` more within `budget`, least recently read first.
    fn evict_for(&mut self, bars: usize, budget: usize) {
        while self.held + bars > budget {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.last_read).map(|(s, _)| s.clone())
            else {
                return;
            };
            self.remove(&oldest);
        }
    }
}

impl<S: BarStore> BarStore for CachedBarStore<S> {
    fn import(&self, symbol: &str, bars: &[Bar]) -> Result<usize, BarStoreError> {
        let result = self.inner.import(symbol, bars);
        // Dropped whether or not the import committed: a failed one changed
        // nothing, and a reread is cheap.
        let mut cache = self.cache();
        cache.generation += 1;
        cache.remove(symbol);
        result
    }

    fn symbols(&self) -> Result<Vec<SymbolSummary>, BarStoreError> {
        self.inner.symbols()
    }

    fn delete(&self, symbol: &str) -> Result<u64, BarStoreError> {
        let result = self.inner.delete(symbol);
        let mut cache = self.cache();
        cache.generation += 1;
        cache.remove(symbol);
        result
    }

    fn bars(&self, symbol: &str) -> Result<Option<Arc<[Bar]>>, BarStoreError> {
        // Read before the bars: should the symbol change between the two,
        // the entry is merely reread next time, never stale.
        let stored = self.inner.generation(symbol)?;
        let generation = {
            let mut cache = self.cache();
            cache.clock += 1;
            let now = cache.clock;
            match cache.entries.get_mut(symbol) {
                Some(entry) if entry.generation == stored => {
                    entry.last_read = now;
                    let bars = Arc::clone(&entry.bars);
                    cache.hits += 1;
                    return Ok(Some(bars));
                }
                Some(_) => cache.remove(symbol),
                None => {}
            }
            cache.misses += 1;
            cache.generation
        };
        let Some(bars) = self.inner.bars(symbol)? else {
            return Ok(None);
        };
        let mut cache = self.cache();
        if cache.generation == generation && bars.len() <= self.budget && !cache.entries.contains_key(symbol)
        {
            cache.evict_for(bars.len(), self.budget);
            cache.held += bars.len();
            let last_read = cache.clock;
            cache
                .entries
                .insert(symbol.to_owned(), Entry { bars: Arc::clone(&bars), last_read, generation: stored });
        }
        Ok(Some(bars))
    }

    fn generation(&self, symbol: &str) -> Result<Option<u64>, BarStoreError> {
        self.inner.generation(symbol)
    }

    fn reachable(&self) -> bool {
        self.inner.reachable()
    }

    fn wants_sample(&self) -> Result<bool, BarStoreError> {
        self.inner.wants_sample()
    }

    fn sample_loaded(&self) -> Result<(), BarStoreError> {
        self.inner.sample_loaded()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use dataport_core::market::bars::Date;

    use super::*;

    /// An in-memory store that counts its reads; when `shared`, it has a
    /// generation, as a store other replicas write does.
    #[derive(Default)]
    struct Counting {
        symbols: Mutex<HashMap<String, Vec<Bar>>>,
        reads: AtomicUsize,
        shared: bool,
        changes: AtomicU64,
        subscriber: Mutex<Option<super::super::Subscriber>>,
    }

    impl std::fmt::Debug for Counting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Counting").finish_non_exhaustive()
        }
    }

    impl BarStore for Counting {
        fn import(&self, symbol: &str, bars: &[Bar]) -> Result<usize, BarStoreError> {
            self.symbols.lock().unwrap().insert(symbol.to_owned(), bars.to_vec());
            self.changes.fetch_add(1, Ordering::Relaxed);
            Ok(bars.len())
        }

        fn generation(&self, _symbol: &str) -> Result<Option<u64>, BarStoreError> {
            Ok(self.shared.then(|| self.changes.load(Ordering::Relaxed)))
        }

        fn subscribe(&self, subscriber: super::super::Subscriber) {
            *self.subscriber.lock().unwrap() = Some(subscriber);
        }

        fn wants_sample(&self) -> Result<bool, BarStoreError> {
            Ok(false)
        }

        fn sample_loaded(&self) -> Result<(), BarStoreError> {
            Ok(())
        }

        fn symbols(&self) -> Result<Vec<SymbolSummary>, BarStoreError> {
            Ok(Vec::new())
        }

        fn bars(&self, symbol: &str) -> Result<Option<Arc<[Bar]>>, BarStoreError> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Ok(self.symbols.lock().unwrap().get(symbol).map(|b| b.as_slice().into()))
        }

        fn delete(&self, symbol: &str) -> Result<u64, BarStoreError> {
            Ok(self.symbols.lock().unwrap().remove(symbol).map_or(0, |b| b.len() as u64))
        }
    }

    fn days(n: u8, close: f64) -> Vec<Bar> {
        (1..=n)
            .map(|d| Bar {
                date: Date::new(2024, 1, d).unwrap(),
                open: close,
                high: close,
                low: close,
                close,
                volume: None,
                adj_close: None,
            })
            .collect()
    }

    fn reads(store: &CachedBarStore<Counting>) -> usize {
        store.inner.reads.load(Ordering::Relaxed)
    }

    #[test]
    fn a_symbol_is_read_from_the_store_once_until_it_is_imported_again() {
        let store = CachedBarStore::new(Counting::default(), 100);
        store.import("A", &days(3, 1.0)).unwrap();
        assert_eq!(store.bars("A").unwrap().unwrap().len(), 3);
        assert_eq!(store.bars("A").unwrap().unwrap().len(), 3);
        assert_eq!(reads(&store), 1);
        store.import("A", &days(5, 2.0)).unwrap();
        let bars = store.bars("A").unwrap().unwrap();
        assert_eq!((bars.len(), bars[0].close), (5, 2.0));
        assert_eq!(reads(&store), 2);
        // Unknown symbols are not cached.
        assert!(store.bars("B").unwrap().is_none());
        assert!(store.bars("B").unwrap().is_none());
        assert_eq!(reads(&store), 4);
        assert_eq!(store.stats(), CacheStats { hits: 1, misses: 4, bars: 5 });
    }

    #[test]
    fn a_deleted_symbol_is_not_answered_from_the_cache() {
        let store = CachedBarStore::new(Counting::default(), 100);
        store.import("A", &days(3, 1.0)).unwrap();
        assert!(store.bars("A").unwrap().is_some());
        assert_eq!(store.delete("A").unwrap(), 3);
        assert!(store.bars("A").unwrap().is_none());
        assert_eq!(store.cache().held, 0);
    }

    #[test]
    fn a_shared_store_written_elsewhere_is_reread_and_its_news_drops_entries() {
        let store = CachedBarStore::new(Counting { shared: true, ..Counting::default() }, 100);
        store.import("A", &days(3, 1.0)).unwrap();
        store.bars("A").unwrap();
        store.bars("A").unwrap();
        assert_eq!(reads(&store), 1, "an unchanged generation is a hit");
        // Another replica imports: the cache never saw it.
        store.inner.import("A", &days(5, 2.0)).unwrap();
        let bars = store.bars("A").unwrap().unwrap();
        assert_eq!((bars.len(), bars[0].close, reads(&store)), (5, 2.0, 2));
        // A notification drops the entry before any read; a reconnect drops all.
        let tell = store.inner.subscriber.lock().unwrap().clone().unwrap();
        tell(Changed::Symbol("A".into()));
        assert_eq!(store.cache().held, 0);
        store.import("B", &days(2, 1.0)).unwrap();
        store.bars("A").unwrap();
        store.bars("B").unwrap();
        tell(Changed::Everything);
        let cache = store.cache();
        assert_eq!((cache.held, cache.entries.len()), (0, 0));
    }

    #[test]
    fn the_least_recently_read_symbols_leave_first_and_the_budget_holds() {
        let store = CachedBarStore::new(Counting::default(), 10);
        for symbol in ["A", "B", "C"] {
            store.import(symbol, &days(4, 1.0)).unwrap();
        }
        store.bars("A").unwrap();
        store.bars("B").unwrap();
        store.bars("A").unwrap(); // A is now fresher than B
        store.bars("C").unwrap(); // 12 bars > 10: B leaves
        assert_eq!(store.cache().held, 8);
        assert_eq!(reads(&store), 3);
        store.bars("A").unwrap();
        assert_eq!(reads(&store), 3, "A stayed");
        store.bars("B").unwrap();
        assert_eq!(reads(&store), 4, "B was evicted");
        // A symbol larger than the whole budget is served, not kept.
        store.import("BIG", &days(11, 1.0)).unwrap();
        store.bars("BIG").unwrap();
        store.bars("BIG").unwrap();
        assert_eq!(reads(&store), 6);
        assert!(store.cache().held <= 10);
    }
}
