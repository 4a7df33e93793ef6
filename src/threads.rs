//! Compute threads: how many a command uses, and how work is shared among them.
//!
//! Three kinds of work use threads, each in its own way:
//! - The networks' matrix products (training, generation, the image GANs) split their output
//!   over a pool of compute threads. Its workers spin for a moment between jobs, so a
//!   hand-off costs microseconds, which is what the many small products of a 500-row
//!   training step need; a pool whose workers fall asleep between products loses the gain.
//!   Parts are claimed, not assigned: the thread that posts a product runs every part no
//!   worker has taken, so a worker the system does not schedule (another process holds its
//!   core) costs nothing but the part it may be running.
//! - Generation runs whole batches side by side, each on one thread (see
//!   [`one_thread`]).
//! - The report's loops over columns and rows use rayon's pool.
//!
//! candle's own matrix products run on one thread: letting them use rayon as well would set
//! rayon's workers and the product pool against each other on the same cores.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

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
        std::env::set_var("CANDLE_NUM_THREADS", "1");
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    POOL.set(Pool::new(threads - 1))
        .unwrap_or_else(|_| panic!("the compute pool was already started"));
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .unwrap_or_else(|error| panic!("the thread pool was already started: {error}"));
}

/// The threads a matrix product may split over: the caller and the pool's workers.
pub fn count() -> usize {
    pool().workers + 1
}

/// The process's compute pool: the one [`configure`] made, else one worker per core but one.
pub(crate) fn pool() -> &'static Pool {
    POOL.get_or_init(|| Pool::new(cores() - 1))
}

static POOL: OnceLock<Pool> = OnceLock::new();

/// Compute threads that share the parts of one job at a time with the thread posting it.
pub(crate) struct Pool {
    shared: &'static Shared,
    workers: usize,
}

struct Shared {
    /// The job on offer, or null.
    job: AtomicPtr<Job>,
    /// Bumped with every job posted, so that a worker can tell a new job from one it has
    /// seen.
    posted: AtomicUsize,
    /// Workers looking at the job on offer; its poster waits for them to leave.
    readers: AtomicUsize,
    /// Held while a job is on offer: one poster at a time.
    busy: AtomicBool,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

/// One posted job: `parts` calls of `run`, claimed one by one.
struct Job {
    run: *const (dyn Fn(usize) + Sync),
    parts: usize,
    next: AtomicUsize,
}

/// Spins of a worker waiting for a job before it starts yielding its core, and yields before
/// it sleeps (a millisecond or two in all on an idle core; a yield returns at once when no
/// other thread wants the core).
const SPINS: u32 = 2_000;
const YIELDS: u32 = 5_000;

impl Pool {
    fn new(workers: usize) -> Pool {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            job: AtomicPtr::new(std::ptr::null_mut()),
            posted: AtomicUsize::new(0),
            readers: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }));
        // A worker the system refuses to start leaves the work to the others.
        let workers = (0..workers)
            .filter(|index| {
                std::thread::Builder::new()
                    .name(format!("synth-compute-{index}"))
                    .spawn(move || work(shared))
                    .is_ok()
            })
            .count();
        Pool { shared, workers }
    }

    /// Runs `run(part)` for every part in `0..parts`, on the calling thread and any workers
    /// free to help, and returns when all have run. Another thread's job in progress makes
    /// this one run on the calling thread alone.
    pub(crate) fn execute(&self, parts: usize, run: &(dyn Fn(usize) + Sync)) {
        let shared = self.shared;
        if self.workers == 0 || shared.busy.swap(true, SeqCst) {
            (0..parts).for_each(run);
            return;
        }
        // SAFETY: only the lifetime is erased; the `Offer` below withdraws the job, and waits
        // for every worker to stop using it, before `run` and `job` go out of scope (also
        // when a part panics).
        let run: &'static (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(run) };
        let job = Job {
            run,
            parts,
            next: AtomicUsize::new(0),
        };
        let offer = Offer { shared };
        shared.job.store(&job as *const Job as *mut Job, SeqCst);
        shared.posted.fetch_add(1, SeqCst);
        if shared.sleepers.load(SeqCst) > 0 {
            let _guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        job.claim();
        drop(offer);
    }
}

impl Job {
    /// Runs parts until none is left to claim.
    fn claim(&self) {
        loop {
            let part = self.next.fetch_add(1, SeqCst);
            if part >= self.parts {
                return;
            }
            // SAFETY: `run` outlives the job's offer (see `Pool::execute`).
            unsafe { (*self.run)(part) };
        }
    }
}

/// A posted job; dropping it withdraws the job and waits until no worker looks at it any
/// more, by which time every part has run.
struct Offer {
    shared: &'static Shared,
}

impl Drop for Offer {
    fn drop(&mut self) {
        let shared = self.shared;
        shared.job.store(std::ptr::null_mut(), SeqCst);
        // Every part is claimed by now (or, if a part panicked here, claimed by workers still
        // reading), and a worker finishes the parts it claimed before it stops reading.
        while shared.readers.load(SeqCst) != 0 {
            std::hint::spin_loop();
        }
        shared.busy.store(false, SeqCst);
    }
}

fn work(shared: &'static Shared) {
    let mut seen = 0usize;
    let mut idle = 0u32;
    loop {
        let posted = shared.posted.load(SeqCst);
        if posted == seen {
            idle = idle.saturating_add(1);
            if idle < SPINS {
                std::hint::spin_loop();
            } else if idle < SPINS + YIELDS {
                std::thread::yield_now();
            } else {
                let guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
                shared.sleepers.fetch_add(1, SeqCst);
                if shared.posted.load(SeqCst) == seen {
                    // The timeout only bounds a wait; a post wakes the sleepers.
                    let _ = shared.wake.wait_timeout(guard, Duration::from_millis(50));
                }
                shared.sleepers.fetch_sub(1, SeqCst);
                idle = SPINS;
            }
            continue;
        }
        seen = posted;
        idle = 0;
        let job = shared.job.load(SeqCst);
        if job.is_null() {
            continue;
        }
        shared.readers.fetch_add(1, SeqCst);
        // The poster withdraws its job before it waits for readers to leave: a job still
        // on offer after this reader announced itself stays alive until it leaves.
        if shared.job.load(SeqCst) == job {
            // SAFETY: see above.
            let job = unsafe { &*job };
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.claim())).is_err() {
                eprintln!("a compute thread panicked");
                std::process::abort();
            }
        }
        shared.readers.fetch_sub(1, SeqCst);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part of a job runs exactly once, also when several threads post jobs at once
    /// (one gets the workers, the others run theirs alone) and jobs follow each other
    /// closely.
    #[test]
    fn every_part_runs_once_whoever_posts() {
        let pool = Pool::new(2);
        std::thread::scope(|scope| {
            for poster in 0..3 {
                let pool = &pool;
                scope.spawn(move || {
                    for round in 0..200 {
                        let parts = 1 + (poster + round) % 7;
                        let runs: Vec<AtomicUsize> =
                            (0..parts).map(|_| AtomicUsize::new(0)).collect();
                        pool.execute(parts, &|part| {
                            runs[part].fetch_add(1, SeqCst);
                        });
                        assert!(runs.iter().all(|count| count.load(SeqCst) == 1));
                    }
                });
            }
        });
    }

    /// A job whose part waits for another part to start finishes: the parts run on
    /// different threads at once (the pool has a worker awake), so the pool shares work.
    #[test]
    fn parts_run_side_by_side() {
        let pool = Pool::new(1);
        let started = AtomicUsize::new(0);
        let waited = std::time::Instant::now();
        pool.execute(2, &|_| {
            started.fetch_add(1, SeqCst);
            while started.load(SeqCst) < 2 {
                assert!(
                    waited.elapsed() < Duration::from_secs(10),
                    "parts ran one by one"
                );
                std::hint::spin_loop();
            }
        });
    }
}
