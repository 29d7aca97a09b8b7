//! `GetXdbcTypeInfo`: the SQL types dwell's results come in.

use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

fn type_info(
    name: &str,
    data_type: XdbcDataType,
    column_size: Option<i32>,
    literal: Option<(&str, &str)>,
    searchable: Searchable,
) -> XdbcTypeInfo {
    XdbcTypeInfo {
        type_name: name.to_owned(),
        data_type,
        column_size,
        literal_prefix: literal.map(|(p, _)| p.to_owned()),
        literal_suffix: literal.map(|(_, s)| s.to_owned()),
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: matches!(data_type, XdbcDataType::XdbcVarchar),
        searchable,
        unsigned_attribute: Some(false),
        fixed_prec_scale: false,
        auto_increment: Some(false),
        local_type_name: Some(name.to_owned()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: matches!(
            data_type,
            XdbcDataType::XdbcBigint
                | XdbcDataType::XdbcInteger
                | XdbcDataType::XdbcSmallint
                | XdbcDataType::XdbcTinyint
                | XdbcDataType::XdbcDouble
                | XdbcDataType::XdbcFloat
        )
        .then_some(10),
        interval_precision: None,
    }
}

/// `GetXdbcTypeInfo`: every type dwell's tables and views return (after the wire conversion),
/// plus the other scalar types a query can produce.
pub(crate) fn xdbc_type_info() -> XdbcTypeInfoData {
    use XdbcDataType as X;
    let mut b = XdbcTypeInfoDataBuilder::new();
    let full = Searchable::Full;
    let basic = Searchable::Basic;
    b.append(type_info("BOOLEAN", X::XdbcBit, Some(1), None, basic));
    b.append(type_info("TINYINT", X::XdbcTinyint, Some(3), None, basic));
    b.append(type_info("SMALLINT", X::XdbcSmallint, Some(5), None, basic));
    b.append(type_info("INTEGER", X::XdbcInteger, Some(10), None, basic));
    b.append(type_info("BIGINT", X::XdbcBigint, Some(19), None, basic));
    b.append(type_info("REAL", X::XdbcFloat, Some(7), None, basic));
    b.append(type_info("DOUBLE", X::XdbcDouble, Some(15), None, basic));
    let mut decimal = type_info("DECIMAL", X::XdbcDecimal, Some(38), None, basic);
    decimal.create_params = Some(vec!["precision".into(), "scale".into()]);
    decimal.fixed_prec_scale = true;
    decimal.minimum_scale = Some(0);
    decimal.maximum_scale = Some(38);
    decimal.num_prec_radix = Some(10);
    b.append(decimal);
    let mut varchar = type_info("VARCHAR", X::XdbcVarchar, None, Some(("'", "'")), full);
    varchar.unsigned_attribute = None;
    varchar.auto_increment = None;
    b.append(varchar);
    let mut binary = type_info(
        "VARBINARY",
        X::XdbcVarbinary,
        None,
        Some(("X'", "'")),
        basic,
    );
    binary.unsigned_attribute = None;
    binary.auto_increment = None;
    b.append(binary);
    let mut date = type_info("DATE", X::XdbcDate, Some(10), Some(("DATE '", "'")), basic);
    date.sql_data_type = X::XdbcDatetime;
    date.datetime_subcode = Some(XdbcDatetimeSubcode::XdbcSubcodeYear);
    date.unsigned_attribute = None;
    date.auto_increment = None;
    b.append(date);
    let mut timestamp = type_info(
        "TIMESTAMP",
        X::XdbcTimestamp,
        Some(29),
        Some(("TIMESTAMP '", "'")),
        basic,
    );
    timestamp.sql_data_type = X::XdbcDatetime;
    timestamp.datetime_subcode = Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp);
    timestamp.minimum_scale = Some(0);
    timestamp.maximum_scale = Some(9);
    timestamp.unsigned_attribute = None;
    timestamp.auto_increment = None;
    b.append(timestamp);
    let mut interval = type_info(
        "INTERVAL",
        X::XdbcInterval,
        None,
        Some(("INTERVAL '", "'")),
        basic,
    );
    interval.unsigned_attribute = None;
    interval.auto_increment = None;
    b.append(interval);
    b.build()
        .expect("the type info values have their spec types")
}
