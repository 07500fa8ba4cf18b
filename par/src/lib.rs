//! `par_map`: a slice mapped on every core when it holds enough work. The server maps
//! a push's records with it (decoding, judging) and the client a pulled page's new
//! records (reading them for their list rows). [`frames::compress`]: a large sync
//! message compressed on every core, in independent zstd frames; both sides send
//! with it. It lives here, not in `shared`, because `shared` starts no thread (an
//! architecture invariant the tidy test checks).

pub mod frames;

/// `items.iter().map(f)`, spread over the machine's cores when each thread would get
/// at least `per_thread` items; in order. A panic in `f` is passed on, as it would be
/// without threads.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    per_thread: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(items.len() / per_thread.max(1)).max(1);
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
    use super::par_map;

    #[test]
    fn the_order_is_kept_with_threads_and_without() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = par_map(&items, 16, |n| n * 2);
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(par_map(&items[..3], 16, |n| n + 1), vec![1, 2, 3]);
        assert!(par_map(&[] as &[u32], 0, |n| *n).is_empty());
    }

    #[test]
    fn a_panic_in_a_thread_is_passed_on() {
        let items: Vec<u32> = (0..1000).collect();
        let caught = std::panic::catch_unwind(|| {
            par_map(&items, 1, |n| {
                assert!(*n != 999, "the last item");
                *n
            })
        });
        assert!(caught.is_err());
    }
}
