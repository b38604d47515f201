//! The in-memory nearest-timestamp kernel at 1k / 100k / 1M entries with RANDOM targets:
//! unfiltered, level-filtered (INFO, half the rows) and a rare level (1 row in 10,000), plus the
//! repeated-key case the Go baseline reports and the range cut the hot-buffer search runs.
//!
//! `cargo bench --bench nearest_kernel` (figures in benches/RESULTS.md).

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use timberline_udfs::nearest::kernel;

/// A sorted run of `n` timestamps ~1 ms apart with jitter, and a level per row.
fn run(n: usize) -> (Vec<i64>, Vec<&'static str>) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut t = 1_705_312_800_000_000i64;
    let ts = (0..n)
        .map(|_| {
            t += rng.gen_range(1..2_000);
            t
        })
        .collect();
    let levels = (0..n)
        .map(|i| {
            if i % 10_000 == 5_000 {
                "FATAL"
            } else if rng.gen_bool(0.5) {
                "INFO"
            } else {
                "DEBUG"
            }
        })
        .collect();
    (ts, levels)
}

fn targets(ts: &[i64]) -> Vec<i64> {
    let mut rng = StdRng::seed_from_u64(2);
    let (lo, hi) = (ts[0], ts[ts.len() - 1]);
    (0..4_096).map(|_| rng.gen_range(lo..=hi)).collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("nearest_kernel");
    for n in [1_000usize, 100_000, 1_000_000] {
        let (ts, levels) = run(n);
        let postings = kernel::Postings::build(n, |i| Some(levels[i]));
        let targets = targets(&ts);
        let mut out = Vec::with_capacity(16);
        let mut i = 0usize;
        let mut next = || {
            i = (i + 1) & 4_095;
            targets[i]
        };
        group.bench_function(BenchmarkId::new("random", n), |b| {
            b.iter(|| {
                out.clear();
                kernel::nearest(&ts, black_box(next()), 1, &mut out);
                black_box(out.first().copied())
            })
        });
        let fixed = ts[n / 2] + 7;
        group.bench_function(BenchmarkId::new("repeated_key", n), |b| {
            b.iter(|| {
                out.clear();
                kernel::nearest(&ts, black_box(fixed), 1, &mut out);
                black_box(out.first().copied())
            })
        });
        let info = postings.rows("INFO");
        group.bench_function(BenchmarkId::new("repeated_key_level_INFO", n), |b| {
            b.iter(|| {
                out.clear();
                kernel::nearest_among(&ts, info, black_box(fixed), 1, &mut out);
                black_box(out.first().copied())
            })
        });
        for level in ["INFO", "FATAL"] {
            let rows = postings.rows(level);
            if rows.is_empty() {
                continue;
            }
            group.bench_function(BenchmarkId::new(format!("random_level_{level}"), n), |b| {
                b.iter(|| {
                    out.clear();
                    kernel::nearest_among(&ts, rows, black_box(next()), 1, &mut out);
                    black_box(out.first().copied())
                })
            });
        }
        group.bench_function(BenchmarkId::new("random_range_10ms", n), |b| {
            b.iter(|| {
                let t = black_box(next());
                black_box(kernel::range(&ts, t - 10_000, t + 10_000))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
