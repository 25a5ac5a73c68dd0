//! Fused linear layer `x [m, k] @ w [k, n]` for the CPU training backend: one autodiff node
//! whose forward and both gradients are gemm calls writing straight into fresh buffers
//! (`products.rs` says why Flex's matmul is avoided). The calls are the ones Flex makes, so
//! results are bit-identical to `x.matmul(w)`.

use super::products::{product, MatView};
use super::*;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};

#[derive(Debug)]
struct Linear;

/// What the backward needs: `x` for the weight's gradient, `w` for the input's (each kept only
/// when the other side is tracked, as Burn's matmul does).
#[derive(Debug, Clone)]
struct LinearState {
    x: Option<FlexTensor>,
    w: Option<FlexTensor>,
}

impl Backward<Flex, 2> for Linear {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = grads.consume::<Flex>(&ops.node);
        let dy_view = MatView::of(&dy);
        let [px, pw] = ops.parents;
        if let (Some(node), Some(w)) = (px, &ops.state.w) {
            // dx = dy @ w^T
            grads.register::<Flex>(node.id, product(dy_view, MatView::of(w).t()));
        }
        if let (Some(node), Some(x)) = (pw, &ops.state.x) {
            // dw = x^T @ dy
            grads.register::<Flex>(node.id, product(MatView::of(x).t(), dy_view));
        }
    }
}

/// `x [m, k] @ w [k, n]`; `w` may be a transposed view (the tied head's `E^T`).
#[allow(clippy::type_complexity)]
pub fn linear<B: Backend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
) -> Result<Tensor<B, 2>, (Tensor<B, 2>, Tensor<B, 2>)> {
    if !enabled::<B>() || x.dims()[1] != w.dims()[0] {
        return Err((x, w));
    }
    let (x, w) = (to_ad(x), to_ad(w));
    if !all_f32(&[&x, &w]) {
        return Err((from_ad(x), from_ad(w)));
    }
    let (xf, wf) = (x.primitive.clone(), w.primitive.clone());
    let y = product(MatView::of(&xf), MatView::of(&wf));
    let (x_tracked, w_tracked) = (x.is_tracked(), w.is_tracked());
    let out = match Linear
        .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = LinearState {
                x: w_tracked.then_some(xf),
                w: x_tracked.then_some(wf),
            };
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Ok(from_ad(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// Output and both gradients of `x @ w` (w given as `[k, n]`, or as `[n, k]` transposed),
    /// fused or through Burn's matmul.
    fn run(fused_on: bool, m: usize, k: usize, n: usize, transposed: bool) -> [Vec<f32>; 3] {
        FORCE_UNFUSED.with(|f| f.set(!fused_on));
        let dev = Default::default();
        let seed_x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 31.0)
            .collect();
        let x = Tensor::<Ad, 2>::from_data(TensorData::new(seed_x, [m, k]), &dev).require_grad();
        let wshape = if transposed { [n, k] } else { [k, n] };
        let seed_w: Vec<f32> = (0..k * n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let w = Tensor::<Ad, 2>::from_data(TensorData::new(seed_w, wshape), &dev).require_grad();
        let wv = if transposed {
            w.clone().transpose()
        } else {
            w.clone()
        };
        let y = match super::linear(x.clone(), wv) {
            Ok(y) => y,
            Err((x, w)) => x.matmul(w),
        };
        let upstream: Vec<f32> = (0..m * n).map(|i| ((i % 13) as f32 - 6.0) / 7.0).collect();
        let up = Tensor::<Ad, 2>::from_data(TensorData::new(upstream, [m, n]), &dev);
        let grads = (y.clone() * up).sum().backward();
        FORCE_UNFUSED.with(|f| f.set(false));
        let v = |t: Tensor<Flex, 2>| t.into_data().to_vec::<f32>().unwrap();
        [
            v(y.inner()),
            v(x.grad(&grads).unwrap()),
            v(w.grad(&grads).unwrap()),
        ]
    }

    #[test]
    fn matches_burn_matmul_bit_for_bit() {
        // Small (one thread) and above Flex's parallel threshold; plain and transposed weights.
        for (m, k, n) in [(5, 7, 3), (256, 192, 200)] {
            for transposed in [false, true] {
                let fused = run(true, m, k, n, transposed);
                let burn = run(false, m, k, n, transposed);
                for (name, (a, b)) in ["y", "dx", "dw"].iter().zip(fused.iter().zip(&burn)) {
                    assert_eq!(
                        a, b,
                        "{name} differs at {m}x{k}x{n} transposed={transposed}"
                    );
                }
            }
        }
    }
}
