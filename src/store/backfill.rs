//! The rollup backfill: computes each live view's partials for the segments that existed
//! before it (or whose partials were lost), one segment at a time, in the background.

use std::sync::Arc;

use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::record_batch::RecordBatch;

use super::rollups::Progress;
use super::Store;
use crate::catalog::SegmentMeta;
use crate::model::logs_schema;

impl Store {
    /// Runs backfill passes until the process ends: one at once, then one each time a view
    /// is created.
    pub fn spawn_backfill(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                store.backfill_rollups().await;
                // Woken by a new view or lost partials; otherwise a pass a minute catches
                // segments committed while the last pass ran.
                tokio::select! {
                    _ = store.rollups.wake.notified() => {}
                    _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                }
            }
        })
    }

    /// One pass: every segment of the current snapshot that a live view has no partials for.
    pub async fn backfill_rollups(self: &Arc<Self>) {
        for plan in self.rollups.plans() {
            let segments = self.snapshot().segments;
            let mut progress = Progress {
                segments_total: segments.len() as u64,
                ..Progress::default()
            };
            for seg in segments.iter() {
                // A view dropped meanwhile stops its backfill.
                if !self.rollups.plans().iter().any(|p| p.id == plan.id) {
                    break;
                }
                if !self.rollups.has(plan.id, &seg.location.key) {
                    match self.segment_rows(seg).await {
                        Ok(rows) => {
                            let (store, view, key) =
                                (self.clone(), plan.clone(), seg.location.key.clone());
                            let written = tokio::task::spawn_blocking(move || {
                                store.rollups.write_one(&view, &key, &rows)
                            })
                            .await;
                            // A view dropped, or a segment retired, while this ran: its file
                            // would be an orphan.
                            let key = &seg.location.key;
                            let view_gone = !self.rollups.plans().iter().any(|p| p.id == plan.id);
                            let seg_gone = !self
                                .catalog
                                .segments()
                                .iter()
                                .any(|s| &s.location.key == key);
                            if view_gone || seg_gone {
                                let _ = std::fs::remove_file(self.rollups.path(plan.id, key));
                            }
                            if !matches!(written, Ok(Ok(_))) {
                                tracing::warn!(view = %plan.name, segment = seg.id, "rollup backfill failed for a segment; it is aggregated from its rows");
                                progress.failed += 1;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(view = %plan.name, segment = seg.id, error = %e, "rollup backfill could not read a segment");
                            progress.failed += 1;
                        }
                    }
                }
                progress.segments_done += 1;
                self.rollups.set_progress(plan.id, progress);
            }
        }
    }

    /// Every row of a segment, from local disk or fetched whole from the object store.
    async fn segment_rows(&self, seg: &SegmentMeta) -> Result<RecordBatch, String> {
        let batches = self.read_rows(seg).await.map_err(|e| e.to_string())?;
        concat_batches(&logs_schema(), &batches).map_err(|e| e.to_string())
    }
}
