//! The examples and notes `--help` prints after each command's options (clap's `after_help`),
//! kept out of `cli.rs` so the option definitions stay short.

/// The bare command: what it does and the commands people reach for first.
pub const TOP: &str = "\
Examples:
  llite-tui                                        # cockpit: train the tiny preset on the bundled corpus
  llite-tui train --headless --max-steps 200 --runs-dir runs --run-name demo
  llite-tui train --resume runs/demo/latest       # continue its newest valid checkpoint
  llite-tui sample --checkpoint runs/demo --prompt \"ROMEO:\"
  llite-tui ckpt ls runs/demo
  llite-tui completions bash > ~/.local/share/bash-completion/completions/llite-tui

Config keys: docs/CONFIG.md. `llite-tui <command> --help` shows each command's options.";

/// `train`: examples, then how a headless run ends.
pub const TRAIN: &str = "\
Examples:
  llite-tui train --headless --config configs/tiny.toml --max-steps 200
  llite-tui train --headless --set train.lr=3e-4 --set train.batch_size=16 --run-name lr3e-4
  llite-tui train --headless --resume runs/demo/latest --max-steps 400
  llite-tui train --headless --finetune runs/demo/latest --data data/sft-shakespeare.jsonl
  llite-tui train --headless --max-steps 1000 --stop-at-step 500   # time-sliced job
  llite-tui train --headless --peers 2              # data parallel: 2 replicas, batch split in 2

Headless runs:
  SIGINT, SIGTERM or SIGHUP: finish the current step, save a checkpoint (even at step 0),
  log `finished` with the reason, exit 130 / 143 / 129 (128 + signal number). A second
  signal exits at once with the same code; earlier checkpoints stay intact. The same signal
  again within a second is taken as an echo (sent to the process and its group), not a second.
  Loss spikes and gradient explosions are alerted; train.on_spike = 'pause' pauses the run
  and 'rewind' rolls it back to the newest checkpoint before the spike as a branch, skipping
  train.rewind_skip steps of data (0 = up to the spike), at most train.max_auto_rewinds times.
Exit codes: 0 finished; 1 error, or any checkpoint save or metrics.jsonl write failed
  (the last line names the newest good checkpoint); 130 / 143 / 129 stopped by a signal.";

/// `watch`.
pub const WATCH: &str = "\
Examples:
  llite-tui watch runs/demo                # steers the run too when it serves control.sock
  llite-tui watch runs/demo --read-only --theme light
  llite-tui watch runs                     # the newest running run of a runs root
  llite-tui watch runs/a runs/b            # the one running; R lists both, Enter switches";

/// `runs` and its subcommands.
pub const RUNS: &str = "\
Examples:
  llite-tui runs                           # every run of the default runs directory
  llite-tui runs runs --tree               # lineage: branches and fine-tunes under parents
  llite-tui runs rename runs/tiny-20261130-051233 baseline
  llite-tui runs tag runs/tiny-20261130-051233 lr-sweep good
  llite-tui runs tag runs/tiny-20261130-051233 good --untag

Names and tags live in <run>/labels.toml; the directory keeps its name, because branches,
fine-tunes and scripts refer to it by path and a running process may hold it.
Status: running (its lock is held), finished (max_steps), stopped (by you or a signal;
resumable), crashed (an error, or the writer died), empty (no events yet).";

/// `ctl` and each of its actions: examples, then the protocol and failure modes.
pub const CTL: &str = "\
Examples:
  llite-tui ctl runs/demo status
  llite-tui ctl runs/demo pause
  llite-tui ctl runs/demo set train.lr=1e-4
  llite-tui ctl runs/demo sample \"ROMEO:\" --max-tokens 64 --temperature 0
  llite-tui ctl runs/demo save --json

A training run serves <run>/control.sock (owner-only; not opened in a run directory others
can write). Protocol: one JSON line each way, {\"v\":1,\"cmd\":\"status\"} -> {\"v\":1,\"ok\":true,...}.
`set` accepts the live keys only, checked like --set. Exit codes: 0 done; 1 refused, no run
(stale or missing socket), a foreign socket, no answer in time or a malformed reply.";

/// `sample`.
pub const SAMPLE: &str = "\
Examples:
  llite-tui sample --checkpoint runs/demo/latest --prompt \"ROMEO:\"
  llite-tui sample --checkpoint runs/demo/checkpoints/step-00000200 --temperature 0 --max-tokens 64
  llite-tui sample --checkpoint runs/ft --prompt \"Who wrote Hamlet?\"   # SFT: chat template applied";

/// `prepare`.
pub const PREPARE: &str = "\
Examples:
  llite-tui prepare --input a.txt b.txt --out shards/ --tokenizer gpt2
  llite-tui prepare --input notes.txt --out shards/ --tokenizer train:4096 --val-fraction 0.1
  llite-tui train --headless --set data.corpus=shards/";

/// `export`.
pub const EXPORT: &str = "\
Examples:
  llite-tui export --checkpoint runs/demo/latest --out hf-demo
  llite-tui export --checkpoint runs/demo/latest --out hf-demo-bf16 --dtype bf16
  python3 -c \"import transformers as t; t.AutoModelForCausalLM.from_pretrained('hf-demo')\"";

/// `import`.
pub const IMPORT: &str = "\
Examples:
  llite-tui import --hf SmolLM2-135M --out smol-ckpt
  llite-tui train --finetune smol-ckpt --data notes.txt";

/// `template`.
pub const TEMPLATE: &str = "\
Examples:
  llite-tui template --model SmolLM2-135M-Instruct --messages chat.json --generation-prompt
  llite-tui template --model runs/ft/latest --messages chat.json --template chatml
  python3 benches/reference/chat_template_check.py SmolLM2-135M-Instruct chat.json   # compare";

/// `ckpt ls`.
pub const CKPT_LS: &str = "\
Examples:
  llite-tui ckpt ls runs/demo
  llite-tui ckpt ls runs/demo --verify    # also check every digest; exits 1 if any is invalid";

/// `metrics export`.
pub const METRICS_EXPORT: &str = "\
Examples:
  llite-tui metrics export --csv runs/demo                    # writes runs/demo/metrics.csv
  llite-tui metrics export --csv runs/demo --out demo.csv --force";

/// `eval`.
pub const EVAL: &str = "\
Examples:
  llite-tui eval --checkpoint runs/demo/latest --task notes.txt            # perplexity
  llite-tui eval --checkpoint runs/demo --task hellaswag.jsonl             # acc, acc_norm
  llite-tui eval --checkpoint runs/ft --task data/sft-shakespeare.jsonl --held-out 0.02";

/// `info`.
pub const INFO: &str = "\
Examples:
  llite-tui info
  llite-tui info --config configs/dmas-1.7b.toml --device cuda --memory 80GiB
  llite-tui info --set model.n_layers=8 --set train.seq_len=512";

/// `bench`.
pub const BENCH: &str = "\
Examples:
  llite-tui bench
  llite-tui bench --large --only train
  LLITE_BENCH_REFERENCE=off llite-tui bench --only io --io-dir /mnt/scratch";

/// `completions`.
pub const COMPLETIONS: &str = "\
Examples:
  llite-tui completions bash > ~/.local/share/bash-completion/completions/llite-tui
  llite-tui completions zsh > ~/.zfunc/_llite-tui
  llite-tui completions fish > ~/.config/fish/completions/llite-tui.fish";

/// `manpage`.
pub const MANPAGE: &str = "\
Examples:
  llite-tui manpage | man -l -
  llite-tui manpage --out ~/.local/share/man/man1";

/// `orchestrator`: how the nodes of a multi-machine run meet.
pub const ORCHESTRATOR: &str = "\
Examples:
  llite-tui orchestrator --port 3000                                   # on host A
  llite-tui train --headless --nodes 2 --node-rank 0 --orchestrator ws://A:3000 \\
      --set parallel.node_address=ws://A:3001                          # on host A
  llite-tui train --headless --nodes 2 --node-rank 1 --orchestrator ws://A:3000 \\
      --set parallel.node_address=ws://B:3001                          # on host B

Every node runs the same config and data; node 0 checkpoints and evaluates. The orchestrator
only introduces the nodes (Burn's collective): gradients travel between the nodes directly.";
