//! The in-memory sort of [`Mode::SortInMemory`](super::Mode::SortInMemory): rows ordered by
//! (dense rank of the partition keys, first order key as an integer, row), ties by every key.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, make_comparator};
use arrow::compute::{SortColumn, SortOptions, cast};
use arrow::datatypes::{DataType, Int64Type};
use arrow::error::ArrowError;
use arrow::row::{RowConverter, SortField};
use datafusion_common::Result;
use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

/// The order of a partition's rows (batch, row) under the sort, and the positions in that
/// order where each window partition starts.
#[derive(Debug)]
pub(crate) struct SortedOrder {
    pub(crate) rows: Vec<(usize, usize)>,
    pub(crate) partition_starts: Vec<usize>,
}

impl SortedOrder {
    /// Sorts the rows of several batches, given each batch's sort columns (each with its
    /// options), of which the first `partition_keys` are the window's partition keys.
    pub(crate) fn of(batches: &[Vec<SortColumn>], partition_keys: usize) -> Result<Self> {
        // Global row number -> (batch, row).
        let located: Vec<(usize, usize)> = batches
            .iter()
            .enumerate()
            .flat_map(|(b, columns)| {
                let rows = columns.first().map_or(0, |c| c.values.len());
                (0..rows).map(move |r| (b, r))
            })
            .collect();
        let n = located.len();
        if u32::try_from(n).is_err() {
            return Err(datafusion_common::DataFusionError::ResourcesExhausted(
                format!("SessionizeExec: {n} rows in one partition; raise target_partitions"),
            ));
        }
        let ranks = partition_ranks(batches, partition_keys, n)?;
        let mut first = Vec::with_capacity(n);
        for columns in batches {
            match columns.get(partition_keys).and_then(order_preserving_u64) {
                Some(keys) => first.extend(keys),
                None => first.resize(
                    first.len() + columns.first().map_or(0, |c| c.values.len()),
                    0,
                ),
            }
        }
        let mut keyed: Vec<(u32, u64, u32)> = (0..n)
            .map(|row| (ranks[row], first[row], row as u32))
            .collect();
        drop(first);
        drop(ranks);
        keyed.sort_unstable();
        // Rows equal in rank and first key: order them by every key.
        let mut start = 0;
        while start < n {
            let (rank, key, _) = keyed[start];
            let mut end = start + 1;
            while end < n && keyed[end].0 == rank && keyed[end].1 == key {
                end += 1;
            }
            if end - start > 1 {
                let mut failed = None;
                keyed[start..end].sort_by(|a, b| {
                    compare_rows(batches, located[a.2 as usize], located[b.2 as usize])
                        .unwrap_or_else(|e| {
                            failed.get_or_insert(e);
                            Ordering::Equal
                        })
                });
                if let Some(e) = failed {
                    return Err(e.into());
                }
            }
            start = end;
        }
        let mut partition_starts = Vec::new();
        for (i, k) in keyed.iter().enumerate() {
            if i == 0 || keyed[i - 1].0 != k.0 {
                partition_starts.push(i);
            }
        }
        let rows = keyed
            .into_iter()
            .map(|(_, _, row)| located[row as usize])
            .collect();
        Ok(Self {
            rows,
            partition_starts,
        })
    }
}

/// Compares two rows, each of any batch, on every sort key.
fn compare_rows(
    batches: &[Vec<SortColumn>],
    (left_batch, left_row): (usize, usize),
    (right_batch, right_row): (usize, usize),
) -> Result<Ordering, ArrowError> {
    for (left, right) in batches[left_batch].iter().zip(&batches[right_batch]) {
        let compare = make_comparator(
            left.values.as_ref(),
            right.values.as_ref(),
            left.options.unwrap_or_default(),
        )?;
        match compare(left_row, right_row) {
            Ordering::Equal => {}
            unequal => return Ok(unequal),
        }
    }
    Ok(Ordering::Equal)
}

/// Dense ranks of the rows' partition-key tuples (the first `partition_keys` columns of each
/// batch), in the tuples' sort order: equal tuples get equal ranks, and a smaller rank sorts
/// first.
fn partition_ranks(
    batches: &[Vec<SortColumn>],
    partition_keys: usize,
    n: usize,
) -> Result<Vec<u32>> {
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    if partition_keys == 0 {
        return Ok(vec![0; n]);
    }
    let fields = first[..partition_keys]
        .iter()
        .map(|c| {
            SortField::new_with_options(c.values.data_type().clone(), c.options.unwrap_or_default())
        })
        .collect();
    let converter = RowConverter::new(fields)?;
    let mut rows = converter.empty_rows(n, n * 16);
    for columns in batches {
        let arrays: Vec<ArrayRef> = columns[..partition_keys]
            .iter()
            .map(|c| Arc::clone(&c.values))
            .collect();
        converter.append(&mut rows, &arrays)?;
    }
    // Distinct tuples, by first appearance.
    let mut distinct: Vec<usize> = Vec::new();
    let mut table: HashTable<u32> = HashTable::new();
    let mut group_of_row = Vec::with_capacity(n);
    for i in 0..n {
        let row = rows.row(i);
        let hash = xxh3_64(row.as_ref());
        let group = *table
            .entry(
                hash,
                |&g| rows.row(distinct[g as usize]) == row,
                |&g| xxh3_64(rows.row(distinct[g as usize]).as_ref()),
            )
            .or_insert_with(|| {
                distinct.push(i);
                (distinct.len() - 1) as u32
            })
            .get();
        group_of_row.push(group);
    }
    // The row format compares as the sort does, so sorting the distinct tuples ranks them.
    let mut by_order: Vec<u32> = (0..distinct.len() as u32).collect();
    by_order.sort_unstable_by(|&a, &b| {
        rows.row(distinct[a as usize])
            .cmp(&rows.row(distinct[b as usize]))
    });
    let mut rank_of = vec![0u32; distinct.len()];
    for (rank, &group) in by_order.iter().enumerate() {
        rank_of[group as usize] = rank as u32;
    }
    Ok(group_of_row
        .into_iter()
        .map(|g| rank_of[g as usize])
        .collect())
}

/// The column as integers whose order agrees with the column's sort (ties allowed), when it is
/// an integer or timestamp column; `None` for other types, which are then ordered by the
/// comparator alone.
fn order_preserving_u64(column: &SortColumn) -> Option<Vec<u64>> {
    let values = &column.values;
    let integral = matches!(
        values.data_type(),
        DataType::Timestamp(_, _)
            | DataType::Int64
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
            | DataType::Date32
            | DataType::Date64
    );
    if !integral {
        return None;
    }
    let options: SortOptions = column.options.unwrap_or_default();
    let as_i64 = cast(values, &DataType::Int64).ok()?;
    let ints = as_i64.as_primitive::<Int64Type>();
    let null_key = if options.nulls_first { 0 } else { u64::MAX };
    Some(
        (0..ints.len())
            .map(|i| {
                if ints.is_null(i) {
                    null_key
                } else {
                    // Flipping the sign bit maps i64 order onto u64 order.
                    let key = (ints.value(i) as u64) ^ (1 << 63);
                    if options.descending { !key } else { key }
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{StringArray, TimestampMicrosecondArray};
    use arrow::compute::{LexicographicalComparator, lexsort_to_indices};
    use proptest::prelude::*;

    fn column(values: ArrayRef, descending: bool, nulls_first: bool) -> SortColumn {
        SortColumn {
            values,
            options: Some(SortOptions {
                descending,
                nulls_first,
            }),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The fast order equals arrow's lexicographic sort, up to rows equal in every key.
        #[test]
        fn sorted_order_matches_lexsort(
            rows in proptest::collection::vec(
                (proptest::option::of(0..4u8), proptest::option::of(0..5u8),
                 proptest::option::of(-3..3i64), proptest::option::of(0..3u8)),
                0..80),
            options in proptest::collection::vec((any::<bool>(), any::<bool>()), 4),
            partition_keys in 0..3usize,
            cuts in proptest::collection::vec(1..30usize, 0..6),
        ) {
            let users: ArrayRef = Arc::new(
                rows.iter().map(|r| r.0.map(|v| format!("u{v}"))).collect::<StringArray>());
            let accounts: ArrayRef = Arc::new(
                rows.iter().map(|r| r.1.map(|v| format!("a{v}"))).collect::<StringArray>());
            // Extreme times too, where the order-preserving key saturates.
            let times: ArrayRef = Arc::new(
                rows.iter()
                    .map(|r| r.2.map(|t| if t == 2 { i64::MAX } else if t == -3 { i64::MIN } else { t }))
                    .collect::<TimestampMicrosecondArray>());
            let ids: ArrayRef = Arc::new(
                rows.iter().map(|r| r.3.map(|v| format!("e{v}"))).collect::<StringArray>());
            let mut keys = vec![users, accounts];
            keys.truncate(partition_keys);
            keys.push(times);
            keys.push(ids);
            let columns: Vec<SortColumn> = keys
                .into_iter()
                .zip(&options)
                .map(|(values, &(descending, nulls_first))| column(values, descending, nulls_first))
                .collect();
            // The same rows cut into batches at random places.
            let mut batches: Vec<Vec<SortColumn>> = Vec::new();
            let mut offsets = Vec::new();
            let mut offset = 0;
            for &cut in &cuts {
                let len = cut.min(rows.len() - offset);
                if len == 0 {
                    continue;
                }
                batches.push(
                    columns
                        .iter()
                        .map(|c| SortColumn { values: c.values.slice(offset, len), options: c.options })
                        .collect(),
                );
                offsets.push(offset);
                offset += len;
            }
            if offset < rows.len() {
                batches.push(
                    columns
                        .iter()
                        .map(|c| SortColumn { values: c.values.slice(offset, rows.len() - offset), options: c.options })
                        .collect(),
                );
                offsets.push(offset);
            }
            let order = SortedOrder::of(&batches, partition_keys).expect("sort");
            let got: Vec<usize> = order.rows.iter().map(|&(b, r)| offsets[b] + r).collect();
            let expected = lexsort_to_indices(&columns, None).expect("lexsort");
            let comparator = LexicographicalComparator::try_new(&columns).expect("comparator");
            prop_assert_eq!(got.len(), expected.len());
            for (g, want) in got.iter().zip(expected.values()) {
                prop_assert_eq!(
                    comparator.compare(*g, *want as usize),
                    std::cmp::Ordering::Equal
                );
            }
            // A window partition starts wherever the partition keys change.
            let starts: Vec<usize> = (0..got.len())
                .filter(|&i| {
                    i == 0 || (0..partition_keys).any(|k| {
                        let c = LexicographicalComparator::try_new(&columns[k..=k]).expect("c");
                        c.compare(got[i - 1], got[i]) != std::cmp::Ordering::Equal
                    })
                })
                .collect();
            prop_assert_eq!(order.partition_starts, starts);
        }
    }
}
