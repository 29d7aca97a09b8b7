//! `dwell generate`: synthetic events and users into the data location, then the headline
//! metrics over them.

use std::io::Write;

use dwell_engine::GenerateOptions;

use super::open;
use crate::HEADLINE_SQL;
use crate::args::GenerateArgs;
use crate::errors::{CliError, Result, io};
use crate::output::{Format, print};

pub(crate) async fn generate(args: GenerateArgs, out: &mut (dyn Write + Send)) -> Result<()> {
    let engine = open(&args.data, true).await?;
    let options = GenerateOptions {
        events: args.events,
        users: args.users.unwrap_or((args.events / 200).max(10)),
        days: args.days,
        seed: args.seed,
        ..GenerateOptions::default()
    };
    if options.days == 0 {
        return Err(CliError::Usage("--days must be at least 1".into()));
    }
    let bar = indicatif::ProgressBar::new(options.events);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} generating [{bar:30}] {pos}/{len} events ({per_sec}, {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let reports = engine
        .generate(&options, &|done| bar.set_position(done))
        .await?;
    bar.finish_and_clear();
    let landed: usize = reports.iter().map(|r| r.rows).sum();
    let files: usize = reports.iter().map(|r| r.files.len()).sum();
    let again = reports.iter().filter(|r| r.already_landed).count();
    writeln!(
        out,
        "generated {} events for {} users over {} days (seed {}) into {} in {:.1} s: \
         {landed} events landed in {files} files{}",
        options.events,
        options.users,
        options.days,
        options.seed,
        engine.location(),
        started.elapsed().as_secs_f64(),
        if again > 0 {
            format!(", {again} chunks had landed before and were skipped")
        } else {
            String::new()
        }
    )
    .map_err(io("writing the output"))?;
    let batches = engine.sql(HEADLINE_SQL).await?.collect().await?;
    print(&batches, Format::Table, out)
}
