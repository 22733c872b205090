//! Work spread over all cores.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `work(index, item)` for every item of `items`, on all cores, the results
/// in the order of `items`. Items are handed out one at a time, so a slow one
/// does not hold up a fixed share. Err with a panic's payload when a worker
/// panicked (a bug); every worker is joined first.
pub(crate) fn map_on_all_cores<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(usize, &T) -> R + Sync,
) -> std::thread::Result<Vec<R>> {
    let workers =
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len()).max(1);
    let next = AtomicUsize::new(0);
    let joined: Vec<std::thread::Result<Vec<(usize, R)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(index) else { break };
                        done.push((index, work(index, item)));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut results = Vec::with_capacity(items.len());
    for done in joined {
        results.extend(done?);
    }
    results.sort_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, result)| result).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_item_order() {
        let items: Vec<u64> = (0..1000).collect();
        let got = map_on_all_cores(&items, |index, &item| (index, item * 2)).unwrap();
        assert_eq!(got, items.iter().map(|&i| (i as usize, i * 2)).collect::<Vec<_>>());
        assert_eq!(map_on_all_cores(&[] as &[u8], |_, &b| b).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_panicking_worker_is_an_error() {
        let items = [1, 2, 3];
        let got = map_on_all_cores(&items, |_, &item| if item == 2 { panic!("bug") } else { item });
        assert!(got.is_err());
    }
}
