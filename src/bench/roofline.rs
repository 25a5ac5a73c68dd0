//! The roofline row: the best f32 GEMM throughput this machine reaches with the bench's
//! threads, measured in the same invocation (our matmul at the bench models' shapes and a
//! large square one, and PyTorch's at the same shapes), so every training row's GFLOP/s can be
//! read as a share of the physical limit rather than only next to another framework.

use super::{reference, BenchCase};
use burn::tensor::{Distribution, Tensor};
use std::time::Instant;

type Gemm = burn::backend::Flex;

/// Side of the square GEMM that shows the kernel's best case on this machine.
const SQUARE: usize = 2048;
/// Timed products per shape; the best is kept (the roofline is a best case by definition).
const REPEATS: usize = 5;

/// An `[m, k] @ [k, n]` product and where it occurs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmShape {
    pub label: String,
    pub m: usize,
    pub k: usize,
    pub n: usize,
}

impl GemmShape {
    fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }

    /// `MxKxN`, the form `gemm.py` reads.
    fn spec(&self) -> String {
        format!("{}x{}x{}", self.m, self.k, self.n)
    }
}

/// The largest products of one training step of each case (the MLP's up/gate and down
/// projections and the logits), then the large square one.
pub fn shapes(cases: &[BenchCase]) -> Vec<GemmShape> {
    let mut out = Vec::new();
    for case in cases {
        let tokens = case.batch * case.seq;
        let (d, ff, vocab) = (case.model.d_model, case.model.ff_dim, case.model.vocab_size);
        for (what, k, n) in [("mlp up", d, ff), ("mlp down", ff, d), ("logits", d, vocab)] {
            out.push(GemmShape {
                label: format!("{} {what}", case.name),
                m: tokens,
                k,
                n,
            });
        }
    }
    out.push(GemmShape {
        label: format!("square {SQUARE}"),
        m: SQUARE,
        k: SQUARE,
        n: SQUARE,
    });
    out
}

/// Best GFLOP/s of our matmul (the Flex backend's GEMM, which training uses) at `shape`.
pub fn ours(shape: &GemmShape) -> f64 {
    let device = Default::default();
    let x = Tensor::<Gemm, 2>::random([shape.m, shape.k], Distribution::Default, &device);
    let w = Tensor::<Gemm, 2>::random([shape.k, shape.n], Distribution::Default, &device);
    let run = || {
        let y = x.clone().matmul(w.clone());
        // Reading one element waits for the product on any backend.
        let _ = y.slice([0..1, 0..1]).into_data();
    };
    run();
    let mut best = f64::INFINITY;
    for _ in 0..REPEATS {
        let start = Instant::now();
        run();
        best = best.min(start.elapsed().as_secs_f64());
    }
    shape.flops() / best / 1e9
}

/// One measured row: our GFLOP/s and PyTorch's (when a reference Python is there).
#[derive(Debug, Clone)]
pub struct GemmRow {
    pub shape: GemmShape,
    pub ours: f64,
    pub torch: Option<f64>,
}

/// The roofline: the best of every measurement in `rows`.
pub fn peak(rows: &[GemmRow]) -> f64 {
    rows.iter()
        .flat_map(|r| [Some(r.ours), r.torch])
        .flatten()
        .fold(0.0, f64::max)
}

/// Measure every shape on our side, then PyTorch's in one reference run; `Err` in the second
/// element says why PyTorch's numbers are missing.
pub fn measure(
    cases: &[BenchCase],
    python: Option<&str>,
    threads: usize,
) -> (Vec<GemmRow>, Option<String>) {
    let shapes = shapes(cases);
    let torch = python.map(|py| {
        let specs: Vec<String> = shapes.iter().map(GemmShape::spec).collect();
        reference::gemm(py, &specs, threads, REPEATS)
    });
    let (torch, note) = match torch {
        Some(Ok(t)) => (Some(t), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let rows = shapes
        .into_iter()
        .enumerate()
        .map(|(i, shape)| GemmRow {
            ours: ours(&shape),
            torch: torch.as_ref().and_then(|t| t.get(i).copied()),
            shape,
        })
        .collect();
    (rows, note)
}

/// Print the GEMM table and return the roofline.
pub fn print_table(rows: &[GemmRow]) -> f64 {
    println!(
        "{:<28} {:>16} {:>10} {:>12}",
        "f32 GEMM", "M x K x N", "llite", "pytorch"
    );
    for r in rows {
        println!(
            "{:<28} {:>16} {:>10.1} {:>12}",
            r.shape.label,
            r.shape.spec(),
            r.ours,
            r.torch.map_or("-".into(), |t| format!("{t:.1}"))
        );
    }
    let roof = peak(rows);
    println!(
        "roofline (best of the above): {roof:.1} GFLOP/s; GFLOP/s above are best of {REPEATS}."
    );
    println!();
    roof
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_the_best_of_both_sides() {
        let shape = GemmShape {
            label: "x".into(),
            m: 1,
            k: 1,
            n: 1,
        };
        let rows = vec![
            GemmRow {
                shape: shape.clone(),
                ours: 90.0,
                torch: Some(120.0),
            },
            GemmRow {
                shape,
                ours: 130.0,
                torch: None,
            },
        ];
        assert_eq!(peak(&rows), 130.0);
    }

    /// Our GEMM measurement computes a real product: a small one is timed and finite.
    #[test]
    fn ours_measures_a_finite_rate() {
        let g = ours(&GemmShape {
            label: "small".into(),
            m: 64,
            k: 64,
            n: 64,
        });
        assert!(g.is_finite() && g > 0.0, "{g}");
    }
}
