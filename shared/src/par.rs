//! `par_map`: a map spread over the machine's cores, for the few places where records
//! are judged or loaded independently of each other (the server judging a push, a
//! device loading a pulled page's new records, the dashboard's export). No I/O, only
//! scoped threads: it lives here so that the server and the client share one copy.

/// The least work worth a thread of its own: sixteen records, a few milliseconds of
/// Automerge.
pub const ITEMS_PER_THREAD: usize = 16;

/// `items.iter().map(f)`, spread over the machine's cores when there are enough items
/// ([`ITEMS_PER_THREAD`] each), results in the items' order. A panic in `f` is passed
/// on, as it would be without threads.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_items_order_with_and_without_threads() {
        for n in [0, 1, 15, 16, 100, 1000] {
            let items: Vec<u64> = (0..n).collect();
            assert_eq!(
                par_map(&items, |x| x * 3),
                items.iter().map(|x| x * 3).collect::<Vec<_>>(),
                "{n} items"
            );
        }
    }
}
