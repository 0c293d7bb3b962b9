//! The newest position of every entity, and the watchers waiting for changes.
//!
//! A publisher never waits for a watcher: it overwrites the watcher's pending
//! slot for that entity and wakes it. A watcher therefore holds at most one
//! pending position per entity, however slowly its client reads, and the
//! revisions it sees show what it skipped.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::SystemTime;

use dataport_core::position::{DEFAULT_ENTITY, INITIAL_POSITION, Vec3};
use tokio::sync::Notify;

/// One entity's position as of one publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub entity: Arc<str>,
    pub position: Vec3,
    pub time: SystemTime,
    pub revision: u64,
}

/// The hub is full.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("entity {entity:?} is new, but the server keeps at most {limit} entities (--max-entities)")]
pub struct TooManyEntities {
    pub entity: String,
    pub limit: usize,
}

#[derive(Debug)]
pub struct Hub {
    state: Mutex<State>,
    max_entities: usize,
}

#[derive(Debug)]
struct State {
    entities: HashMap<Arc<str>, Snapshot>,
    watchers: Vec<Weak<Watcher>>,
}

/// The receiving end of a watch; the hub forgets it once it is dropped.
#[derive(Debug)]
pub struct Watcher {
    /// `None` watches every entity.
    filter: Option<HashSet<String>>,
    pending: Mutex<Pending>,
    wake: Notify,
}

/// Positions not yet taken by the watcher, at most one per entity, in the
/// order their entities first became pending.
#[derive(Debug, Default)]
struct Pending {
    order: Vec<Snapshot>,
    index: HashMap<Arc<str>, usize>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here can leave the state half-updated across a panic, so a
    // poisoned lock still guards consistent data.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    /// A hub holding only "default" at its initial position.
    pub fn new(max_entities: usize) -> Self {
        let default: Arc<str> = Arc::from(DEFAULT_ENTITY);
        let initial = Snapshot {
            entity: Arc::clone(&default),
            position: INITIAL_POSITION,
            time: SystemTime::now(),
            revision: 0,
        };
        Hub {
            state: Mutex::new(State { entities: HashMap::from([(default, initial)]), watchers: Vec::new() }),
            max_entities,
        }
    }

    /// Records `position` for `entity` (already validated) and hands it to
    /// every watcher that wants it.
    pub fn publish(&self, entity: &str, position: Vec3) -> Result<Snapshot, TooManyEntities> {
        let mut state = lock(&self.state);
        let len = state.entities.len();
        let snapshot = match state.entities.get_mut(entity) {
            Some(current) => {
                current.position = position;
                current.time = SystemTime::now();
                current.revision += 1;
                current.clone()
            }
            None if len >= self.max_entities => {
                return Err(TooManyEntities { entity: entity.to_owned(), limit: self.max_entities });
            }
            None => {
                let entity: Arc<str> = Arc::from(entity);
                let snapshot =
                    Snapshot { entity: Arc::clone(&entity), position, time: SystemTime::now(), revision: 1 };
                state.entities.insert(entity, snapshot.clone());
                snapshot
            }
        };
        state.watchers.retain(|w| match w.upgrade() {
            Some(watcher) => {
                watcher.offer(&snapshot);
                true
            }
            None => false,
        });
        Ok(snapshot)
    }

    /// Takes `snapshot`, published through any replica of a shared store,
    /// unless the hub holds that revision of its entity or a later one; a
    /// taken one goes to every watcher that wants it. The shared store keeps
    /// the entity limit. Returns whether it was taken.
    pub fn apply(&self, snapshot: Snapshot) -> bool {
        let mut state = lock(&self.state);
        if state.entities.get(&snapshot.entity).is_some_and(|held| held.revision >= snapshot.revision) {
            return false;
        }
        state.entities.insert(Arc::clone(&snapshot.entity), snapshot.clone());
        state.watchers.retain(|w| match w.upgrade() {
            Some(watcher) => {
                watcher.offer(&snapshot);
                true
            }
            None => false,
        });
        true
    }

    pub fn get(&self, entity: &str) -> Option<Snapshot> {
        lock(&self.state).entities.get(entity).cloned()
    }

    /// How many entities have a position, and how many watchers are
    /// registered, for the metrics.
    pub fn counts(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.entities.len(), state.watchers.iter().filter(|w| w.strong_count() > 0).count())
    }

    /// Registers a watcher for `entities` (every entity when empty). It sees
    /// every publish that starts after this returns.
    pub fn watch(&self, entities: Vec<String>) -> Arc<Watcher> {
        let watcher = Arc::new(Watcher {
            filter: (!entities.is_empty()).then(|| entities.into_iter().collect()),
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
        });
        let mut state = lock(&self.state);
        state.watchers.retain(|w| w.strong_count() > 0);
        state.watchers.push(Arc::downgrade(&watcher));
        drop(state);
        watcher
    }
}

impl Watcher {
    fn offer(&self, snapshot: &Snapshot) {
        if self.filter.as_ref().is_some_and(|f| !f.contains(&*snapshot.entity)) {
            return;
        }
        let mut pending = lock(&self.pending);
        match pending.index.get(&snapshot.entity) {
            Some(&i) => pending.order[i] = snapshot.clone(),
            None => {
                let i = pending.order.len();
                pending.index.insert(Arc::clone(&snapshot.entity), i);
                pending.order.push(snapshot.clone());
            }
        }
        drop(pending);
        self.wake.notify_one();
    }

    /// Takes everything pending, waiting until something is.
    pub async fn next_batch(&self) -> Vec<Snapshot> {
        loop {
            {
                let mut pending = lock(&self.pending);
                if !pending.order.is_empty() {
                    pending.index.clear();
                    return std::mem::take(&mut pending.order);
                }
            }
            // A publish between the check above and this wait leaves a permit,
            // so it is not missed.
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(x: f64) -> Vec3 {
        Vec3 { x, y: 0.0, z: 0.0 }
    }

    #[test]
    fn default_exists_before_any_publish() {
        let hub = Hub::new(10);
        let s = hub.get(DEFAULT_ENTITY).expect("default exists");
        assert_eq!((s.position, s.revision), (INITIAL_POSITION, 0));
        assert!(hub.get("other").is_none());
    }

    #[test]
    fn revisions_count_publishes_per_entity() {
        let hub = Hub::new(10);
        assert_eq!(hub.publish("a", at(1.0)).expect("room").revision, 1);
        assert_eq!(hub.publish("a", at(2.0)).expect("room").revision, 2);
        assert_eq!(hub.publish(DEFAULT_ENTITY, at(3.0)).expect("room").revision, 1);
        assert_eq!(hub.get("a").expect("exists").position, at(2.0));
    }

    #[test]
    fn new_entities_past_the_limit_are_refused_but_known_ones_update() {
        let hub = Hub::new(2);
        hub.publish("a", at(1.0)).expect("room");
        assert_eq!(hub.publish("b", at(1.0)), Err(TooManyEntities { entity: "b".into(), limit: 2 }));
        hub.publish("a", at(2.0)).expect("known entity");
        assert!(hub.get("b").is_none());
    }

    #[tokio::test]
    async fn a_slow_watcher_keeps_only_the_newest_position_per_entity() {
        let hub = Hub::new(10);
        let watcher = hub.watch(vec![]);
        for i in 0..1000 {
            hub.publish("a", at(f64::from(i))).expect("room");
            hub.publish("b", at(f64::from(i))).expect("room");
        }
        let batch = watcher.next_batch().await;
        let got: Vec<_> = batch.iter().map(|s| (&*s.entity, s.position.x, s.revision)).collect();
        assert_eq!(got, [("a", 999.0, 1000), ("b", 999.0, 1000)]);
    }

    #[tokio::test]
    async fn watchers_see_only_the_entities_they_asked_for() {
        let hub = Hub::new(10);
        let watcher = hub.watch(vec!["b".into()]);
        hub.publish("a", at(1.0)).expect("room");
        hub.publish("b", at(2.0)).expect("room");
        let batch = watcher.next_batch().await;
        assert_eq!(batch.len(), 1);
        assert_eq!(&*batch[0].entity, "b");
    }

    #[tokio::test]
    async fn a_waiting_watcher_wakes_on_publish() {
        let hub = Arc::new(Hub::new(10));
        let watcher = hub.watch(vec!["a".into()]);
        let publisher = Arc::clone(&hub);
        let task = tokio::spawn(async move { watcher.next_batch().await });
        tokio::task::yield_now().await;
        publisher.publish("a", at(5.0)).expect("room");
        let batch = task.await.expect("joins");
        assert_eq!(batch[0].position, at(5.0));
    }

    #[tokio::test]
    async fn applied_snapshots_reach_watchers_once_and_never_go_back() {
        let hub = Hub::new(1);
        let watcher = hub.watch(vec![]);
        let snapshot = |entity: &str, x, revision| Snapshot {
            entity: Arc::from(entity),
            position: at(x),
            time: SystemTime::now(),
            revision,
        };
        assert!(hub.apply(snapshot("a", 1.0, 3)), "the shared store keeps the limit, not the hub");
        assert!(!hub.apply(snapshot("a", 1.0, 3)), "the same revision again (the publisher's own news)");
        assert!(!hub.apply(snapshot("a", 0.5, 2)), "an older one");
        assert!(hub.apply(snapshot("default", 2.0, 1)));
        let batch = watcher.next_batch().await;
        let got: Vec<_> = batch.iter().map(|s| (&*s.entity, s.revision)).collect();
        assert_eq!(got, [("a", 3), ("default", 1)]);
        assert_eq!(hub.get("a").unwrap().position, at(1.0));
    }

    #[test]
    fn dropped_watchers_are_forgotten() {
        let hub = Hub::new(10);
        let kept = hub.watch(vec![]);
        drop(hub.watch(vec![]));
        assert_eq!(hub.counts().1, 1);
        drop(kept);
        hub.publish("a", at(1.0)).expect("room");
        assert!(lock(&hub.state).watchers.is_empty());
        assert_eq!(hub.counts(), (2, 0), "the default entity and a");
    }
}
