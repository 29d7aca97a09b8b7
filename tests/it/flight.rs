//! The Flight SQL server, through arrow-flight's own client, on 127.0.0.1 with a free port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo, CommandStatementIngest,
    CommandStatementQuery, ProstMessageExt, SqlInfo, TableDefinitionOptions, TableExistsOption,
    TableNotExistOption,
};
use arrow_flight::{FlightDescriptor, FlightInfo, HandshakeRequest};
use base64::Engine as _;
use dwell_engine::{DataLocation, Engine, GenerateOptions};
use dwell_flight::{AuthConfig, FlightServer, ServerOptions, ServerStats, TlsFiles};
use futures::TryStreamExt;
use prost::Message;
use tonic::Code;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::support::texts;

/// A server over its own engine, stopped when dropped.
pub(crate) struct Served {
    pub(crate) addr: SocketAddr,
    pub(crate) stats: ServerStats,
    pub(crate) engine: Arc<Engine>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

/// 14 bytes with the user name, so its base64 needs padding (the unpadded case differs).
pub(crate) const PASSWORD: &str = "s3cret";
pub(crate) const TOKEN: &str = "tok-0123456789";

/// An auth file with a user (`analyst`, plain password) and a token (`grafana`, by digest),
/// both administrators (every account).
pub(crate) fn auth_toml() -> String {
    use sha2_digest::hex_sha256;
    format!(
        "[[users]]\nname = \"analyst\"\npassword = \"{PASSWORD}\"\nadmin = true\n\n\
         [[tokens]]\nname = \"grafana\"\ntoken_sha256 = \"{}\"\nadmin = true\n",
        hex_sha256(TOKEN.as_bytes())
    )
}

/// SHA-256 in hex, to write digests into test auth files.
mod sha2_digest {
    pub(crate) fn hex_sha256(bytes: &[u8]) -> String {
        use sha2::Digest;
        use std::fmt::Write as _;
        sha2::Sha256::digest(bytes)
            .iter()
            .fold(String::new(), |mut hex, b| {
                let _ = write!(hex, "{b:02x}");
                hex
            })
    }
}

/// Generated events in memory, a few thousand.
pub(crate) async fn small_engine() -> Arc<Engine> {
    let engine = Engine::builder(DataLocation::parse("memory://").expect("location"))
        .build()
        .await
        .expect("engine");
    let options = GenerateOptions {
        events: 4_000,
        users: 40,
        days: 3,
        seed: 7,
        ..GenerateOptions::default()
    };
    engine.generate(&options, &|_| {}).await.expect("generate");
    Arc::new(engine)
}

pub(crate) async fn serve(
    engine: Arc<Engine>,
    configure: impl FnOnce(&mut ServerOptions),
) -> Served {
    let mut options = ServerOptions::new("127.0.0.1:0".parse().expect("address"));
    configure(&mut options);
    let server = FlightServer::bind(Arc::clone(&engine), options)
        .await
        .expect("bind");
    let addr = server.local_addr();
    let stats = server.stats();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        server
            .serve_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    Served {
        addr,
        stats,
        engine,
        stop: Some(stop),
        task,
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect")
}

pub(crate) async fn client(addr: SocketAddr) -> FlightSqlServiceClient<Channel> {
    FlightSqlServiceClient::new(channel(addr).await)
}

/// The gRPC code of a failed call.
fn code(error: &FlightError) -> Code {
    match error {
        FlightError::Tonic(status) => status.code(),
        other => panic!("not a gRPC status: {other:?}"),
    }
}

fn message(error: &FlightError) -> String {
    match error {
        FlightError::Tonic(status) => status.message().to_owned(),
        other => other.to_string(),
    }
}

/// Streams every endpoint of a `FlightInfo`; returns the announced schema, the streamed
/// schema and the batches.
async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<(Schema, Schema, Vec<RecordBatch>), FlightError> {
    let announced = info
        .clone()
        .try_decode_schema()
        .expect("schema in FlightInfo");
    let mut batches = Vec::new();
    let mut streamed = None;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let mut stream = client.do_get(ticket).await?;
        while let Some(batch) = stream.try_next().await? {
            batches.push(batch);
        }
        streamed = stream.schema().map(|s| s.as_ref().clone());
    }
    Ok((announced, streamed.expect("a schema was streamed"), batches))
}

/// The descriptor of a SQL query, as `GetFlightInfo`, `GetSchema` and `PollFlightInfo` take it.
fn query_descriptor(sql: impl Into<String>) -> FlightDescriptor {
    FlightDescriptor::new_cmd(
        CommandStatementQuery {
            query: sql.into(),
            transaction_id: None,
        }
        .as_any()
        .encode_to_vec(),
    )
}

pub(crate) async fn query(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Vec<RecordBatch>, FlightError> {
    let info = client.execute(sql.to_owned(), None).await?;
    let (announced, streamed, batches) = fetch(client, info).await?;
    assert_eq!(
        announced, streamed,
        "{sql}: FlightInfo schema is the streamed one"
    );
    Ok(batches)
}

fn no_view_types(schema: &Schema) {
    for field in schema.fields() {
        assert!(
            !matches!(field.data_type(), DataType::Utf8View | DataType::BinaryView),
            "{} goes out as {}",
            field.name(),
            field.data_type()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_stream_their_announced_schema_without_view_types() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut client = client(served.addr).await;
    for sql in [
        "SELECT * FROM sessions ORDER BY session_id LIMIT 50",
        "SELECT * FROM events LIMIT 10",
        "SELECT * FROM sessionized_events LIMIT 10",
        "SELECT * FROM daily_session_metrics",
        "SELECT * FROM user_segments",
        "SELECT CAST('x' AS VARCHAR) AS v, arrow_cast('y', 'Utf8View') AS w, 1 AS one",
        "SELECT table_name, table_type FROM information_schema.tables",
        "SHOW TABLES",
        "EXPLAIN SELECT count(*) FROM sessions",
        "SELECT * FROM sessions WHERE false",
    ] {
        let info = client.execute(sql.to_owned(), None).await.expect(sql);
        let (announced, streamed, batches) = fetch(&mut client, info).await.expect(sql);
        assert_eq!(announced, streamed, "{sql}");
        no_view_types(&streamed);
        // The same rows as the engine itself gives.
        let direct = served
            .engine
            .sql(sql)
            .await
            .expect(sql)
            .collect()
            .await
            .expect(sql);
        let rows = |b: &[RecordBatch]| b.iter().map(RecordBatch::num_rows).sum::<usize>();
        assert_eq!(rows(&batches), rows(&direct), "{sql}");
        if sql.contains("ORDER BY") {
            assert_eq!(
                texts(&batches, "session_id"),
                texts(&direct, "session_id"),
                "{sql}"
            );
        }
    }
    let sessions = query(&mut client, "SELECT count(*) AS n FROM sessions")
        .await
        .expect("count");
    let n = crate::support::ints(&sessions, "n")[0].expect("n");
    assert!(n > 100, "the generated data has sessions ({n})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one client session, step by step")]
async fn prepared_statements_bind_parameters_and_close() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut client = client(served.addr).await;
    let user = texts(
        &served
            .engine
            .sql("SELECT min(user_id) AS u FROM sessions")
            .await
            .expect("sql")
            .collect()
            .await
            .expect("collect"),
        "u",
    )[0]
    .clone()
    .expect("a user");
    let expected = crate::support::ints(
        &served
            .engine
            .sql(&format!(
                "SELECT count(*) AS n FROM sessions WHERE user_id = '{user}'"
            ))
            .await
            .expect("sql")
            .collect()
            .await
            .expect("collect"),
        "n",
    )[0];

    // `?` in WHERE, as JDBC and ADBC write it.
    let mut prepared = client
        .prepare(
            "SELECT count(*) AS n FROM sessions WHERE user_id = ?".into(),
            None,
        )
        .await
        .expect("prepare");
    let parameters = prepared
        .parameter_schema()
        .expect("parameter schema")
        .clone();
    assert_eq!(parameters.fields().len(), 1);
    assert_eq!(parameters.field(0).name(), "$1");
    assert_eq!(parameters.field(0).data_type(), &DataType::Utf8);
    let dataset = prepared.dataset_schema().expect("dataset schema").clone();
    prepared
        .set_parameters(
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![Field::new("$1", DataType::Utf8, true)])),
                vec![Arc::new(StringArray::from(vec![user.as_str()]))],
            )
            .expect("batch"),
        )
        .expect("bind");
    let info = prepared.execute().await.expect("execute");
    let (announced, streamed, batches) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(announced, streamed);
    assert_eq!(
        dataset, streamed,
        "the prepared dataset schema is the streamed one"
    );
    assert_eq!(crate::support::ints(&batches, "n")[0], expected);

    // A parameter in the select list takes the bound value's type.
    let mut select = client
        .prepare("SELECT $1 AS picked, $2 + 1 AS next".into(), None)
        .await
        .expect("prepare");
    select
        .set_parameters(
            RecordBatch::try_new(
                Arc::new(Schema::new(vec![
                    Field::new("a", DataType::Utf8, true),
                    Field::new("b", DataType::Int64, true),
                ])),
                vec![
                    Arc::new(StringArray::from(vec!["hello"])),
                    Arc::new(arrow::array::Int64Array::from(vec![41])),
                ],
            )
            .expect("batch"),
        )
        .expect("bind");
    let info = select.execute().await.expect("execute");
    let (announced, streamed, batches) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(announced, streamed);
    assert_eq!(texts(&batches, "picked"), vec![Some("hello".to_owned())]);
    assert_eq!(crate::support::ints(&batches, "next"), vec![Some(42)]);

    // Without parameters bound, a parameterized statement is refused clearly.
    let mut unbound = client
        .prepare("SELECT * FROM sessions WHERE user_id = ?".into(), None)
        .await
        .expect("prepare");
    let error = unbound.execute().await.expect_err("unbound");
    assert_eq!(code(&error), Code::InvalidArgument, "{error}");
    assert!(message(&error).contains("parameter"), "{error}");

    // Closing one statement leaves the others open.
    let first = client
        .prepare("SELECT 1 AS one".into(), None)
        .await
        .expect("prepare");
    let mut second = client
        .prepare("SELECT 2 AS two".into(), None)
        .await
        .expect("prepare");
    first.close().await.expect("close");
    let info = second.execute().await.expect("still open");
    let (_, _, batches) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(crate::support::ints(&batches, "two"), vec![Some(2)]);
    second.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_prepared_statement_is_not_found() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut raw = FlightServiceClient::new(channel(served.addr).await);
    let mut client = client(served.addr).await;
    let mut prepared = client
        .prepare("SELECT 1 AS one".into(), None)
        .await
        .expect("prepare");
    let descriptor = prepared
        .execute()
        .await
        .expect("execute")
        .flight_descriptor
        .expect("descriptor");
    let handle = arrow_flight::sql::Any::decode(&*descriptor.cmd)
        .expect("any")
        .unpack::<arrow_flight::sql::CommandPreparedStatementQuery>()
        .expect("unpack")
        .expect("a prepared statement query")
        .prepared_statement_handle;
    prepared.close().await.expect("close");
    let status = raw.get_flight_info(descriptor).await.expect_err("closed");
    assert_eq!(status.code(), Code::NotFound, "{status}");
    let close = arrow_flight::Action {
        r#type: "ClosePreparedStatement".into(),
        body: arrow_flight::sql::ActionClosePreparedStatementRequest {
            prepared_statement_handle: handle,
        }
        .as_any()
        .encode_to_vec()
        .into(),
    };
    let status = raw.do_action(close).await.expect_err("closed twice");
    assert_eq!(status.code(), Code::NotFound, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one client session, step by step")]
async fn metadata_calls_answer_with_the_spec_schemas() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut client = client(served.addr).await;

    let info = client.get_catalogs().await.expect("catalogs");
    let (announced, streamed, batches) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(announced, streamed);
    assert_eq!(
        streamed,
        *arrow_flight::sql::CommandGetCatalogs {}
            .into_builder()
            .schema()
    );
    assert_eq!(
        texts(&batches, "catalog_name"),
        vec![Some("datafusion".into())]
    );

    for (catalog, pattern, expected) in [
        (None, None, vec!["information_schema", "public"]),
        (
            Some("datafusion"),
            None,
            vec!["information_schema", "public"],
        ),
        (Some("datafusion"), Some("pub%"), vec!["public"]),
        (None, Some("%_schema"), vec!["information_schema"]),
        (Some("nope"), None, vec![]),
    ] {
        let command = CommandGetDbSchemas {
            catalog: catalog.map(str::to_owned),
            db_schema_filter_pattern: pattern.map(str::to_owned),
        };
        let info = client
            .get_db_schemas(command.clone())
            .await
            .expect("schemas");
        let (announced, streamed, batches) = fetch(&mut client, info).await.expect("fetch");
        assert_eq!(announced, streamed);
        assert_eq!(streamed, *command.into_builder().schema());
        let got: Vec<_> = texts(&batches, "db_schema_name")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(got, expected, "{catalog:?} {pattern:?}");
    }

    for include_schema in [false, true] {
        let command = CommandGetTables {
            catalog: Some("datafusion".into()),
            db_schema_filter_pattern: Some("public".into()),
            table_name_filter_pattern: Some("sess%".into()),
            table_types: vec![],
            include_schema,
        };
        let info = client.get_tables(command.clone()).await.expect("tables");
        let (announced, streamed, batches) = fetch(&mut client, info).await.expect("fetch");
        assert_eq!(announced, streamed);
        assert_eq!(streamed, *command.into_builder().schema());
        let names: Vec<_> = texts(&batches, "table_name")
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            names,
            vec!["session_changes", "sessionized_events", "sessions"]
        );
        assert_eq!(texts(&batches, "table_type"), vec![Some("VIEW".into()); 3]);
        if include_schema {
            // The listed schema is the schema a query of the table streams.
            let column = batches[0]
                .column_by_name("table_schema")
                .expect("table_schema")
                .as_binary::<i32>();
            let listed = arrow::ipc::convert::try_schema_from_ipc_buffer(column.value(2))
                .expect("IPC schema");
            let queried = query(&mut client, "SELECT * FROM sessions LIMIT 1")
                .await
                .expect("query");
            assert_eq!(listed, *queried[0].schema());
        }
    }
    // Table type filter and no catalog: every base table.
    let command = CommandGetTables {
        catalog: None,
        db_schema_filter_pattern: None,
        table_name_filter_pattern: None,
        table_types: vec!["TABLE".into()],
        include_schema: false,
    };
    let info = client.get_tables(command).await.expect("tables");
    let (_, _, batches) = fetch(&mut client, info).await.expect("fetch");
    let names: Vec<_> = texts(&batches, "table_name")
        .into_iter()
        .flatten()
        .collect();
    for table in [
        "events",
        "users",
        "app_settings",
        "dwell_settings",
        "dwell_columns",
    ] {
        assert!(names.iter().any(|n| n == table), "{table} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n == "sessions"),
        "views are not TABLE"
    );

    let info = client.get_table_types().await.expect("types");
    let (_, _, batches) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(
        texts(&batches, "table_type"),
        vec![
            Some("LOCAL TEMPORARY".into()),
            Some("TABLE".into()),
            Some("VIEW".into())
        ]
    );

    // SQL info: all of it, and chosen ids.
    let info = client.get_sql_info(vec![]).await.expect("sql info");
    let (announced, streamed, all) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(announced, streamed);
    assert!(all[0].num_rows() > 80, "every SqlInfo answered");
    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::SqlIdentifierQuoteChar,
        ])
        .await
        .expect("sql info");
    let (_, _, some) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(some[0].num_rows(), 3);
    let names = some[0]
        .column(0)
        .as_primitive::<arrow::datatypes::UInt32Type>();
    assert_eq!(names.values().to_vec(), vec![0, 3, 504]);
    let values = some[0].column(1).as_union();
    let name = values.value(0);
    assert_eq!(name.as_string::<i32>().value(0), "dwell");
    let read_only = values.value(1);
    assert!(read_only.as_boolean().value(0));

    // Type info: all types, and one.
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("type info");
    let (announced, streamed, types) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(announced, streamed);
    let type_names: Vec<_> = texts(&types, "type_name").into_iter().flatten().collect();
    for t in [
        "BIGINT",
        "DOUBLE",
        "VARCHAR",
        "TIMESTAMP",
        "DATE",
        "BOOLEAN",
        "INTEGER",
    ] {
        assert!(type_names.iter().any(|n| n == t), "{t} in {type_names:?}");
    }
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo {
            data_type: Some(arrow_flight::sql::XdbcDataType::XdbcVarchar as i32),
        })
        .await
        .expect("type info");
    let (_, _, one) = fetch(&mut client, info).await.expect("fetch");
    assert_eq!(texts(&one, "type_name"), vec![Some("VARCHAR".into())]);

    // Keys: none, in the spec's schemas.
    let key_infos = vec![
        client
            .get_primary_keys(CommandGetPrimaryKeys {
                catalog: None,
                db_schema: None,
                table: "events".into(),
            })
            .await
            .expect("pk"),
        client
            .get_exported_keys(CommandGetExportedKeys {
                catalog: None,
                db_schema: None,
                table: "events".into(),
            })
            .await
            .expect("exported"),
        client
            .get_imported_keys(CommandGetImportedKeys {
                catalog: None,
                db_schema: None,
                table: "events".into(),
            })
            .await
            .expect("imported"),
        client
            .get_cross_reference(CommandGetCrossReference {
                pk_catalog: None,
                pk_db_schema: None,
                pk_table: "users".into(),
                fk_catalog: None,
                fk_db_schema: None,
                fk_table: "events".into(),
            })
            .await
            .expect("cross"),
    ];
    for (i, info) in key_infos.into_iter().enumerate() {
        let (announced, streamed, batches) = fetch(&mut client, info).await.expect("fetch");
        assert_eq!(announced, streamed);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
        let first = streamed.field(0);
        if i == 0 {
            assert_eq!(first.name(), "catalog_name");
            assert_eq!(streamed.field(5).name(), "key_sequence");
            assert!(!streamed.field(5).is_nullable());
        } else {
            assert_eq!(first.name(), "pk_catalog_name");
            assert_eq!(streamed.fields().len(), 13);
            assert_eq!(streamed.field(12).data_type(), &DataType::UInt8);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_schema_answers_for_queries_prepared_statements_and_metadata() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut raw = FlightServiceClient::new(channel(served.addr).await);
    let mut client = client(served.addr).await;
    let sql = "SELECT session_id, user_id, duration_seconds FROM sessions LIMIT 3";
    let descriptor = query_descriptor(sql);
    let result = raw
        .get_schema(descriptor)
        .await
        .expect("get schema")
        .into_inner();
    let schema = Schema::try_from(&result).expect("schema");
    let queried = query(&mut client, sql).await.expect("query");
    assert_eq!(schema, *queried[0].schema());

    let descriptor = FlightDescriptor::new_cmd(
        CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: true,
        }
        .as_any()
        .encode_to_vec(),
    );
    let result = raw
        .get_schema(descriptor)
        .await
        .expect("get schema")
        .into_inner();
    let tables_schema = Schema::try_from(&result).expect("schema");
    assert_eq!(tables_schema.fields().len(), 5, "{tables_schema:?}");
    assert_eq!(tables_schema.field(4).name(), "table_schema");

    let status = raw
        .get_schema(query_descriptor("SELEC 1"))
        .await
        .expect_err("bad SQL");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_but_reading_is_refused_on_every_path() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut raw = FlightServiceClient::new(channel(served.addr).await);
    let mut client = client(served.addr).await;
    for sql in [
        "CREATE TABLE t AS SELECT 1",
        "CREATE EXTERNAL TABLE etc STORED AS CSV LOCATION '/etc/'",
        "CREATE VIEW v AS SELECT 1",
        "DROP VIEW sessions",
        "DROP TABLE events",
        "INSERT INTO events SELECT * FROM events",
        "COPY (SELECT 1) TO '/tmp/dwell-should-not-exist.csv'",
        "COPY events TO '/tmp/dwell-should-not-exist.parquet'",
        "SET datafusion.execution.batch_size = 1",
        "EXPLAIN CREATE TABLE t AS SELECT 1",
        "PREPARE p AS SELECT 1",
    ] {
        let error = client.execute(sql.into(), None).await.expect_err(sql);
        assert_eq!(code(&error), Code::PermissionDenied, "{sql}: {error}");
        assert!(message(&error).contains("read-only"), "{sql}: {error}");
        let error = client.prepare(sql.into(), None).await.expect_err(sql);
        assert!(
            format!("{error}").contains("PermissionDenied")
                || format!("{error}").contains("read-only"),
            "{sql}: {error}"
        );
        let error = client
            .execute_update(sql.into(), None)
            .await
            .expect_err(sql);
        assert_eq!(code(&error), Code::PermissionDenied, "{sql}: {error}");
        let status = raw.get_schema(query_descriptor(sql)).await.expect_err(sql);
        assert_eq!(status.code(), Code::PermissionDenied, "{sql}");
    }
    assert!(!std::path::Path::new("/tmp/dwell-should-not-exist.csv").exists());
    // Files outside the data location are not tables.
    let error = client
        .execute("SELECT * FROM '/etc/passwd'".into(), None)
        .await
        .expect_err("url table");
    assert_eq!(code(&error), Code::NotFound, "{error}");
    // Everything still there.
    query(&mut client, "SELECT count(*) FROM sessions")
        .await
        .expect("views intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one error case after another")]
async fn errors_carry_grpc_codes_and_plain_messages() {
    let served = serve(small_engine().await, |o| {
        o.max_prepared_statements = 3;
        o.max_put_bytes = 64 << 10;
    })
    .await;
    let mut client = client(served.addr).await;
    let cases: [(&str, Code, &str); 5] = [
        (
            "SELEC * FROM sessions",
            Code::InvalidArgument,
            "SQL syntax error",
        ),
        (
            "SELECT * FROM no_such_table",
            Code::NotFound,
            "no_such_table",
        ),
        (
            "SELECT no_such_column FROM sessions",
            Code::InvalidArgument,
            "no_such_column",
        ),
        (
            "SELECT 1; SELECT 2",
            Code::Unimplemented,
            "single SQL statement",
        ),
        (
            "SELECT CAST('x' AS INT)",
            Code::InvalidArgument,
            "Cannot cast",
        ),
    ];
    for (sql, expected, words) in cases {
        let error = match client.execute(sql.into(), None).await {
            Err(e) => e,
            // Some errors only show when the query runs.
            Ok(info) => fetch(&mut client, info).await.expect_err(sql),
        };
        assert_eq!(code(&error), expected, "{sql}: {error}");
        let text = message(&error);
        assert!(text.contains(words), "{sql}: {text}");
        for leak in [
            "ParserError(",
            "backtrace",
            "Box<",
            "/root",
            "/tmp",
            "/home",
        ] {
            assert!(!text.contains(leak), "{sql}: {text}");
        }
    }

    // A ticket the server did not issue.
    let error = client
        .do_get(arrow_flight::Ticket {
            ticket: arrow_flight::sql::TicketStatementQuery {
                statement_handle: b"\x07garbage".to_vec().into(),
            }
            .as_any()
            .encode_to_vec()
            .into(),
        })
        .await
        .map(|_| ());
    let Err(error) = error else {
        panic!("a forged ticket was accepted")
    };
    assert_eq!(code(&error), Code::InvalidArgument, "{error}");

    // Transactions, stored flights, polling and exchange are not offered; the actions are listed.
    let error = client.begin_transaction().await.expect_err("transactions");
    assert_eq!(code(&error), Code::Unimplemented, "{error}");
    let mut raw = FlightServiceClient::new(channel(served.addr).await);
    let status = raw
        .list_flights(arrow_flight::Criteria::default())
        .await
        .expect_err("list flights");
    assert_eq!(status.code(), Code::Unimplemented);
    let status = raw
        .poll_flight_info(query_descriptor("SELECT 1"))
        .await
        .expect_err("poll");
    assert_eq!(status.code(), Code::Unimplemented);
    let actions: Vec<String> = raw
        .list_actions(arrow_flight::Empty {})
        .await
        .expect("list actions")
        .into_inner()
        .map_ok(|a| a.r#type)
        .try_collect()
        .await
        .expect("actions");
    assert!(
        actions.iter().any(|a| a == "CreatePreparedStatement"),
        "{actions:?}"
    );

    // Limits: prepared statements and put sizes.
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            client
                .prepare("SELECT 1".into(), None)
                .await
                .expect("prepare"),
        );
    }
    let error = client
        .prepare("SELECT 1".into(), None)
        .await
        .expect_err("limit");
    assert!(
        format!("{error}").contains("too many open prepared statements"),
        "{error}"
    );
    for p in open {
        p.close().await.expect("close");
    }
    client
        .prepare("SELECT 1".into(), None)
        .await
        .expect("room again");
    let big = events_batch("big-user", 5_000);
    let error = client
        .execute_ingest(append("events"), futures::stream::iter([Ok(big)]))
        .await
        .expect_err("too big");
    assert_eq!(code(&error), Code::ResourceExhausted, "{error}");
}

/// Events of one user: one tab, one app, a minute apart (so a new session every 30+ minutes:
/// `count` events at 1 min spacing with a 45 min pause every 10 events).
pub(crate) fn events_batch(user: &str, count: usize) -> RecordBatch {
    let start = 1_767_225_600_000_000_000i64; // 2026-01-01T00:00:00Z
    let mut times = Vec::with_capacity(count);
    let mut t = start;
    for i in 0..count {
        if i > 0 {
            t += if i % 10 == 0 { 45 * 60 } else { 60 } * 1_000_000_000;
        }
        times.push(t);
    }
    let text = |v: &str| Arc::new(StringArray::from(vec![v; count])) as Arc<dyn Array>;
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new(
                "event_time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new("account_id", DataType::Utf8, false),
            Field::new("user_id", DataType::Utf8, false),
            Field::new("app_id", DataType::Utf8, false),
            Field::new("tab_id", DataType::Utf8, false),
            Field::new("event_type", DataType::Utf8, false),
            Field::new("event_id", DataType::Utf8, false),
        ])),
        vec![
            Arc::new(TimestampNanosecondArray::from(times)),
            text("acme"),
            text(user),
            text("crm"),
            text("tab-1"),
            text("click"),
            Arc::new(StringArray::from(
                (0..count)
                    .map(|i| format!("{user}-{i}"))
                    .collect::<Vec<_>>(),
            )),
        ],
    )
    .expect("events batch")
}

pub(crate) fn append(table: &str) -> CommandStatementIngest {
    CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Fail as i32,
            if_exists: TableExistsOption::Append as i32,
        }),
        table: table.into(),
        schema: None,
        catalog: None,
        temporary: false,
        transaction_id: None,
        options: std::collections::HashMap::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_ingest_lands_events_that_the_next_query_sessionizes() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut client = client(served.addr).await;
    let count_sql = "SELECT count(*) AS n FROM sessions WHERE user_id = 'flight-user'";
    let before = query(&mut client, count_sql).await.expect("count");
    assert_eq!(crate::support::ints(&before, "n"), vec![Some(0)]);

    let batch = events_batch("flight-user", 30);
    let rows = client
        .execute_ingest(append("events"), futures::stream::iter([Ok(batch.clone())]))
        .await
        .expect("ingest");
    assert_eq!(rows, 30);
    // 30 events with a 45-minute pause after every 10: three sessions.
    let after = query(&mut client, count_sql).await.expect("count");
    assert_eq!(crate::support::ints(&after, "n"), vec![Some(3)]);
    // The same batch again lands nothing.
    let rows = client
        .execute_ingest(append("events"), futures::stream::iter([Ok(batch)]))
        .await
        .expect("ingest again");
    assert_eq!(rows, 0);
    let again = query(
        &mut client,
        "SELECT count(*) AS n FROM events WHERE user_id = 'flight-user'",
    )
    .await
    .expect("count");
    assert_eq!(crate::support::ints(&again, "n"), vec![Some(30)]);

    // Refusals: other tables, replace, create, bad columns; nothing lands.
    let mut replace = append("events");
    replace.table_definition_options = Some(TableDefinitionOptions {
        if_not_exist: TableNotExistOption::Create as i32,
        if_exists: TableExistsOption::Replace as i32,
    });
    let mut create = append("events");
    create.table_definition_options = Some(TableDefinitionOptions {
        if_not_exist: TableNotExistOption::Create as i32,
        if_exists: TableExistsOption::Fail as i32,
    });
    let other = events_batch("other-user", 5);
    for (command, expected) in [
        (append("users"), Code::PermissionDenied),
        (append("sessions"), Code::PermissionDenied),
        (replace, Code::PermissionDenied),
        (create, Code::AlreadyExists),
    ] {
        let error = client
            .execute_ingest(command, futures::stream::iter([Ok(other.clone())]))
            .await
            .expect_err("refused");
        assert_eq!(code(&error), expected, "{error}");
    }
    let no_user = other.project(&[0, 1, 3, 4, 5, 6]).expect("project");
    let error = client
        .execute_ingest(append("events"), futures::stream::iter([Ok(no_user)]))
        .await
        .expect_err("missing column");
    assert_eq!(code(&error), Code::InvalidArgument, "{error}");
    assert!(message(&error).contains("user_id"), "{error}");
    let none = query(
        &mut client,
        "SELECT count(*) AS n FROM events WHERE user_id = 'other-user'",
    )
    .await
    .expect("count");
    assert_eq!(crate::support::ints(&none, "n"), vec![Some(0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_issues_tokens_and_every_call_is_checked() {
    let auth = AuthConfig::parse(&auth_toml(), "auth.toml").expect("auth");
    let served = serve(small_engine().await, |o| o.auth = Some(auth)).await;

    // No credentials: refused.
    let mut anonymous = client(served.addr).await;
    let error = anonymous.get_catalogs().await.expect_err("anonymous");
    assert_eq!(code(&error), Code::Unauthenticated, "{error}");

    // Wrong password: refused, in the same words as an unknown user.
    let mut raw = FlightServiceClient::new(channel(served.addr).await);
    let handshake = |basic: String| {
        let mut request = tonic::Request::new(futures::stream::iter([HandshakeRequest::default()]));
        request
            .metadata_mut()
            .insert("authorization", basic.parse().expect("header"));
        request
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let wrong = raw
        .handshake(handshake(format!("Basic {}", b64.encode("analyst:nope"))))
        .await
        .expect_err("wrong password");
    let unknown = raw
        .handshake(handshake(format!("Basic {}", b64.encode("mallory:nope"))))
        .await
        .expect_err("unknown user");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(wrong.message(), unknown.message());

    // Basic without base64 padding (as ADBC sends it) works; the token is in the header.
    let unpadded =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(format!("analyst:{PASSWORD}"));
    assert_ne!(
        unpadded,
        b64.encode(format!("analyst:{PASSWORD}")),
        "the case needs padding"
    );
    let response = raw
        .handshake(handshake(format!("Basic {unpadded}")))
        .await
        .expect("handshake");
    let header = response
        .metadata()
        .get("authorization")
        .expect("token header")
        .to_str()
        .expect("text")
        .to_owned();
    let token = header.strip_prefix("Bearer ").expect("bearer").to_owned();
    let mut with_token = client(served.addr).await;
    with_token.set_token(token.clone());
    query(&mut with_token, "SELECT 1")
        .await
        .expect("token works");

    // arrow-flight's own handshake (padded) works too.
    let mut logged_in = client(served.addr).await;
    logged_in
        .handshake("analyst", PASSWORD)
        .await
        .expect("handshake");
    query(&mut logged_in, "SELECT count(*) FROM sessions")
        .await
        .expect("query");

    // A configured token; a forged one.
    let mut tool = client(served.addr).await;
    tool.set_token(TOKEN.into());
    query(&mut tool, "SELECT 1")
        .await
        .expect("configured token");
    tool.set_token(format!("{token}x"));
    let error = tool.get_catalogs().await.expect_err("forged");
    assert_eq!(code(&error), Code::Unauthenticated);

    // Basic credentials on an ordinary call work as well.
    let mut basic = client(served.addr).await;
    basic.set_header("authorization", format!("Basic {unpadded}"));
    query(&mut basic, "SELECT 1")
        .await
        .expect("basic on a call");
}

#[test]
fn auth_files_are_checked_and_errors_name_the_entry() {
    for (text, words) in [
        ("", "nobody could connect"),
        ("[[users]]\nname = \"a\"\n", "users[0].password: missing"),
        (
            "[[users]]\nname = \"a\"\npassword = \"\"\n",
            "users[0].password: is empty",
        ),
        (
            "[[users]]\nname = \"a\"\npassword_sha256 = \"abc\"\n",
            "users[0].password: not a SHA-256",
        ),
        (
            "[[users]]\nname = \"a:b\"\npassword = \"x\"\n",
            "users[0].name",
        ),
        (
            "[[users]]\nname = \"a\"\npassword = \"x\"\nadmin = true\n\
             [[users]]\nname = \"a\"\npassword = \"y\"\naccount = \"acme\"\n",
            "users[1].name: a is listed twice",
        ),
        (
            "[[users]]\nname = \"a\"\npassword = \"x\"\n",
            "users[0].account: names no account",
        ),
        (
            "[[users]]\nname = \"a\"\npassword = \"x\"\nadmin = false\n",
            "users[0].account: names no account",
        ),
        (
            "[[tokens]]\nname = \"t\"\ntoken = \"x\"\naccount = \"acme\"\nadmin = true\n",
            "tokens[0].account: give account",
        ),
        (
            "[[tokens]]\nname = \"t\"\ntoken = \"x\"\naccount = \"\"\n",
            "tokens[0].account: account is empty",
        ),
        ("[[tokens]]\nname = \"t\"\n", "tokens[0].token: missing"),
        (
            "token_lifetime = \"soon\"\n[[tokens]]\nname = \"t\"\ntoken = \"x\"\nadmin = true\n",
            "token_lifetime",
        ),
        ("[[users]]\nname = \"a\"\npasswd = \"x\"\n", "unknown field"),
    ] {
        let error = AuthConfig::parse(text, "auth.toml").expect_err(text);
        let shown = error.to_string();
        assert!(shown.starts_with("auth.toml: "), "{shown}");
        assert!(shown.contains(words), "{text:?}: {shown}");
    }
    let parsed = AuthConfig::parse(&auth_toml(), "auth.toml").expect("valid");
    let debug = format!("{parsed:?}");
    assert!(
        debug.contains("analyst") && !debug.contains(PASSWORD),
        "{debug}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_auth_only_loopback_is_served() {
    let engine = small_engine().await;
    let error = FlightServer::bind(
        Arc::clone(&engine),
        ServerOptions::new("0.0.0.0:0".parse().expect("address")),
    )
    .await
    .expect_err("open to the network without auth");
    assert!(error.to_string().contains("--auth"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_its_certificate() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/tls");
    let served = serve(small_engine().await, |o| {
        o.tls = Some(TlsFiles {
            cert: format!("{fixtures}/server.pem").into(),
            key: format!("{fixtures}/server.key").into(),
        });
    })
    .await;
    let ca = std::fs::read(format!("{fixtures}/ca.pem")).expect("ca");
    let channel = Endpoint::from_shared(format!("https://localhost:{}", served.addr.port()))
        .expect("endpoint")
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca))
                .domain_name("localhost"),
        )
        .expect("tls config")
        .connect()
        .await
        .expect("connect over TLS");
    let mut secure = FlightSqlServiceClient::new(channel);
    query(&mut secure, "SELECT 1")
        .await
        .expect("query over TLS");
    // Plain gRPC to a TLS port fails.
    let plain = Endpoint::from_shared(format!("http://{}", served.addr))
        .expect("endpoint")
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut plain = FlightSqlServiceClient::new(plain);
        assert!(
            plain.get_catalogs().await.is_err(),
            "plain text to a TLS port"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_or_a_disconnect_stops_the_query_on_the_server() {
    let served = serve(small_engine().await, |_| {}).await;
    let mut client = client(served.addr).await;
    // Long enough to still run when the deadline passes, and cheap in memory.
    let slow = "SELECT count(*) FROM generate_series(1, 100000000000) AS t(v) WHERE v % 7 = 3";

    let info = client.execute(slow.into(), None).await.expect("plan");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let mut raw = FlightServiceClient::new(channel(served.addr).await);
    let mut request = tonic::Request::new(ticket.clone());
    request.set_timeout(Duration::from_millis(300));
    let outcome = match raw.do_get(request).await {
        Err(status) => status,
        Ok(response) => {
            let mut stream = response.into_inner();
            loop {
                match stream.message().await {
                    Err(status) => break status,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("the slow query finished within its deadline"),
                }
            }
        }
    };
    assert_eq!(outcome.code(), Code::DeadlineExceeded, "{outcome}");
    wait_for_no_open_streams(&served.stats).await;

    // A client that goes away mid-stream.
    let mut stream = client.do_get(ticket).await.expect("do_get");
    let waiting = tokio::time::timeout(Duration::from_millis(300), stream.try_next()).await;
    assert!(waiting.is_err(), "the slow query is still running");
    assert_eq!(served.stats.open_streams(), 1);
    drop(stream);
    drop(client);
    wait_for_no_open_streams(&served.stats).await;
}

async fn wait_for_no_open_streams(stats: &ServerStats) {
    // Generous bound for a loaded CI machine; the stop itself is immediate.
    for _ in 0..100 {
        if stats.open_streams() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server still runs {} streams", stats.open_streams());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jdbc_drivers_connect_and_browse_sequence_works() {
    // What the Arrow Flight SQL JDBC driver does when DBeaver connects and opens the tree:
    // handshake, GetSqlInfo without ids, catalogs, schemas, tables with their schemas, type
    // info, then a prepared query executed and closed.
    let auth = AuthConfig::parse(&auth_toml(), "auth.toml").expect("auth");
    let served = serve(small_engine().await, |o| o.auth = Some(auth)).await;
    let mut jdbc = client(served.addr).await;
    jdbc.handshake("analyst", PASSWORD)
        .await
        .expect("handshake");
    let info = jdbc.get_sql_info(vec![]).await.expect("sql info");
    let (_, _, sql_info) = fetch(&mut jdbc, info).await.expect("fetch");
    assert!(sql_info[0].num_rows() > 80);
    let info = jdbc.get_catalogs().await.expect("catalogs");
    fetch(&mut jdbc, info).await.expect("fetch");
    let info = jdbc
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .expect("schemas");
    fetch(&mut jdbc, info).await.expect("fetch");
    let info = jdbc
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("%".into()),
            table_name_filter_pattern: Some("%".into()),
            table_types: vec!["TABLE".into(), "VIEW".into()],
            include_schema: true,
        })
        .await
        .expect("tables");
    let (_, _, tables) = fetch(&mut jdbc, info).await.expect("fetch");
    let names: Vec<_> = texts(&tables, "table_name").into_iter().flatten().collect();
    assert!(names.iter().any(|n| n == "sessions"), "{names:?}");
    // Every listed schema is free of view types (the driver cannot read them).
    for batch in &tables {
        let column = batch
            .column_by_name("table_schema")
            .expect("schema")
            .as_binary::<i32>();
        for i in 0..column.len() {
            let schema =
                arrow::ipc::convert::try_schema_from_ipc_buffer(column.value(i)).expect("schema");
            no_view_types(&schema);
        }
    }
    let info = jdbc
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .expect("types");
    fetch(&mut jdbc, info).await.expect("fetch");
    let mut prepared = jdbc
        .prepare(
            "SELECT user_id, count(*) AS sessions FROM sessions GROUP BY user_id ORDER BY user_id LIMIT 5"
                .into(),
            None,
        )
        .await
        .expect("prepare");
    let declared = prepared.dataset_schema().expect("schema").clone();
    let info = prepared.execute().await.expect("execute");
    let (announced, streamed, rows) = fetch(&mut jdbc, info).await.expect("fetch");
    assert_eq!(declared, streamed);
    assert_eq!(announced, streamed);
    assert_eq!(rows.iter().map(RecordBatch::num_rows).sum::<usize>(), 5);
    prepared.close().await.expect("close");
}
