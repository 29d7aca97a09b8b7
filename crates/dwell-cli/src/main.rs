//! `dwell`: session analytics over user-interaction events. See `dwell --help`.

// Queries allocate and free large buffers at a high rate; the system allocator hands them back
// to the kernel and faults fresh pages in again (a quarter of a sessions query's time went to
// page faults), mimalloc reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dwell_cli::main()
}
