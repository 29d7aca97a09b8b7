//! Which stored session rows are live: every row carries its key `(row_version, row_index)`
//! (the commit that wrote it, and its position among the rows that commit wrote), and a
//! retraction is a copy of the retracted row, key and all. So the live rows are those whose key
//! no retraction carries, the retractions included, and a query over `sessions` tests two
//! integer columns against an in-memory set instead of filtering by `op` and by session id
//! (which made every query after an ingest decode all session ids and plan a literal per
//! retraction: 0.16 s of 0.41 s at 10M, `benches/RESULTS.md`).
//!
//! The set travels inside the filter, [`LiveRowFilter`], a scalar function holding it: a view
//! captures the set of the refresh that built it, and a cluster codec sends it whole
//! ([`LiveRowFilter::encode`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{Expr, col};

use super::upkeep::{ROW_INDEX, ROW_VERSION};

/// The function's name, as plans show it.
const NAME: &str = "_dwell_live_row";

/// The keys of retracted rows: per row version, a bitset over row indices.
#[derive(Debug, Default, Clone, PartialEq, Eq, Hash)]
pub(crate) struct RetractedRows {
    by_version: BTreeMap<i64, Vec<u64>>,
}

impl RetractedRows {
    /// The set of these `(row_version, row_index)` keys. Negative indices are never written
    /// (indices are positions) and are left out.
    pub(crate) fn from_keys(keys: impl IntoIterator<Item = (i64, i64)>) -> Self {
        let mut by_version: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        for (version, index) in keys {
            let Ok(index) = usize::try_from(index) else {
                continue;
            };
            let words = by_version.entry(version).or_default();
            let word = index / 64;
            if words.len() <= word {
                words.resize(word + 1, 0);
            }
            words[word] |= 1 << (index % 64);
        }
        Self { by_version }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_version.is_empty()
    }

    fn contains(words: &[u64], index: i64) -> bool {
        usize::try_from(index).is_ok_and(|index| {
            words
                .get(index / 64)
                .is_some_and(|word| word & (1 << (index % 64)) != 0)
        })
    }

    /// Whether each row of `(versions, indices)` is live (its key not retracted); a null key
    /// is never retracted.
    fn live(&self, versions: &ArrayRef, indices: &ArrayRef) -> Result<BooleanArray> {
        let versions = cast(versions, &DataType::Int64)?;
        let versions = versions.as_primitive::<Int64Type>();
        let indices = cast(indices, &DataType::Int64)?;
        let indices = indices.as_primitive::<Int64Type>();
        let mut live = BooleanBufferBuilder::new(versions.len());
        // A file's rows mostly share one version: look its bitset up once per run.
        let mut current: Option<(i64, Option<&Vec<u64>>)> = None;
        for row in 0..versions.len() {
            if versions.is_null(row) || indices.is_null(row) {
                live.append(true);
                continue;
            }
            let version = versions.value(row);
            let words = match current {
                Some((v, words)) if v == version => words,
                _ => {
                    let words = self.by_version.get(&version);
                    current = Some((version, words));
                    words
                }
            };
            live.append(words.is_none_or(|words| !Self::contains(words, indices.value(row))));
        }
        Ok(BooleanArray::new(live.finish(), None))
    }

    /// The set as bytes: the number of versions, then per version the version, the number of
    /// words and the words (all 8 bytes, little-endian).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        buf.extend_from_slice(&(self.by_version.len() as u64).to_le_bytes());
        for (version, words) in &self.by_version {
            buf.extend_from_slice(&version.to_le_bytes());
            buf.extend_from_slice(&(words.len() as u64).to_le_bytes());
            for word in words {
                buf.extend_from_slice(&word.to_le_bytes());
            }
        }
        buf
    }

    /// The set [`RetractedRows::encode`] wrote.
    pub(crate) fn decode(mut buf: &[u8]) -> Result<Self> {
        let malformed = || DataFusionError::Internal("a malformed set of retracted rows".into());
        let next = |buf: &mut &[u8]| -> Result<[u8; 8]> {
            let (word, rest) = buf.split_first_chunk::<8>().ok_or_else(malformed)?;
            *buf = rest;
            Ok(*word)
        };
        let versions = u64::from_le_bytes(next(&mut buf)?);
        let mut by_version = BTreeMap::new();
        for _ in 0..versions {
            let version = i64::from_le_bytes(next(&mut buf)?);
            let count =
                usize::try_from(u64::from_le_bytes(next(&mut buf)?)).map_err(|_| malformed())?;
            if count > buf.len() / 8 {
                return Err(malformed());
            }
            let words = (0..count)
                .map(|_| next(&mut buf).map(u64::from_le_bytes))
                .collect::<Result<Vec<_>>>()?;
            by_version.insert(version, words);
        }
        if !buf.is_empty() {
            return Err(malformed());
        }
        Ok(Self { by_version })
    }
}

/// `_dwell_live_row(row_version, row_index)`: whether a stored session row is live, that is,
/// no retraction carries its key. The set is the function's own (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LiveRowFilter {
    retracted: Arc<RetractedRows>,
    signature: Signature,
}

impl LiveRowFilter {
    pub(crate) fn new(retracted: RetractedRows) -> Self {
        Self {
            retracted: Arc::new(retracted),
            signature: Signature::exact(
                vec![DataType::Int64, DataType::Int64],
                Volatility::Immutable,
            ),
        }
    }

    /// The filter that drops the rows of these `(row_version, row_index)` keys.
    pub fn of_keys(keys: impl IntoIterator<Item = (i64, i64)>) -> Self {
        Self::new(RetractedRows::from_keys(keys))
    }

    /// The set, for a codec: [`LiveRowFilter::decode`] makes the function again.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.retracted.encode()
    }

    pub fn decode(buf: &[u8]) -> Result<ScalarUDF> {
        Ok(ScalarUDF::new_from_impl(Self::new(RetractedRows::decode(
            buf,
        )?)))
    }

    /// The predicate over a table of the stored form; `None` when nothing is retracted (every
    /// row is then an insert, and live).
    pub(crate) fn predicate(retracted: RetractedRows) -> Option<Expr> {
        if retracted.is_empty() {
            return None;
        }
        let udf = Arc::new(ScalarUDF::new_from_impl(Self::new(retracted)));
        Some(udf.call(vec![col(ROW_VERSION), col(ROW_INDEX)]))
    }
}

impl ScalarUDFImpl for LiveRowFilter {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [versions, indices] = arrays.as_slice() else {
            return Err(DataFusionError::Internal(format!(
                "{NAME} takes two arguments, not {}",
                arrays.len()
            )));
        };
        Ok(ColumnarValue::Array(Arc::new(
            self.retracted.live(versions, indices)?,
        )))
    }
}
