//! `dwell scheduler`: a Ballista scheduler over the data location, until SIGINT or SIGTERM.

use std::io::Write;

use dwell_engine::DataLocation;

use super::{stop_signal, store_settings};
use crate::args::SchedulerArgs;
use crate::errors::{Result, io};

pub(crate) async fn scheduler(args: SchedulerArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let store = store_settings(&args.data);
    let location = DataLocation::parse_with(&args.data.data, &store)?;
    writeln!(out, "dwell scheduler: df://{} over {location}", args.listen)
        .and_then(|()| out.flush())
        .map_err(io("standard output"))?;
    tokio::select! {
        result = dwell_cluster::run_scheduler(args.listen, location, store) => result?,
        () = stop_signal() => {}
    }
    Ok(())
}
