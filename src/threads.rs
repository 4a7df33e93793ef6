//! Compute threads: how many a command uses, and how work is shared among them.
//!
//! Three kinds of work use threads, each in its own way:
//! - The networks' matrix products (training, generation, the image GANs) split their rows
//!   over candle's persistent worker pool. Its workers spin for a moment between jobs, so a
//!   hand-off costs microseconds, which is what the many small products of a 500-row
//!   training step need; a pool whose workers fall asleep between products loses the gain.
//! - Generation runs whole batches side by side, each on one thread (see
//!   [`one_thread`]).
//! - The report's loops over columns and rows use rayon's pool.
//!
//! candle's own matrix products run on one thread: letting them use rayon as well would set
//! rayon's workers and the spinning pool against each other on the same cores.

use std::cell::Cell;

thread_local! {
    static ONE_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// The thread count the environment asks for (`RAYON_NUM_THREADS`), if it asks. Read it
/// before [`configure`], which sets that variable to 1 for candle.
pub fn from_environment() -> Option<usize> {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|value| value.parse().ok())
}

/// The cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

/// Sets the number of compute threads for the whole process. Call it first thing in `main`,
/// before any thread starts: it sets environment variables that candle reads once.
///
/// # Panics
/// If rayon's global pool was already started.
pub fn configure(threads: usize) {
    let threads = threads.max(1);
    // SAFETY: called before any other thread exists (see above), so nothing reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap_or_else(|error| panic!("the thread pool was already started: {error}"));
}

/// The threads a matrix product may split over: the caller and the pool's workers.
pub fn count() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Runs `work` with every matrix product it makes on the calling thread, for work that is
/// itself run side by side with copies of it (a pool serves one caller at a time, so copies
/// sharing it would wait for each other).
pub fn one_thread<R>(work: impl FnOnce() -> R) -> R {
    let before = ONE_THREAD.with(|flag| flag.replace(true));
    let result = work();
    ONE_THREAD.with(|flag| flag.set(before));
    result
}

/// Whether matrix products on this thread split over the pool.
pub(crate) fn shared() -> bool {
    !ONE_THREAD.with(Cell::get) && count() > 1
}
