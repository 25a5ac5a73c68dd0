//! `[train] activation_checkpointing`: recomputing each block in the backward gives the same
//! gradients as the plain backward (fused CPU kernels and the generic formulation, tied and
//! untied head, masked SFT loss, several micro-batches), and a run trains the same losses.

mod common;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use common::*;
use llite_tui::config::{ModelConfig, Precision};
use llite_tui::model::params::tensor_to_vec;
use llite_tui::model::Llama;
use llite_tui::protocol::StartFrom;
use llite_tui::train::backward::{micro_batch, BackwardPlan, MicroBatch};
use llite_tui::train::engine::spawn;
use llite_tui::train::optim::GradBuffer;
use rand::{Rng, SeedableRng};

type Ad = Autodiff<Flex>;

fn tiny_model(tied: bool) -> ModelConfig {
    let dir = std::path::Path::new("unused");
    let mut m = tiny_config(dir, 1).model;
    m.n_layers = 3;
    m.tie_embeddings = tied;
    m
}

fn batch(m: &ModelConfig, rows: usize, seq: usize, seed: u64, masked: bool) -> MicroBatch<Ad> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<i64> = (0..rows * (seq + 1))
        .map(|_| rng.random_range(0..m.vocab_size as i64))
        .collect();
    let device = Default::default();
    let tokens = Tensor::<Ad, 2, Int>::from_data(TensorData::new(ids, [rows, seq + 1]), &device);
    let mask = masked.then(|| {
        let w: Vec<f32> = (0..rows * seq).map(|i| (i % 3 != 0) as u8 as f32).collect();
        Tensor::<Ad, 1>::from_data(TensorData::new(w, [rows * seq]), &device)
    });
    MicroBatch::from_rows(tokens, mask)
}

/// Flattened gradients and losses of `micro` micro-batches under `plan`.
fn gradients(
    model: &Llama<Ad>,
    batches: &[MicroBatch<Ad>],
    plan: BackwardPlan,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut buffer = GradBuffer::default();
    let losses = batches
        .iter()
        .flat_map(|b| tensor_to_vec(micro_batch(model, b, plan, &mut buffer)))
        .collect();
    let grads = buffer
        .grads()
        .iter()
        .map(|g| tensor_to_vec(g.clone().expect("every parameter has a gradient")))
        .collect();
    (losses, grads)
}

fn assert_close(what: &str, a: &[Vec<f32>], b: &[Vec<f32>]) {
    assert_eq!(a.len(), b.len(), "{what}: parameter count");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        let worst = x.iter().zip(y).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(
            worst <= 1e-5 * scale,
            "{what}: parameter {i} differs by {worst} (max |grad| {scale})"
        );
    }
}

fn compare(tied: bool, masked: bool, unfused: bool) {
    llite_tui::model::fused::FORCE_UNFUSED.with(|f| f.set(unfused));
    let m = tiny_model(tied);
    let model = Llama::<Ad>::new(&m, 5, &Default::default());
    let batches = [batch(&m, 2, 16, 1, masked), batch(&m, 2, 16, 2, masked)];
    let plain = BackwardPlan::default();
    let recompute = BackwardPlan {
        checkpointing: true,
        precision: Precision::F32,
    };
    let (loss_a, grads_a) = gradients(&model, &batches, plain);
    let (loss_b, grads_b) = gradients(&model, &batches, recompute);
    llite_tui::model::fused::FORCE_UNFUSED.with(|f| f.set(false));
    assert_eq!(loss_a, loss_b, "the loss does not depend on checkpointing");
    let what = format!("tied={tied} masked={masked} unfused={unfused}");
    assert_close(&what, &grads_a, &grads_b);
    // The comparison can fail: a gradient from a different batch is not close.
    let (_, other) = gradients(&model, &[batch(&m, 2, 16, 9, masked)], plain);
    assert!(
        std::panic::catch_unwind(|| assert_close("other", &grads_a, &other)).is_err(),
        "{what}: the tolerance cannot tell two batches apart"
    );
}

#[test]
fn recomputed_gradients_match_the_plain_backward() {
    compare(false, false, false);
    compare(true, false, false);
    compare(false, true, false);
}

#[test]
fn recomputed_gradients_match_without_the_fused_kernels() {
    compare(true, true, true);
}

#[test]
fn a_checkpointed_run_trains_the_same_losses() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = small_corpus(dir.path(), 100_000);
    let cfg = tiny_config(&corpus, 12);
    let plain = steps(&run_to_end(spawn(request(
        cfg.clone(),
        dir.path(),
        "plain",
        StartFrom::Fresh,
    ))));
    let mut on = cfg;
    on.train.activation_checkpointing = true;
    let recomputed = steps(&run_to_end(spawn(request(
        on,
        dir.path(),
        "on",
        StartFrom::Fresh,
    ))));
    assert_eq!(plain.len(), 12);
    assert_eq!(recomputed.len(), 12);
    for (a, b) in plain.iter().zip(&recomputed) {
        assert!(
            (a.loss - b.loss).abs() <= 1e-4 * a.loss.abs(),
            "step {}: loss {} plain vs {} checkpointed",
            a.step,
            a.loss,
            b.loss
        );
    }
}
