//! The set of `event_id`s seen on one timeline, for dropping duplicates (SESSIONS.md §2).

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

/// Exact set of strings without one allocation per entry: the bytes live in one arena and the
/// table holds `(hash, offset, len)`.
#[derive(Debug, Default)]
pub(crate) struct EventIdSet {
    arena: Vec<u8>,
    table: HashTable<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    offset: usize,
    len: usize,
}

impl EventIdSet {
    /// Forgets every id, keeping the memory for the next timeline.
    pub(crate) fn clear(&mut self) {
        self.arena.clear();
        self.table.clear();
    }

    /// Adds `id`; `false` when it was already there.
    pub(crate) fn insert(&mut self, id: &str) -> bool {
        let bytes = id.as_bytes();
        let hash = xxh3_64(bytes);
        let arena = &self.arena;
        let found = self.table.find(hash, |e| {
            e.hash == hash && &arena[e.offset..e.offset + e.len] == bytes
        });
        if found.is_some() {
            return false;
        }
        let entry = Entry {
            hash,
            offset: self.arena.len(),
            len: bytes.len(),
        };
        self.arena.extend_from_slice(bytes);
        self.table.insert_unique(hash, entry, |e| e.hash);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::EventIdSet;

    #[test]
    fn remembers_ids_exactly() {
        let mut set = EventIdSet::default();
        assert!(set.insert("a"));
        assert!(set.insert("ab"));
        assert!(set.insert(""));
        assert!(!set.insert("a"));
        assert!(!set.insert("ab"));
        assert!(!set.insert(""));
        for i in 0..10_000 {
            assert!(set.insert(&format!("id-{i}")));
        }
        for i in 0..10_000 {
            assert!(!set.insert(&format!("id-{i}")));
        }
    }
}
