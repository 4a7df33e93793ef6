//! The `synth` binary: parse the command line, set up logging, run, map the outcome to an exit
//! code (0 success, 1 a quality gate failed, 2 error).

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`: its place in the `mi_option_e` enum, the same in
/// mimalloc 2 and 3 (libmimalloc-sys names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Training frees and allocates the same activation buffers at every step; returning them
    // to the system made each step fault in and zero fresh pages (about 5% of a step).
    // SAFETY: sets one option value; nothing else runs yet.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    flush_denormals();
    let cli = synth::cli::Cli::parse();
    synth::threads::configure(cli.threads());
    let level = match cli.verbose {
        0 => "warn",
        1 => "warn,synth=debug",
        _ => "warn,synth=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();

    match synth::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<synth::cli::GateFailed>().is_some() => {
            eprintln!("{error}");
            ExitCode::from(1)
        }
        Err(error) => {
            let mut message = format!("error: {error}");
            for cause in error.chain().skip(1) {
                message.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// Sets the CPU to flush denormal floats to zero. Late in training some Adam moments and
/// gradients decay into the denormal range, where x86 arithmetic is many times slower; zero
/// is as good a value for them. Threads started later inherit the setting.
fn flush_denormals() {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    {
        const FLUSH_TO_ZERO: u32 = 1 << 15;
        const DENORMALS_ARE_ZERO: u32 = 1 << 6;
        // SAFETY: reading and writing MXCSR only changes how this thread rounds denormals.
        #[allow(deprecated)]
        unsafe {
            use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
            _mm_setcsr(_mm_getcsr() | FLUSH_TO_ZERO | DENORMALS_ARE_ZERO);
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
