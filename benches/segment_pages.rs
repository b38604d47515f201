//! The page-size trade-off of compacted segments: the flush's small pages (32 KiB; msg 128, attrs
//! 64), which make a point lookup decode little, against archive-sized pages (1 MiB), which
//! compress better. Bytes of a 1M-row segment, and the time of one-row lookups through the page
//! index (metadata decoded once, as the footer cache keeps it; file in the OS page cache).
//!
//! `cargo bench --bench segment_pages` (figures in benches/RESULTS.md).

use std::fs::File;
use std::time::Instant;

use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::metadata::PageIndexPolicy;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use rand::{Rng, SeedableRng};
use timberline::generate::Generator;
use timberline::model::records_to_batch;
use timberline::segment::writer_properties;

const START: i64 = 1_705_276_800_000_000;
const ROWS: usize = 1_000_000;
const LOOKUPS: usize = 400;

fn archive_properties() -> WriterProperties {
    let mut b = writer_properties()
        .into_builder()
        .set_data_page_size_limit(1 << 20)
        .set_data_page_row_count_limit(64 * 1024)
        .set_write_batch_size(1024);
    for wide in ["msg", "attrs"] {
        b = b.set_column_data_page_size_limit(ColumnPath::from(wide), 1 << 20);
    }
    b.build()
}

fn main() {
    let mut g = Generator::new(1, START, 10_000);
    let records: Vec<_> = (0..ROWS).map(|_| g.next_record()).collect();
    let batch = records_to_batch(&records).expect("batch");
    let dir = tempfile::tempdir().expect("tempdir");
    println!("| pages | bytes per 1M rows | one-row lookup p50 | p90 |");
    println!("|---|---|---|---|");
    for (name, props) in [
        ("flush (32 KiB; msg 128, attrs 64)", writer_properties()),
        ("archive (1 MiB)", archive_properties()),
    ] {
        let path = dir.path().join(format!("{}.parquet", name.len()));
        let file = File::create(&path).expect("create");
        let mut w = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let bytes = std::fs::metadata(&path).expect("meta").len();
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let meta = ArrowReaderMetadata::load(&File::open(&path).expect("open"), options)
            .expect("metadata");
        let starts: Vec<usize> = meta
            .metadata()
            .row_groups()
            .iter()
            .scan(0usize, |at, g| {
                let s = *at;
                *at += g.num_rows() as usize;
                Some(s)
            })
            .collect();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut took = Vec::with_capacity(LOOKUPS);
        for _ in 0..LOOKUPS {
            let row = rng.gen_range(0..ROWS);
            let group = starts.partition_point(|&s| s <= row) - 1;
            let in_group = row - starts[group];
            let group_rows = meta.metadata().row_group(group).num_rows() as usize;
            let selection = RowSelection::from_consecutive_ranges(
                std::iter::once(in_group..in_group + 1),
                group_rows,
            );
            let t = Instant::now();
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
                File::open(&path).expect("open"),
                meta.clone(),
            )
            .with_row_groups(vec![group])
            .with_row_selection(selection)
            .build()
            .expect("reader");
            let n: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
            took.push(t.elapsed());
            assert_eq!(n, 1);
        }
        took.sort();
        let us = |d: std::time::Duration| d.as_secs_f64() * 1e6;
        println!(
            "| {name} | {bytes} | {:.0} µs | {:.0} µs |",
            us(took[LOOKUPS / 2]),
            us(took[LOOKUPS * 9 / 10])
        );
    }
}
