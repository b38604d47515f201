//! WAL framing and replay: torn tail, flipped byte, empty file, truncated length prefix.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use timberline::model::LogRecord;
use timberline::wal::format::{encode_records, frame, MAGIC};
use timberline::wal::{file_name, replay_dir, Wal, WalSink};

fn record(i: usize) -> LogRecord {
    LogRecord {
        ts: 1_700_000_000_000_000 + i as i64,
        ingest_ts: 1,
        tenant: "default".into(),
        service: "svc".into(),
        host: "h".into(),
        level: "INFO".into(),
        msg: format!("message {i} ünïcode"),
        trace_id: (i % 2 == 0).then(|| format!("t{i}")),
        attrs: "{}".into(),
        parse_failed: i % 3 == 0,
        truncated: false,
    }
}

/// Writes a WAL file holding frames 1..=n, each with two records; returns the frame offsets.
fn write_wal(dir: &Path, n: u64) -> (std::path::PathBuf, Vec<usize>) {
    let path = dir.join(file_name(1));
    let mut bytes = MAGIC.to_vec();
    let mut offsets = Vec::new();
    for seq in 1..=n {
        offsets.push(bytes.len());
        let recs = vec![record(seq as usize * 2), record(seq as usize * 2 + 1)];
        bytes.extend(frame(seq, &encode_records(&recs)));
    }
    std::fs::write(&path, &bytes).unwrap();
    (path, offsets)
}

#[test]
fn intact_file_replays_every_record_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_wal(dir.path(), 5);
    let r = replay_dir(dir.path()).unwrap();
    assert_eq!(r.batches.len(), 5);
    assert_eq!(r.max_seq, 5);
    assert!(r.cut.is_empty());
    assert_eq!(r.batches[2].1, vec![record(6), record(7)]);
}

#[test]
fn torn_tail_is_cut_and_not_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_wal(dir.path(), 4);
    let full = std::fs::metadata(&path).unwrap().len();
    // Tear the last frame in the middle of its body.
    let torn = (offsets[3] as u64 + full) / 2;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(torn)
        .unwrap();
    let r = replay_dir(dir.path()).unwrap();
    assert_eq!(
        r.batches.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(r.cut.len(), 1);
    // The file now ends exactly after frame 3: a later append cannot be glued onto garbage.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), offsets[3] as u64);
    let again = replay_dir(dir.path()).unwrap();
    assert!(again.cut.is_empty());
    assert_eq!(again.batches.len(), 3);
}

#[test]
fn flipped_byte_stops_replay_at_that_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (path, offsets) = write_wal(dir.path(), 4);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[offsets[2] + 20] ^= 0x40; // inside frame 3's body
    std::fs::write(&path, &bytes).unwrap();
    let r = replay_dir(dir.path()).unwrap();
    assert_eq!(
        r.batches.iter().map(|b| b.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(r.cut[0].2.contains("CRC"), "{:?}", r.cut);
}

#[test]
fn empty_and_header_only_files_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(file_name(1)), b"").unwrap();
    std::fs::write(dir.path().join(file_name(2)), &MAGIC[..3]).unwrap();
    std::fs::write(dir.path().join(file_name(3)), MAGIC).unwrap();
    let r = replay_dir(dir.path()).unwrap();
    assert!(r.batches.is_empty());
    assert_eq!(r.max_seq, 0);
    assert!(
        !dir.path().join(file_name(1)).exists(),
        "empty file removed"
    );
}

#[test]
fn truncated_length_prefix_and_huge_length_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_wal(dir.path(), 2);
    // Two bytes of a third frame's length prefix.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&[7, 0])
        .unwrap();
    let r = replay_dir(dir.path()).unwrap();
    assert_eq!(r.batches.len(), 2);
    assert_eq!(r.cut.len(), 1);

    // A length prefix claiming 1 GiB more than the file holds.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(&(1u32 << 30).to_le_bytes()).unwrap();
    f.write_all(&[0u8; 12]).unwrap();
    drop(f);
    let r = replay_dir(dir.path()).unwrap();
    assert_eq!(r.batches.len(), 2);
    assert!(r.cut[0].2.contains("past end"), "{:?}", r.cut);
}

struct Collect(Mutex<Vec<u64>>);
impl WalSink for Collect {
    fn publish(&self, seq: u64, _batch: RecordBatch) {
        self.0.lock().unwrap().push(seq);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_are_published_to_every_sink_in_sequence_order_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(Collect(Mutex::new(Vec::new())));
    let second = Arc::new(Collect(Mutex::new(Vec::new())));
    let sinks: Vec<Arc<dyn WalSink>> = vec![sink.clone(), second.clone()];
    let wal = Wal::start(dir.path(), 1, 1 << 20, Vec::new(), sinks).unwrap();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let wal = wal.clone();
        tasks.push(tokio::spawn(async move {
            let recs = vec![record(i)];
            let batch = timberline::model::records_to_batch(&recs).unwrap();
            wal.append(encode_records(&recs), batch).await.unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    let published = sink.0.lock().unwrap().clone();
    assert_eq!(
        published,
        (1..=200).collect::<Vec<u64>>(),
        "published in order"
    );
    assert_eq!(
        *second.0.lock().unwrap(),
        published,
        "the second sink saw the same"
    );
    let r = replay_dir(dir.path()).unwrap();
    assert_eq!(r.batches.len(), 200);
    let mut msgs: Vec<String> = r
        .batches
        .iter()
        .flat_map(|b| b.1.iter().map(|r| r.msg.clone()))
        .collect();
    msgs.sort();
    msgs.dedup();
    assert_eq!(msgs.len(), 200);
}
