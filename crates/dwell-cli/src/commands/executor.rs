//! `dwell executor`: a Ballista executor taking work from a scheduler, until SIGINT or SIGTERM.

use std::io::Write;

use dwell_engine::DataLocation;

use super::{stop_signal, store_settings};
use crate::args::ExecutorArgs;
use crate::errors::{Result, io};

pub(crate) async fn executor(args: ExecutorArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let store = store_settings(&args.data);
    let location = DataLocation::parse_with(&args.data.data, &store)?;
    let options = dwell_cluster::ExecutorOptions {
        scheduler: args.scheduler.parse()?,
        listen: args.listen,
        task_slots: args.task_slots,
        work_dir: args.work_dir,
        memory_limit: args.data.memory_limit,
    };
    writeln!(
        out,
        "dwell executor: {} for {} over {location}",
        options.listen, options.scheduler
    )
    .and_then(|()| out.flush())
    .map_err(io("standard output"))?;
    tokio::select! {
        result = dwell_cluster::run_executor(options, location, store) => result?,
        () = stop_signal() => {}
    }
    Ok(())
}
