//! dwell on an Apache DataFusion Ballista 55 cluster: the same SQL, tables and views, with the
//! work spread over executor processes.
//!
//! Three kinds of process take part, all from the one `dwell` binary:
//!
//! - a **scheduler** ([`run_scheduler`], `dwell scheduler`) receives a query's logical plan,
//!   plans it physically, splits it into stages at every repartition, and hands the stages'
//!   tasks to executors. It lists the data location's files (so it reads the location through
//!   the engine's store stack: uncommitted ingests hidden, every call within its deadline);
//! - **executors** ([`run_executor`], `dwell executor`) run tasks: they read Parquet from the
//!   location themselves (a local path that every process sees, or S3), sessionize, aggregate,
//!   and serve their shuffle output to each other over Arrow Flight;
//! - the **client**, an [`Engine`](dwell_engine::Engine) built with [`client_upgrade`]
//!   (`dwell sql --cluster`, `dwell serve --cluster`), holds the tables, views and settings,
//!   plans SQL logically and sends each query to the scheduler.
//!
//! `sessionize` reaches the scheduler and every executor by name: each process registers
//! dwell's functions ([`dwell_engine::distributed_state`]). Its settings travel inside the plan
//! as literals (and the per-application timeout as a `CASE` expression the views generate), so
//! nothing hides in the function object. The scheduler plans it into dwell's `SessionizeExec`,
//! as one process does, and the executors run that operator (the plan codec carries it): each
//! task sorts and sessionizes one bucket of users.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use dwell_cluster::ClusterUrl;
//! use dwell_engine::{DataLocation, Engine, StoreSettings};
//!
//! let location = DataLocation::parse("/shared/dwell-data")?;
//! let cluster: ClusterUrl = "df://127.0.0.1:50050".parse()?;
//! // In other processes: `dwell scheduler` and `dwell executor`, or in this one:
//! tokio::spawn(dwell_cluster::run_scheduler(
//!     cluster.socket_addr()?,
//!     location.clone(),
//!     StoreSettings::default(),
//! ));
//! let upgrade = dwell_cluster::client_upgrade(&cluster, &location)?;
//! let engine = Engine::builder(location)
//!     .with_state_upgrade(upgrade)
//!     .build()
//!     .await?;
//! let sessions = engine.sql("SELECT count(*) FROM sessions").await?.collect().await?;
//! # Ok(())
//! # }
//! ```

mod codec;

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::{SessionConfigExt, SessionStateExt};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use dwell_engine::{DataLocation, StateUpgrade, StoreSettings};

use codec::{DwellLogicalCodec, DwellPhysicalCodec};

/// What can go wrong in setting up a cluster process or a client of one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{0}")]
    Engine(#[from] dwell_engine::Error),
    #[error("{}", .0.strip_backtrace())]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("{what}: {source}")]
    Ballista {
        what: String,
        source: ballista_core::error::BallistaError,
    },
    #[error("{location}: {reason}")]
    Location { location: String, reason: String },
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The port a scheduler listens on unless told otherwise (Ballista's).
pub const DEFAULT_SCHEDULER_PORT: u16 = 50050;

/// Where a Ballista scheduler listens: `df://HOST:PORT` (port 50050 if left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    host: String,
    port: u16,
}

impl FromStr for ClusterUrl {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let error = |reason: &str| Error::Url {
            url: text.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(text).map_err(|e| error(&format!("not a URL ({e})")))?;
        if url.scheme() != "df" {
            return Err(error("a cluster is named df://HOST:PORT"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| error("names no host (df://HOST:PORT)"))?;
        if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
            return Err(error("a cluster URL is only df://HOST:PORT"));
        }
        Ok(ClusterUrl {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: url.port().unwrap_or(DEFAULT_SCHEDULER_PORT),
        })
    }
}

impl std::fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "df://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "df://{}:{}", self.host, self.port)
        }
    }
}

impl ClusterUrl {
    /// The scheduler at `addr`.
    #[must_use]
    pub fn of(addr: SocketAddr) -> Self {
        ClusterUrl {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }

    /// The scheduler's host.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The scheduler's port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The scheduler's gRPC endpoint.
    fn grpc_endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }

    /// The address to bind a scheduler to (the host resolved).
    pub fn socket_addr(&self) -> Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| Error::Url {
                url: self.to_string(),
                reason: "the host does not resolve".into(),
            })
    }
}

/// The [`StateUpgrade`] that makes the contexts of an engine over `location` send queries to
/// the scheduler at `cluster`: Ballista's query planner with dwell's logical codec. Queries that
/// read only `information_schema`, or no table at all, still run in the client. A location only
/// this process sees (`memory://`) is refused, as by the scheduler and the executors.
///
/// Ballista's adaptive planner is turned off for dwell's queries (the setting travels with each
/// query to the scheduler): in Ballista 55 it re-plans a stage without the column equivalences
/// of the stage before, and a sessions query filtered on one user then fails on an executor
/// with "Expects PARTITION BY expression to be ordered" (`tests/it/cluster.rs` has the query).
/// The static planner splits stages at the same places and keeps the sorts the windows need.
pub fn client_upgrade(cluster: &ClusterUrl, location: &DataLocation) -> Result<StateUpgrade> {
    check_shareable(location)?;
    let scheduler = cluster.grpc_endpoint();
    Ok(Arc::new(move |state: SessionState| {
        let config = state
            .config()
            .clone()
            .with_ballista_logical_extension_codec(Arc::new(DwellLogicalCodec::default()))
            .with_ballista_physical_extension_codec(Arc::new(DwellPhysicalCodec::default()))
            .with_ballista_adaptive_query_planner(false);
        SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .build()
            .upgrade_for_ballista(scheduler.clone())
    }))
}

/// The data locations a cluster can share: every process opens its own store over it.
fn check_shareable(location: &DataLocation) -> Result<()> {
    if location.store_url().scheme() == "memory" {
        return Err(Error::Location {
            location: location.to_string(),
            reason: "an in-memory location is private to one process; a cluster needs a \
                     folder every process sees, or s3://"
                .into(),
        });
    }
    Ok(())
}

fn codec() -> BallistaCodec {
    BallistaCodec::new(
        Arc::new(DwellLogicalCodec::default()),
        Arc::new(DwellPhysicalCodec::default()),
    )
}

/// The state a scheduler plans each session's queries in: the client's settings (they arrive
/// with the query), dwell's functions, and the location's stores.
fn scheduler_session_builder(runtime: Arc<RuntimeEnv>) -> ballista_scheduler::SessionBuilder {
    Arc::new(move |config: SessionConfig| {
        dwell_engine::distributed_state(config, Arc::clone(&runtime))
    })
}

/// dwell's functions, for executors to find the functions a plan names.
fn function_registry(runtime: Arc<RuntimeEnv>) -> Result<BallistaFunctionRegistry> {
    let state = dwell_engine::distributed_state(SessionConfig::new_with_ballista(), runtime)?;
    Ok(BallistaFunctionRegistry::from(&state))
}

/// Runs a Ballista scheduler on `listen` for the data at `location` until the process ends.
pub async fn run_scheduler(
    listen: SocketAddr,
    location: DataLocation,
    store_settings: StoreSettings,
) -> Result<()> {
    check_shareable(&location)?;
    let runtime = dwell_engine::location_runtime(&location, &store_settings)?;
    let config = SchedulerConfig {
        bind_host: listen.ip().to_string(),
        bind_port: listen.port(),
        external_host: listen.ip().to_string(),
        // Executors ask for work; the scheduler needs no connection to them.
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        override_session_builder: Some(scheduler_session_builder(runtime)),
        override_logical_codec: Some(Arc::new(DwellLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(DwellPhysicalCodec::default())),
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|source| Error::Ballista {
            what: "setting up the scheduler".into(),
            source,
        })?;
    start_server(cluster, listen, Arc::new(config))
        .await
        .map_err(|source| Error::Ballista {
            what: format!("scheduler on {listen}"),
            source,
        })
}

/// How an executor runs.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler to ask for work.
    pub scheduler: ClusterUrl,
    /// Where other executors and the client fetch this executor's results (Arrow Flight).
    pub listen: SocketAddr,
    /// Tasks run at once (0: one per core).
    pub task_slots: usize,
    /// Folder for shuffle files (default: a new temporary folder).
    pub work_dir: Option<std::path::PathBuf>,
    /// Memory the executor's tasks may hold together (default: Ballista's share of the
    /// machine's memory). When set, the executor sessionizes with DataFusion's sort, which
    /// spills, instead of sorting each bucket in memory.
    pub memory_limit: Option<usize>,
}

/// Runs a Ballista executor for the data at `location` until the process ends.
pub async fn run_executor(
    options: ExecutorOptions,
    location: DataLocation,
    store_settings: StoreSettings,
) -> Result<()> {
    check_shareable(&location)?;
    let runtime = dwell_engine::location_runtime(&location, &store_settings)?;
    let registry = function_registry(Arc::clone(&runtime))?;
    let config = ExecutorProcessConfig {
        bind_host: options.listen.ip().to_string(),
        external_host: Some(options.listen.ip().to_string()),
        port: options.listen.port(),
        scheduler_host: options.scheduler.host.clone(),
        scheduler_port: options.scheduler.port,
        // Started together with its scheduler, an executor waits for it to listen.
        scheduler_connect_timeout_seconds: 60,
        vcores: options.task_slots,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        work_dir: options
            .work_dir
            .as_ref()
            .map(|dir| dir.display().to_string()),
        memory_pool_size: options.memory_limit.map(|bytes| bytes as u64),
        // Shuffle files of finished jobs are removed once an hour.
        job_data_clean_up_interval_seconds: 3_600,
        job_data_ttl_seconds: 3_600,
        override_function_registry: Some(Arc::new(registry)),
        override_runtime_producer: Some(Arc::new(move |_| Ok(Arc::clone(&runtime)))),
        override_logical_codec: Some(Arc::new(DwellLogicalCodec::default())),
        // Limited memory: sessionize with DataFusion's sort, which spills, as one process does.
        override_physical_codec: Some(Arc::new(
            if options.memory_limit.is_some() && std::env::var_os("DWELL_Y").is_none() {
                DwellPhysicalCodec::spilling_sorts()
            } else {
                DwellPhysicalCodec::default()
            },
        )),
        ..ExecutorProcessConfig::default()
    };
    start_executor_process(Arc::new(config))
        .await
        .map_err(|source| Error::Ballista {
            what: format!("executor on {}", options.listen),
            source,
        })
}

/// The stages `sql` runs in on a cluster, as Ballista's scheduler splits the plan: one block
/// per stage with the number of tasks it runs (one per partition) and its operators. A stage
/// ends where rows change partitioning (a `ShuffleWriterExec`); the next stage's tasks fetch
/// their partition from every executor that wrote one (`ShuffleReaderExec`,
/// `UnresolvedShuffleExec` before the run). This is the plan the scheduler runs: dwell turns
/// Ballista's adaptive planner off (see [`client_upgrade`]).
///
/// `engine` is the client's engine: the plan is made as its scheduler would make it, in
/// [`dwell_engine::distributed_state`] with the engine's settings and stores.
pub async fn explain_stages(engine: &dwell_engine::Engine, sql: &str) -> Result<String> {
    use ballista_scheduler::planner::{DefaultDistributedPlanner, DistributedPlanner};
    use datafusion::physical_plan::{ExecutionPlan, displayable};
    use std::fmt::Write as _;
    let (state, plan) = engine.sql(sql).await?.into_parts();
    let planning =
        dwell_engine::distributed_state(state.config().clone(), state.runtime_env().clone())?;
    let physical = planning
        .create_physical_plan(&state.optimize(&plan)?)
        .await?;
    let stages = DefaultDistributedPlanner::new()
        .plan_query_stages(
            &ballista_core::JobId::new("explain"),
            physical,
            planning.config().options(),
        )
        .map_err(|source| Error::Ballista {
            what: "splitting the plan into stages".into(),
            source,
        })?;
    let mut text = String::new();
    for stage in stages {
        let tasks = stage.input_partition_count();
        let operators = displayable(stage.as_ref() as &dyn ExecutionPlan).indent(false);
        // Writing to a String cannot fail.
        let _ = writeln!(
            text,
            "stage {} ({tasks} task{}):\n{operators}",
            stage.stage_id(),
            if tasks == 1 { "" } else { "s" }
        );
    }
    Ok(text)
}

/// `plan` as an executor receives it: encoded with the scheduler's codec and decoded in `task`,
/// by the codec of an executor with a memory limit (`memory_limited`) or without. Tests and
/// tools use it to see which operators an executor runs without starting one.
pub fn as_executor_decodes(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    task: &datafusion::execution::TaskContext,
    memory_limited: bool,
) -> Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };
    let bytes = physical_plan_to_bytes_with_extension_codec(plan, &DwellPhysicalCodec::default())?;
    let executor = if memory_limited {
        DwellPhysicalCodec::spilling_sorts()
    } else {
        DwellPhysicalCodec::default()
    };
    Ok(physical_plan_from_bytes_with_extension_codec(
        &bytes, task, &executor,
    )?)
}

/// Starts a scheduler and `executors` executors inside this process, on loopback ports the
/// system picks, and returns the scheduler's URL. They run on the current Tokio runtime and end
/// with it. This is Ballista's "standalone" mode with dwell's functions, codecs and stores:
/// tests use it, and it is a way to try a plan's stages without starting processes.
pub async fn start_in_process(
    location: &DataLocation,
    store_settings: &StoreSettings,
    executors: usize,
    task_slots: usize,
) -> Result<ClusterUrl> {
    check_shareable(location)?;
    let runtime = dwell_engine::location_runtime(location, store_settings)?;
    let ballista = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Ballista { what, source }
    };
    let addr = ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
        scheduler_session_builder(Arc::clone(&runtime)),
        Arc::new(SessionConfig::new_with_ballista),
        codec(),
    )
    .await
    .map_err(ballista("starting an in-process scheduler"))?;
    let cluster = ClusterUrl::of(addr);
    for _ in 0..executors {
        let scheduler = SchedulerGrpcClient::connect(cluster.grpc_endpoint())
            .await
            .map_err(|e| Error::Url {
                url: cluster.to_string(),
                reason: format!("cannot reach the in-process scheduler: {e}"),
            })?;
        let registry = function_registry(Arc::clone(&runtime))?;
        let runtime = Arc::clone(&runtime);
        ballista_executor::new_standalone_executor_from_builder(
            scheduler,
            task_slots,
            Arc::new(SessionConfig::new_with_ballista),
            Arc::new(move |_| Ok(Arc::clone(&runtime))),
            codec(),
            registry,
        )
        .await
        .map_err(ballista("starting an in-process executor"))?;
    }
    Ok(cluster)
}
