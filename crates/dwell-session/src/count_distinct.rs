//! `count`: DataFusion's own, with grouped accumulators for `count(DISTINCT x)` over strings and
//! dates.
//!
//! DataFusion 55 has a grouped accumulator for `count(DISTINCT x)` only when `x` is an integer.
//! For any other type it falls back to one hash set per group, driven one group at a time for
//! every batch. Session metrics count distinct users, days and applications per group
//! (`daily_session_metrics`, `user_session_stats`, and the queries analysts write over
//! `sessions`): with 50,000 users, that fallback made the per-user figures over 2.3M persisted
//! sessions 3.4 times slower (`benches/RESULTS.md`, 2026-12-03).
//!
//! This `count` is DataFusion's in every respect (each method delegates to it) except that it
//! groups `count(DISTINCT x)` over `Utf8`, `LargeUtf8` and `Utf8View` (each distinct value
//! numbered once, then one table of `(group, value number)` pairs), `Date32` (the day is its own
//! number) and `Date64` (DataFusion's primitive accumulator, which it does not enable for
//! dates). [`crate::register_all`]
//! registers it in place of DataFusion's.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, GenericStringBuilder, Int64Array,
    LargeStringArray, ListArray, StringArray, StringViewArray, StringViewBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Date32Type, Date64Type, Field, FieldRef};
use datafusion_common::{Result, ScalarValue, internal_datafusion_err, internal_err};
use datafusion_expr::expr::{AggregateFunction, AggregateFunctionParams, WindowFunctionParams};
use datafusion_expr::function::{
    AccumulatorArgs, AggregateFunctionSimplification, StateFieldsArgs,
};
use datafusion_expr::groups_accumulator::{EmitTo, GroupsAccumulator};
use datafusion_expr::utils::AggregateOrderSensitivity;
use datafusion_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Expr, Operator, ReversedUDAF,
    SetMonotonicity, Signature, StatisticsArgs,
};
use datafusion_functions_aggregate_common::aggregate::count_distinct::PrimitiveDistinctCountGroupsAccumulator;
use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

/// `count`, as DataFusion's, with grouped `count(DISTINCT x)` for strings and dates.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Count {
    inner: datafusion_functions_aggregate::count::Count,
}

/// The `count` aggregate function of this crate, registered by [`crate::register_all`].
#[must_use]
pub fn count_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::new_from_impl(Count::default()))
}

/// The grouped accumulator this crate adds for `args`, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grouped {
    Strings,
    Date32,
    Date64,
}

fn grouped(args: &AccumulatorArgs) -> Option<Grouped> {
    if !args.is_distinct || args.exprs.len() != 1 || args.expr_fields.len() != 1 {
        return None;
    }
    match args.expr_fields[0].data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Grouped::Strings),
        DataType::Date32 => Some(Grouped::Date32),
        DataType::Date64 => Some(Grouped::Date64),
        _ => None,
    }
}

impl AggregateUDFImpl for Count {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }
    fn schema_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.schema_name(params)
    }
    fn human_display(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.human_display(params)
    }
    fn window_function_schema_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.window_function_schema_name(params)
    }
    fn display_name(&self, params: &AggregateFunctionParams) -> Result<String> {
        self.inner.display_name(params)
    }
    fn window_function_display_name(&self, params: &WindowFunctionParams) -> Result<String> {
        self.inner.window_function_display_name(params)
    }
    fn signature(&self) -> &Signature {
        self.inner.signature()
    }
    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }
    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        self.inner.return_field(arg_fields)
    }
    fn is_nullable(&self) -> bool {
        self.inner.is_nullable()
    }
    fn accumulator(&self, acc_args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.accumulator(acc_args)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.inner.state_fields(args)
    }
    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        grouped(&args).is_some() || self.inner.groups_accumulator_supported(args)
    }
    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(match grouped(&args) {
            Some(Grouped::Strings) => Box::new(StringDistinctCountGroups::new(
                args.expr_fields[0].data_type().clone(),
            )),
            Some(Grouped::Date32) => Box::new(DayDistinctCountGroups::default()),
            Some(Grouped::Date64) => {
                Box::new(PrimitiveDistinctCountGroupsAccumulator::<Date64Type>::new())
            }
            None => return self.inner.create_groups_accumulator(args),
        })
    }
    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        self.inner.create_sliding_accumulator(args)
    }
    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        self.inner.order_sensitivity()
    }
    fn simplify(&self) -> Option<AggregateFunctionSimplification> {
        self.inner.simplify()
    }
    fn simplify_expr_op_literal(
        &self,
        agg_function: &AggregateFunction,
        arg: &Expr,
        op: Operator,
        lit: &Expr,
        arg_is_left: bool,
    ) -> Result<Option<Expr>> {
        self.inner
            .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
    }
    fn reverse_expr(&self) -> ReversedUDAF {
        self.inner.reverse_expr()
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }
    fn is_descending(&self) -> Option<bool> {
        self.inner.is_descending()
    }
    fn value_from_stats(&self, statistics_args: &StatisticsArgs) -> Option<ScalarValue> {
        self.inner.value_from_stats(statistics_args)
    }
    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.inner.default_value(data_type)
    }
    fn supports_null_handling_clause(&self) -> bool {
        self.inner.supports_null_handling_clause()
    }
    fn supports_within_group_clause(&self) -> bool {
        self.inner.supports_within_group_clause()
    }
    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
    fn set_monotonicity(&self, data_type: &DataType) -> SetMonotonicity {
        self.inner.set_monotonicity(data_type)
    }
}

/// A string column of any of the three layouts, read by row.
enum Strings<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    fn of(array: &'a dyn Array) -> Result<Self> {
        Ok(match array.data_type() {
            DataType::Utf8 => Strings::Utf8(array.as_string::<i32>()),
            DataType::LargeUtf8 => Strings::Large(array.as_string::<i64>()),
            DataType::Utf8View => Strings::View(array.as_string_view()),
            other => return internal_err!("count(DISTINCT) over strings got {other}"),
        })
    }

    /// Row `i`'s bytes, `None` when it is NULL.
    fn get(&self, i: usize) -> Option<&'a [u8]> {
        match self {
            Strings::Utf8(a) => a.is_valid(i).then(|| a.value(i).as_bytes()),
            Strings::Large(a) => a.is_valid(i).then(|| a.value(i).as_bytes()),
            Strings::View(a) => a.is_valid(i).then(|| a.value(i).as_bytes()),
        }
    }
}

/// The distinct values an accumulator has seen, each stored once and numbered from 0.
///
/// Session metrics count few distinct values (users, days, applications) over many pairs of
/// group and value: numbering the values keeps the pair table at eight bytes a pair, and the
/// value lookups in a table small enough for the cache.
#[derive(Debug, Default)]
struct Dictionary {
    arena: Vec<u8>,
    /// `(offset, len)` of each value's bytes in `arena`.
    spans: Vec<(usize, usize)>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
}

impl Dictionary {
    /// The number of `bytes`, added if new.
    fn id(&mut self, bytes: &[u8]) -> Result<u32> {
        let hash = xxh3_64(bytes);
        let Self {
            arena,
            spans,
            hashes,
            table,
        } = self;
        if let Some(&id) = table.find(hash, |&id| {
            let (offset, len) = spans[id as usize];
            &arena[offset..offset + len] == bytes
        }) {
            return Ok(id);
        }
        let id = u32::try_from(spans.len())
            .map_err(|_| internal_datafusion_err!("count(DISTINCT): more than u32::MAX values"))?;
        spans.push((arena.len(), bytes.len()));
        hashes.push(hash);
        arena.extend_from_slice(bytes);
        table.insert_unique(hash, id, |&id| hashes[id as usize]);
        Ok(id)
    }

    fn value(&self, id: u32) -> &[u8] {
        let (offset, len) = self.spans[id as usize];
        &self.arena[offset..offset + len]
    }

    fn size(&self) -> usize {
        self.arena.capacity()
            + self.spans.capacity() * size_of::<(usize, usize)>()
            + self.hashes.capacity() * size_of::<u64>()
            + self.table.capacity() * (size_of::<u32>() + 1)
    }
}

/// Distinct `(group, value number)` pairs, each one key with the group in the high half, and
/// how many pairs each group has.
#[derive(Debug, Default)]
struct Pairs {
    table: HashTable<u64>,
    counts: Vec<i64>,
}

fn pair_hash(pair: u64) -> u64 {
    xxh3_64(&pair.to_le_bytes())
}

fn pair_group(pair: u64) -> usize {
    (pair >> 32) as usize
}

#[expect(clippy::cast_possible_truncation, reason = "the low half, as meant")]
fn pair_value(pair: u64) -> u32 {
    pair as u32
}

impl Pairs {
    fn insert(&mut self, group: usize, value: u32) -> Result<()> {
        let high = u32::try_from(group)
            .map_err(|_| internal_datafusion_err!("count(DISTINCT): more than u32::MAX groups"))?;
        let key = (u64::from(high) << 32) | u64::from(value);
        let hash = pair_hash(key);
        if self.table.find(hash, |&p| p == key).is_none() {
            self.table.insert_unique(hash, key, |&p| pair_hash(p));
            self.counts[group] += 1;
        }
        Ok(())
    }

    /// The value numbers of the first `emitted` groups, each group's in one run, and the list
    /// offsets of the runs.
    fn emitted(&self, emitted: usize) -> Result<(OffsetBuffer<i32>, Vec<u32>)> {
        let offsets = list_offsets(self.counts[..emitted].iter().copied())?;
        let mut cursors: Vec<usize> = offsets[..emitted].iter().map(|&o| o as usize).collect();
        let mut values = vec![0_u32; offsets[emitted] as usize];
        for &p in &self.table {
            let group = pair_group(p);
            if group < emitted {
                values[cursors[group]] = pair_value(p);
                cursors[group] += 1;
            }
        }
        Ok((offsets, values))
    }

    /// Takes the counts of the groups `emit_to` emits and forgets their pairs; the groups left
    /// are numbered from 0 and their values by `renumber`.
    fn take(
        &mut self,
        emit_to: EmitTo,
        mut renumber: impl FnMut(u32) -> Result<u32>,
    ) -> Result<Vec<i64>> {
        let counts = emit_to.take_needed(&mut self.counts);
        match emit_to {
            EmitTo::All => self.table = HashTable::new(),
            EmitTo::First(n) => {
                let counts_left = std::mem::take(&mut self.counts);
                let old = std::mem::take(&mut self.table);
                self.counts = vec![0; counts_left.len()];
                for p in old {
                    let group = pair_group(p);
                    if group >= n {
                        self.insert(group - n, renumber(pair_value(p))?)?;
                    }
                }
                debug_assert_eq!(self.counts, counts_left);
            }
        }
        Ok(counts)
    }

    fn size(&self) -> usize {
        self.table.capacity() * (size_of::<u64>() + 1) + self.counts.capacity() * size_of::<i64>()
    }
}

/// `count(DISTINCT x)` for many groups at once over a string `x`: every distinct value once in
/// a dictionary, every distinct `(group, value)` once as a pair of numbers, so a batch costs
/// two probes per row whatever the number of groups.
#[derive(Debug)]
struct StringDistinctCountGroups {
    /// The argument's type, which the state's lists hold (DataFusion's `count` state fields).
    data_type: DataType,
    values: Dictionary,
    pairs: Pairs,
}

impl StringDistinctCountGroups {
    fn new(data_type: DataType) -> Self {
        Self {
            data_type,
            values: Dictionary::default(),
            pairs: Pairs::default(),
        }
    }

    /// The counts `emit_to` emits; their groups are forgotten, and the values only they held.
    fn take(&mut self, emit_to: EmitTo) -> Result<Vec<i64>> {
        let old = std::mem::take(&mut self.values);
        let mut kept = Dictionary::default();
        let counts = self.pairs.take(emit_to, |id| kept.id(old.value(id)))?;
        self.values = kept;
        Ok(counts)
    }

    /// `values` (the emitted groups' distinct values, in group order) as an array of the
    /// argument's type.
    fn values_array(&self, ids: &[u32]) -> Result<ArrayRef> {
        let text = |id: &u32| {
            std::str::from_utf8(self.values.value(*id))
                .map_err(|e| internal_datafusion_err!("count(DISTINCT) state: {e}"))
        };
        Ok(match self.data_type {
            DataType::Utf8 => {
                let mut b = GenericStringBuilder::<i32>::with_capacity(ids.len(), 0);
                for id in ids {
                    b.append_value(text(id)?);
                }
                Arc::new(b.finish())
            }
            DataType::LargeUtf8 => {
                let mut b = GenericStringBuilder::<i64>::with_capacity(ids.len(), 0);
                for id in ids {
                    b.append_value(text(id)?);
                }
                Arc::new(b.finish())
            }
            DataType::Utf8View => {
                let mut b = StringViewBuilder::with_capacity(ids.len());
                for id in ids {
                    b.append_value(text(id)?);
                }
                Arc::new(b.finish())
            }
            ref other => return internal_err!("count(DISTINCT) over strings got {other}"),
        })
    }
}

fn included(filter: Option<&BooleanArray>, row: usize) -> bool {
    filter.is_none_or(|f| f.is_valid(row) && f.value(row))
}

fn list_offsets(lengths: impl Iterator<Item = i64>) -> Result<OffsetBuffer<i32>> {
    let mut offsets = vec![0_i32];
    let mut total = 0_i64;
    for len in lengths {
        total += len;
        offsets.push(i32::try_from(total).map_err(|_| {
            internal_datafusion_err!("count(DISTINCT) state: more than i32::MAX values")
        })?);
    }
    Ok(OffsetBuffer::new(offsets.into()))
}

/// `convert_to_state` of either accumulator: each row its own group, a list of its value or
/// an empty list.
fn rows_as_lists(
    item: FieldRef,
    values: &[ArrayRef],
    opt_filter: Option<&BooleanArray>,
) -> Result<Vec<ArrayRef>> {
    let array = &values[0];
    let keep: BooleanArray = (0..array.len())
        .map(|row| Some(array.is_valid(row) && included(opt_filter, row)))
        .collect();
    let offsets = list_offsets(keep.iter().map(|k| i64::from(k == Some(true))))?;
    let kept = arrow::compute::filter(array.as_ref(), &keep)?;
    let list = ListArray::try_new(item, offsets, kept, None)?;
    Ok(vec![Arc::new(list)])
}

impl GroupsAccumulator for StringDistinctCountGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.pairs.counts.resize(total_num_groups, 0);
        let strings = Strings::of(values[0].as_ref())?;
        // A user's sessions come together: a repeat of the row before is skipped.
        let mut previous: Option<(usize, &[u8])> = None;
        for (row, &group) in group_indices.iter().enumerate() {
            if included(opt_filter, row)
                && let Some(bytes) = strings.get(row)
                && previous != Some((group, bytes))
            {
                self.pairs.insert(group, self.values.id(bytes)?)?;
                previous = Some((group, bytes));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(self.take(emit_to)?)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let emitted = match emit_to {
            EmitTo::All => self.pairs.counts.len(),
            EmitTo::First(n) => n,
        };
        let (offsets, ids) = self.pairs.emitted(emitted)?;
        let values = self.values_array(&ids)?;
        let item = Arc::new(Field::new_list_field(self.data_type.clone(), true));
        let list = ListArray::try_new(item, offsets, values, None)?;
        self.take(emit_to)?;
        Ok(vec![Arc::new(list)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.pairs.counts.resize(total_num_groups, 0);
        let lists = values[0].as_list::<i32>();
        let strings = Strings::of(lists.values().as_ref())?;
        let offsets = lists.value_offsets();
        for (row, &group) in group_indices.iter().enumerate() {
            if lists.is_null(row) {
                continue;
            }
            let (start, end) = (offsets[row], offsets[row + 1]);
            for i in start as usize..end as usize {
                if let Some(bytes) = strings.get(i) {
                    self.pairs.insert(group, self.values.id(bytes)?)?;
                }
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let item = Arc::new(Field::new_list_field(self.data_type.clone(), true));
        rows_as_lists(item, values, opt_filter)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.values.size() + self.pairs.size()
    }
}

/// `count(DISTINCT x)` for many groups at once over a `Date32` `x`: the day itself is the
/// pair's value number. DataFusion's primitive accumulator keeps a hash set of
/// `(usize, i32)` with a keyed hasher, twice the memory and several times the hashing.
#[derive(Debug, Default)]
struct DayDistinctCountGroups {
    pairs: Pairs,
}

impl DayDistinctCountGroups {
    fn item() -> FieldRef {
        Arc::new(Field::new_list_field(DataType::Date32, true))
    }
}

impl GroupsAccumulator for DayDistinctCountGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.pairs.counts.resize(total_num_groups, 0);
        let days = values[0].as_primitive::<Date32Type>();
        let mut previous: Option<(usize, i32)> = None;
        for (row, &group) in group_indices.iter().enumerate() {
            if included(opt_filter, row) && days.is_valid(row) {
                let day = days.value(row);
                if previous != Some((group, day)) {
                    self.pairs.insert(group, day.cast_unsigned())?;
                    previous = Some((group, day));
                }
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        Ok(Arc::new(Int64Array::from(self.pairs.take(emit_to, Ok)?)))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let emitted = match emit_to {
            EmitTo::All => self.pairs.counts.len(),
            EmitTo::First(n) => n,
        };
        let (offsets, ids) = self.pairs.emitted(emitted)?;
        let days = Date32Array::from(ids.into_iter().map(u32::cast_signed).collect::<Vec<_>>());
        let list = ListArray::try_new(Self::item(), offsets, Arc::new(days), None)?;
        self.pairs.take(emit_to, Ok)?;
        Ok(vec![Arc::new(list)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.pairs.counts.resize(total_num_groups, 0);
        let lists = values[0].as_list::<i32>();
        let days = lists.values().as_primitive::<Date32Type>();
        let offsets = lists.value_offsets();
        for (row, &group) in group_indices.iter().enumerate() {
            if lists.is_null(row) {
                continue;
            }
            for i in offsets[row] as usize..offsets[row + 1] as usize {
                if days.is_valid(i) {
                    self.pairs.insert(group, days.value(i).cast_unsigned())?;
                }
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        rows_as_lists(Self::item(), values, opt_filter)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.pairs.size()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arrow::array::{LargeStringArray, StringArray, StringViewArray};
    use proptest::prelude::*;

    use super::*;

    /// One step on the accumulator, mirrored on the model.
    #[derive(Debug, Clone)]
    enum Step {
        /// Rows `(group, value, included by the filter)`.
        Update(Vec<(usize, Option<String>, bool)>),
        /// The same rows, through `convert_to_state` and `merge_batch`.
        ConvertMerge(Vec<(usize, Option<String>, bool)>),
        /// `evaluate(First(n))`, or `All` when `n` is at least the number of groups.
        Evaluate(usize),
        /// `state(First(n))` merged into a fresh accumulator, then evaluated there.
        StateRoundTrip(usize),
    }

    fn rows() -> impl Strategy<Value = Vec<(usize, Option<String>, bool)>> {
        prop::collection::vec(
            (
                0..6_usize,
                prop::option::weighted(0.85, "[ab]{0,3}|long string value [a-c]"),
                prop::bool::weighted(0.9),
            ),
            0..40,
        )
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            prop_oneof![
                3 => rows().prop_map(Step::Update),
                2 => rows().prop_map(Step::ConvertMerge),
                1 => (0..8_usize).prop_map(Step::Evaluate),
                1 => (0..8_usize).prop_map(Step::StateRoundTrip),
            ],
            1..12,
        )
    }

    fn array(data_type: &DataType, values: &[Option<String>]) -> ArrayRef {
        let values = values.iter().map(Option::as_deref);
        match data_type {
            DataType::Utf8 => Arc::new(values.collect::<StringArray>()),
            DataType::LargeUtf8 => Arc::new(values.collect::<LargeStringArray>()),
            DataType::Date32 => Arc::new(values.map(|v| v.map(day)).collect::<Date32Array>()),
            _ => Arc::new(values.collect::<StringViewArray>()),
        }
    }

    /// A different day for each value `rows` draws, negative ones (before 1970) too.
    fn day(value: &str) -> i32 {
        match value.strip_prefix("long string value ") {
            Some(last) => 1_000 + i32::from(last.as_bytes()[0]),
            // Bijective base 2 over `a` = 1 and `b` = 2: each string of up to three its own.
            None => {
                value
                    .bytes()
                    .fold(0, |n, c| n * 2 + i32::from(c - b'a' + 1))
                    - 20
            }
        }
    }

    fn accumulator(data_type: &DataType) -> Box<dyn GroupsAccumulator> {
        match data_type {
            DataType::Date32 => Box::new(DayDistinctCountGroups::default()),
            other => Box::new(StringDistinctCountGroups::new(other.clone())),
        }
    }

    fn counts(array: &ArrayRef) -> Vec<i64> {
        array
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    }

    fn emit(n: usize, groups: usize) -> EmitTo {
        if n >= groups {
            EmitTo::All
        } else {
            EmitTo::First(n)
        }
    }

    /// Which types each `count` groups `count(DISTINCT x)` for: this one where DataFusion's
    /// does, and for strings and dates besides; never for `count(x)` differently.
    #[test]
    fn groups_distinct_strings_and_dates() {
        use arrow::datatypes::Schema;
        use datafusion_physical_expr::PhysicalExpr;
        use datafusion_physical_expr::expressions::Column;

        let ours = Count::default();
        let theirs = datafusion_functions_aggregate::count::Count::new();
        for (data_type, added) in [
            (DataType::Utf8, true),
            (DataType::LargeUtf8, true),
            (DataType::Utf8View, true),
            (DataType::Date32, true),
            (DataType::Date64, true),
            (DataType::Int64, false),
            (DataType::Float64, false),
            (DataType::Boolean, false),
        ] {
            for distinct in [true, false] {
                let schema = Schema::new(vec![Field::new("x", data_type.clone(), true)]);
                let exprs: Vec<Arc<dyn PhysicalExpr>> = vec![Arc::new(Column::new("x", 0))];
                let fields: Vec<FieldRef> = vec![Arc::new(schema.field(0).clone())];
                let args = || AccumulatorArgs {
                    return_field: Arc::new(Field::new("n", DataType::Int64, false)),
                    schema: &schema,
                    ignore_nulls: false,
                    order_bys: &[],
                    is_reversed: false,
                    name: "count(x)",
                    is_distinct: distinct,
                    exprs: &exprs,
                    expr_fields: &fields,
                };
                let theirs = theirs.groups_accumulator_supported(args());
                let want = theirs || (distinct && added);
                assert_eq!(
                    ours.groups_accumulator_supported(args()),
                    want,
                    "{data_type} distinct={distinct}"
                );
                assert_eq!(grouped(&args()).is_some(), distinct && added);
                if want {
                    ours.create_groups_accumulator(args()).expect("accumulator");
                }
            }
        }
    }

    proptest! {
        /// Every step gives what a set of values per group gives.
        #[test]
        fn equals_a_set_per_group(
            steps in steps(),
            data_type in prop_oneof![
                Just(DataType::Utf8), Just(DataType::LargeUtf8), Just(DataType::Utf8View),
                Just(DataType::Date32)],
        ) {
            let mut acc = accumulator(&data_type);
            let mut model: Vec<BTreeSet<String>> = Vec::new();
            for step in steps {
                match step {
                    Step::Update(rows) | Step::ConvertMerge(rows) if rows.is_empty() => {}
                    Step::Update(ref rows) | Step::ConvertMerge(ref rows) => {
                        let total = model.len().max(rows.iter().map(|r| r.0 + 1).max().unwrap_or(0));
                        model.resize(total, BTreeSet::new());
                        for (group, value, kept) in rows {
                            if *kept && let Some(v) = value {
                                model[*group].insert(v.clone());
                            }
                        }
                        let groups: Vec<usize> = rows.iter().map(|r| r.0).collect();
                        let values: Vec<Option<String>> = rows.iter().map(|r| r.1.clone()).collect();
                        let filter: BooleanArray = rows.iter().map(|r| Some(r.2)).collect();
                        let values = array(&data_type, &values);
                        if matches!(step, Step::Update(_)) {
                            acc.update_batch(&[values], &groups, Some(&filter), total)?;
                        } else {
                            let state = acc.convert_to_state(&[values], Some(&filter))?;
                            prop_assert_eq!(state[0].len(), rows.len());
                            acc.merge_batch(&state, &groups, total)?;
                        }
                    }
                    Step::Evaluate(n) => {
                        let to = emit(n, model.len());
                        let got = counts(&acc.evaluate(to)?);
                        let taken: Vec<BTreeSet<String>> = model.drain(..n.min(model.len())).collect();
                        let want: Vec<i64> = taken.iter().map(|s| s.len() as i64).collect();
                        prop_assert_eq!(got, want);
                    }
                    Step::StateRoundTrip(n) => {
                        let to = emit(n, model.len());
                        let state = acc.state(to)?;
                        let taken: Vec<BTreeSet<String>> = model.drain(..n.min(model.len())).collect();
                        prop_assert_eq!(state[0].len(), taken.len());
                        let mut other = accumulator(&data_type);
                        let groups: Vec<usize> = (0..taken.len()).collect();
                        other.merge_batch(&state, &groups, taken.len())?;
                        let want: Vec<i64> = taken.iter().map(|s| s.len() as i64).collect();
                        prop_assert_eq!(counts(&other.evaluate(EmitTo::All)?), want);
                    }
                }
            }
            // What is left, all at once.
            let want: Vec<i64> = model.iter().map(|s| s.len() as i64).collect();
            prop_assert_eq!(counts(&acc.evaluate(EmitTo::All)?), want);
        }
    }
}
