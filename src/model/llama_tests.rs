//! Tests of the decoder: causality, KV-cache generation against the full forward, fused
//! kernels against the generic formulation, seeded init, explicit head_dim and RoPE scaling.

use super::*;
use crate::model::params::tensor_to_vec;
use burn::backend::Flex;

fn small() -> ModelConfig {
    ModelConfig {
        vocab_size: 50,
        d_model: 32,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        ff_dim: 48,
        max_seq_len: 16,
        tie_embeddings: false,
        ..ModelConfig::default()
    }
}

/// `small()` with Llama 3's extras: a head width other than d_model / n_heads (12, not 8) and
/// llama3 RoPE scaling whose three frequency bands all occur at head_dim 12.
fn llama3_shaped() -> ModelConfig {
    ModelConfig {
        head_dim: 12,
        rope_scaling: crate::config::RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 64,
        },
        ..small()
    }
}

fn logits(model: &Llama<Flex>, ids: &[i64]) -> Vec<f32> {
    let t = Tensor::<Flex, 2, Int>::from_data(
        TensorData::new(ids.to_vec(), [1, ids.len()]),
        &Default::default(),
    );
    tensor_to_vec(model.forward(t, 0, None))
}

#[test]
fn attention_is_causal() {
    let model = Llama::<Flex>::new(&small(), 7, &Default::default());
    let a = [3i64, 9, 4, 1, 7, 2, 8, 5];
    let mut b = a;
    b[5] = 33; // change token t+1 = 5
    let (la, lb) = (logits(&model, &a), logits(&model, &b));
    let v = 50;
    for t in 0..5 {
        for i in 0..v {
            assert_eq!(la[t * v + i], lb[t * v + i], "position {t} saw the future");
        }
    }
    assert!(
        (5 * v..8 * v).any(|i| la[i] != lb[i]),
        "later positions must see the change"
    );
}

/// Generation's one-row paths (grouped queries, `E h^T` for tied embeddings) give the
/// full forward's logits, tied and untied.
#[test]
fn kv_cache_matches_full_forward() {
    for tie_embeddings in [false, true] {
        let cfg = ModelConfig {
            tie_embeddings,
            ..small()
        };
        kv_cache_matches_full_forward_for(&cfg);
    }
    kv_cache_matches_full_forward_for(&llama3_shaped());
}

/// An explicit head_dim shapes the projections, and RoPE scaling reaches the forward pass
/// (same weights, other logits), so neither is silently ignored.
#[test]
fn head_dim_shapes_the_projections_and_scaling_changes_logits() {
    let cfg = llama3_shaped();
    let mut run = crate::config::RunConfig {
        model: cfg.clone(),
        ..Default::default()
    };
    run.train.seq_len = cfg.max_seq_len;
    run.validate().unwrap();
    let model = Llama::<Flex>::new(&cfg, 3, &Default::default());
    let b = &model.layers[0];
    assert_eq!(b.q_proj.dims(), [32, 48]);
    assert_eq!(b.k_proj.dims(), [32, 24]);
    assert_eq!(b.o_proj.dims(), [48, 32]);
    let plain_rope = ModelConfig {
        rope_scaling: crate::config::RopeScaling::None,
        ..cfg.clone()
    };
    let plain = Llama::<Flex>::new(&plain_rope, 3, &Default::default());
    let ids: Vec<i64> = (0..12).map(|i| (i * 7 % 50) as i64).collect();
    let (a, p) = (logits(&model, &ids), logits(&plain, &ids));
    // Position 0 has angle 0 under any scaling; later positions differ.
    assert_eq!(a[..50], p[..50]);
    assert!(a[50..].iter().zip(&p[50..]).any(|(x, y)| x != y));
}

fn kv_cache_matches_full_forward_for(cfg: &ModelConfig) {
    let model = Llama::<Flex>::new(cfg, 3, &Default::default());
    let ids = [5i64, 1, 8, 22, 13, 2];
    let full = logits(&model, &ids);
    let device = Default::default();
    let mut cache = KvCache::new(2);
    let prefix =
        Tensor::<Flex, 2, Int>::from_data(TensorData::new(ids[..3].to_vec(), [1, 3]), &device);
    let mut got = tensor_to_vec(model.forward(prefix, 0, Some(&mut cache)));
    for (pos, &id) in ids.iter().enumerate().skip(3) {
        let t = Tensor::<Flex, 2, Int>::from_data(TensorData::new(vec![id], [1, 1]), &device);
        got.extend(tensor_to_vec(model.forward(t, pos, Some(&mut cache))));
    }
    for (i, (x, y)) in full.iter().zip(&got).enumerate() {
        assert!((x - y).abs() < 1e-4, "logit {i}: {x} vs {y}");
    }
}

/// The fused CPU training kernels give the generic formulation's loss and gradients.
#[test]
fn fused_kernels_match_generic_gradients() {
    fused_kernels_match_generic_gradients_for(&ModelConfig {
        tie_embeddings: true,
        ..small()
    });
    fused_kernels_match_generic_gradients_for(&llama3_shaped());
}

fn fused_kernels_match_generic_gradients_for(cfg: &ModelConfig) {
    type Ad = burn::backend::Autodiff<Flex>;
    let rows: Vec<i64> = (0..2 * 9).map(|i| (i * 17 % 50) as i64).collect();
    let run = |unfused: bool| {
        fused::FORCE_UNFUSED.with(|f| f.set(unfused));
        let model = Llama::<Ad>::new(cfg, 5, &Default::default());
        let t = Tensor::<Ad, 2, Int>::from_data(
            TensorData::new(rows.clone(), [2, 9]),
            &Default::default(),
        );
        let loss = model.loss(t);
        let l = tensor_to_vec(loss.clone().inner())[0];
        let g = loss.backward();
        let mut out = vec![("embed", tensor_to_vec(model.embed_tokens.grad(&g).unwrap()))];
        out.push(("norm", tensor_to_vec(model.norm.grad(&g).unwrap())));
        for (i, b) in model.layers.iter().enumerate() {
            let _ = i;
            out.push(("in_ln", tensor_to_vec(b.input_layernorm.grad(&g).unwrap())));
            out.push(("q", tensor_to_vec(b.q_proj.grad(&g).unwrap())));
            out.push(("k", tensor_to_vec(b.k_proj.grad(&g).unwrap())));
            out.push(("v", tensor_to_vec(b.v_proj.grad(&g).unwrap())));
            out.push(("o", tensor_to_vec(b.o_proj.grad(&g).unwrap())));
            out.push(("gate", tensor_to_vec(b.gate_proj.grad(&g).unwrap())));
            out.push(("up", tensor_to_vec(b.up_proj.grad(&g).unwrap())));
            out.push(("down", tensor_to_vec(b.down_proj.grad(&g).unwrap())));
        }
        fused::FORCE_UNFUSED.with(|f| f.set(false));
        (l, out)
    };
    let (la, ga) = run(false);
    let (lb, gb) = run(true);
    assert!((la - lb).abs() < 1e-5, "loss {la} vs {lb}");
    for ((name, a), (_, b)) in ga.iter().zip(&gb) {
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= 1e-4 * scale,
                "{name}: {x} vs {y} (max {scale})"
            );
        }
    }
}

#[test]
fn same_seed_same_weights() {
    let a =
        crate::model::params::export_params(&Llama::<Flex>::new(&small(), 11, &Default::default()));
    let b =
        crate::model::params::export_params(&Llama::<Flex>::new(&small(), 11, &Default::default()));
    assert_eq!(a, b);
    assert_eq!(
        a.iter().map(|t| t.data.len() as u64).sum::<u64>(),
        crate::model::stats::param_count(&small()).total
    );
}

/// SFT's masked loss takes the fused cross-entropy and gives the generic formulation's loss and
/// gradients, for a mixed mask and for an all-zero one (loss 0, no gradient).
#[test]
fn fused_masked_loss_matches_generic() {
    type Ad = burn::backend::Autodiff<Flex>;
    let cfg = small();
    let rows: Vec<i64> = (0..2 * 9).map(|i| (i * 13 % 50) as i64).collect();
    let mixed: Vec<f32> = (0..16)
        .map(|i| if i % 3 == 0 { 0.0 } else { 1.0 })
        .collect();
    let run = |unfused: bool, mask: &[f32]| {
        fused::FORCE_UNFUSED.with(|f| f.set(unfused));
        let model = Llama::<Ad>::new(&cfg, 5, &Default::default());
        let t = Tensor::<Ad, 2, Int>::from_data(
            TensorData::new(rows.clone(), [2, 9]),
            &Default::default(),
        );
        let mask =
            Tensor::<Ad, 1>::from_data(TensorData::new(mask.to_vec(), [16]), &Default::default());
        let loss = crate::train::backward::MicroBatch::from_rows(t, Some(mask)).loss(&model);
        let l = tensor_to_vec(loss.clone().inner())[0];
        let g = loss.backward();
        let grads = model
            .embed_tokens
            .grad(&g)
            .map(tensor_to_vec)
            .unwrap_or_default();
        fused::FORCE_UNFUSED.with(|f| f.set(false));
        (l, grads)
    };
    let (la, ga) = run(false, &mixed);
    let (lb, gb) = run(true, &mixed);
    assert!((la - lb).abs() < 1e-5, "loss {la} vs {lb}");
    let scale = gb.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (x, y) in ga.iter().zip(&gb) {
        assert!((x - y).abs() <= 1e-4 * scale, "{x} vs {y} (max {scale})");
    }
    // The fused path is really taken (not a silent fallback that would make the check vacuous).
    let logits = Tensor::<Ad, 2>::zeros([2, 5], &Default::default());
    assert!(fused::masked_cross_entropy(logits, &[1, 2], &[1.0, 0.0]).is_ok());
    let (zero, grads) = run(false, &[0.0; 16]);
    assert_eq!(zero, 0.0);
    assert!(grads.iter().all(|g| *g == 0.0));
}
