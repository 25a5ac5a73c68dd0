//! The run view on its own: event folding, resume/rewind truncation and its chart keys.

use super::*;
use crate::config::UiConfig;
use crossterm::event::KeyModifiers;

fn step(n: u64, loss: f64) -> Event {
    Event::Step(StepStats {
        step: n,
        loss,
        lr: 1e-3,
        grad_norm: 0.5,
        tokens: n * 100,
        step_ms: 10.0 * n as f64,
        tokens_per_s: 1000.0,
        peers: 1,
        peer_step_ms: Vec::new(),
        allreduce_ms: 0.0,
    })
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn fed(n: u64) -> RunView {
    let mut v = RunView::new(&UiConfig::default());
    for i in 1..=n {
        v.on_event(&step(i, 5.0 - i as f64 * 0.01));
        if i % 10 == 0 {
            v.on_event(&Event::Eval {
                step: i,
                val_loss: 4.0,
            });
        }
    }
    v
}

#[test]
fn events_fold_into_named_records() {
    let mut v = fed(20);
    v.on_event(&Event::CheckpointSaved {
        step: 20,
        path: "/r/checkpoints/step-20".into(),
    });
    v.on_event(&Event::TaskEval {
        step: 20,
        task: "hellaswag".into(),
        metrics: [("acc".to_string(), 0.25)].into_iter().collect(),
    });
    v.on_event(&Event::Alert {
        step: 20,
        kind: AlertKind::LossSpike,
        detail: "spike".into(),
    });
    assert_eq!(v.last_step(), Some(20));
    assert_eq!(
        v.evals,
        vec![
            EvalPoint {
                step: 10,
                val_loss: 4.0
            },
            EvalPoint {
                step: 20,
                val_loss: 4.0
            }
        ]
    );
    assert_eq!(
        v.last_checkpoint,
        Some(SavedCheckpoint {
            step: 20,
            path: "/r/checkpoints/step-20".into()
        })
    );
    let t = v.task_evals.last().unwrap();
    assert_eq!((t.step, t.task.as_str()), (20, "hellaswag"));
    assert!(t.summary.starts_with("acc 0.25"), "{}", t.summary);
    assert_eq!(v.unseen_alerts().len(), 1);
    // A step that goes back (a replay) replaces the later ones instead of zig-zagging.
    v.on_event(&step(15, 9.0));
    assert_eq!(v.steps.len(), 15);
    assert_eq!(v.steps.last().unwrap().loss, 9.0);
}

#[test]
fn resume_and_rewind_drop_history_past_their_step_and_another_run_clears_it() {
    let mut v = fed(30);
    v.on_event(&Event::Rewound {
        step: 25,
        from_step: 30,
        skip_batches: 3,
        checkpoint: String::new(),
        run_dir: String::new(),
    });
    assert_eq!(v.last_step(), Some(25));
    assert_eq!(v.evals.len(), 2, "the eval at 30 went with its steps");
    v.on_started(true, 12);
    assert_eq!(v.last_step(), Some(12));
    assert_eq!(v.evals.len(), 1);
    v.on_event(&Event::Alert {
        step: 12,
        kind: AlertKind::LossSpike,
        detail: String::new(),
    });
    v.on_started(false, 0);
    assert!(v.steps.is_empty() && v.evals.is_empty() && v.alerts.is_empty());
    assert_eq!(v.alerts_seen, 0);
}

#[test]
fn chart_keys_change_only_the_view_and_others_fall_through() {
    let mut v = fed(RECENT_WINDOW as u64 + 50);
    assert_eq!(v.visible_steps().len(), RECENT_WINDOW + 50);
    assert!(v.on_key(key('w')));
    assert_eq!(v.visible_steps().len(), RECENT_WINDOW);
    assert_eq!(v.visible_steps()[0].step, 51);
    assert!(v.on_key(key('l')) && v.log_scale);
    let before = v.smoothing;
    assert!(v.on_key(key('[')));
    assert!(v.smoothing < before);
    assert!(v.on_key(key(']')));
    assert_eq!(v.smoothing, before);
    v.on_event(&Event::Alert {
        step: 1,
        kind: AlertKind::GradExplosion,
        detail: String::new(),
    });
    assert!(v.on_key(key('x')));
    assert!(v.unseen_alerts().is_empty());
    for other in ['p', 's', 'q', 'g'] {
        assert!(!v.on_key(key(other)), "{other} is not the run view's");
    }
    // Rates average the recent window only.
    let mean = v.recent_step_ms().unwrap();
    let n = v.steps.len() as f64;
    // step_ms is 10 * step: the mean of the last RATE_WINDOW steps' is 10 * their mid step.
    let expected = 10.0 * (n - RATE_WINDOW as f64 + 1.0 + n) / 2.0;
    assert!((mean - expected).abs() < 1e-9, "{mean} vs {expected}");
}
