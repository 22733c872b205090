//! Splitting a CPU output over threads, for the code that computes on
//! memory (LRN, pooling, the AVX2 GEMMs).

/// Runs `work(first_unit, run)` on runs of `out` made of whole units of
/// `unit` floats (a plane, a row of C), at most one run per thread, each
/// run but the last a multiple of `align` units (a GEMM's row tile). With
/// one thread, or one run, `work` runs on the calling thread.
pub(crate) fn for_each_run(
    out: &mut [f32],
    unit: usize,
    align: usize,
    threads: usize,
    work: impl Fn(usize, &mut [f32]) + Sync,
) {
    if unit == 0 {
        return;
    }
    let align = align.max(1);
    let blocks = (out.len() / unit).div_ceil(align);
    let threads = threads.clamp(1, blocks.max(1));
    let units_per_run = blocks.div_ceil(threads).max(1) * align;
    if threads == 1 {
        return work(0, out);
    }
    std::thread::scope(|scope| {
        for (run, chunk) in out.chunks_mut(units_per_run * unit).enumerate() {
            let work = &work;
            scope.spawn(move || work(run * units_per_run, chunk));
        }
    });
}

/// libtorch's CPU thread count (`device::select` sets it to the cores).
pub(crate) fn threads() -> usize {
    usize::try_from(tch::get_num_threads()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unit is visited once, with its index, in aligned runs.
    #[test]
    fn runs_cover_every_unit_once_in_aligned_runs() {
        for (units, align, threads) in
            [(10, 1, 2), (13, 6, 2), (5, 6, 4), (1, 1, 8), (0, 1, 2), (17, 6, 3)]
        {
            let mut out = vec![0f32; units * 3];
            let firsts = std::sync::Mutex::new(Vec::new());
            for_each_run(&mut out, 3, align, threads, |first, run| {
                firsts.lock().unwrap().push(first);
                for (offset, unit) in run.chunks_exact_mut(3).enumerate() {
                    unit.iter_mut().for_each(|v| *v += (first + offset) as f32 + 1.0);
                }
            });
            let want: Vec<f32> = (0..units).flat_map(|u| [u as f32 + 1.0; 3]).collect();
            assert_eq!(out, want, "{units} units, align {align}, {threads} threads");
            let firsts = firsts.into_inner().unwrap();
            assert!(
                firsts.len() <= threads.max(1) && firsts.iter().all(|f| f % align == 0),
                "{firsts:?}"
            );
        }
    }
}
