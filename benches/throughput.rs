//! `cargo bench`: the tables of `llite-tui bench --large` (training step, sampling and
//! checkpoint I/O next to PyTorch / transformers and the raw disk). Checkpoint I/O is measured
//! in the system temp directory here; `llite-tui bench --io-dir DIR` picks another disk.

fn main() -> anyhow::Result<()> {
    llite_tui::alloc_tuning::keep_freed_memory();
    llite_tui::bench::run_table(5, true, &std::env::temp_dir(), &[])
}
