//! Parsing rules of the CLI: training flags only where training happens, every option
//! described with its default, examples on every command, completions and man pages.

use crate::cli::{Cli, Commands};
use clap::{ArgAction, CommandFactory, Parser};

/// Flags that only make sense for a command that trains (the cockpit and `train`).
const TRAINING_ONLY: [&str; 11] = [
    "max_steps",
    "run_name",
    "resume",
    "finetune",
    "data",
    "discard_later",
    "fresh_optimizer",
    "stop_at_step",
    "device",
    "headless",
    "log_every",
];

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("llite-tui").chain(args.iter().copied()))
}

#[test]
fn training_flags_parse_on_the_commands_that_train() {
    let cli = parse(&["train", "--resume", "runs/a/latest", "--max-steps", "5"]).unwrap();
    let Some(Commands::Train(run)) = cli.command else {
        panic!("not train: {:?}", cli.command)
    };
    assert_eq!(run.max_steps, Some(5));
    assert_eq!(run.log_every, 10, "the default line rate");
    assert_eq!(run.resume.unwrap().to_str(), Some("runs/a/latest"));
    let bare = parse(&["--max-steps", "7", "--set", "train.lr=1e-3"]).unwrap();
    assert!(bare.command.is_none());
    assert_eq!(bare.run.max_steps, Some(7));
    assert_eq!(bare.run.preset.overrides, vec!["train.lr=1e-3"]);
    assert!(
        parse(&["train", "--log-every", "0"]).is_err(),
        "0 would never log"
    );
    assert!(
        parse(&["train", "--data", "x.txt"]).is_err(),
        "--data needs --finetune"
    );
}

#[test]
fn training_flags_are_refused_by_the_commands_that_do_not_train() {
    let refused: [&[&str]; 6] = [
        &["info", "--max-steps", "5"],
        &["sample", "--checkpoint", "c", "--resume", "r"],
        &["ckpt", "ls", "runs/a", "--headless"],
        &[
            "eval",
            "--checkpoint",
            "c",
            "--task",
            "t",
            "--device",
            "cpu",
        ],
        &[
            "export",
            "--checkpoint",
            "c",
            "--out",
            "o",
            "--run-name",
            "n",
        ],
        // Before the subcommand, as the old global flags allowed.
        &["--max-steps", "5", "info"],
    ];
    for args in refused {
        let e = parse(args).expect_err(&format!("{args:?} parsed"));
        assert!(
            matches!(
                e.kind(),
                clap::error::ErrorKind::UnknownArgument | clap::error::ErrorKind::ArgumentConflict
            ),
            "{args:?}: {e}"
        );
    }
    // And the help of those commands does not list them.
    let cmd = Cli::command();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "train") {
        for nested in std::iter::once(sub).chain(sub.get_subcommands()) {
            // `info --device` names the device to plan memory for (issue 11), not where to train.
            let planning = |id: &str| nested.get_name() == "info" && id == "device";
            for arg in nested.get_arguments() {
                assert!(
                    !TRAINING_ONLY.contains(&arg.get_id().as_str())
                        || planning(arg.get_id().as_str()),
                    "`{}` lists the training flag --{}",
                    nested.get_name(),
                    arg.get_id()
                );
            }
            let help = nested.clone().render_long_help().to_string();
            assert!(
                !help.contains("--max-steps"),
                "{}: {help}",
                nested.get_name()
            );
        }
    }
}

#[test]
fn every_option_is_described_with_its_default_and_every_command_has_examples() {
    let mut cmd = Cli::command();
    cmd.build();
    let mut commands = vec![cmd.clone()];
    let mut i = 0;
    while i < commands.len() {
        // Not into `help`, whose children (`help train`) are name-only stand-ins.
        let subs: Vec<_> = commands[i]
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .cloned()
            .collect();
        commands.extend(subs);
        i += 1;
    }
    for c in &commands {
        let name = c.get_name();
        let leaf = c.get_subcommands().next().is_none() || name == "llite-tui";
        if leaf && name != "help" {
            let help = c.clone().render_long_help().to_string();
            assert!(
                help.contains("\nExamples:\n"),
                "`{name}` --help has no examples"
            );
        }
        for arg in c.get_arguments() {
            let id = arg.get_id().as_str();
            if ["help", "version"].contains(&id) || arg.is_hide_set() {
                continue;
            }
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|s| s.to_string())
                .unwrap_or_default();
            assert!(!help.is_empty(), "`{name} --{id}` has no description");
            let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
            let optional = !arg.is_required_set() && !arg.is_positional();
            if takes_value && optional && arg.get_default_values().is_empty() {
                assert!(
                    help.contains("default"),
                    "`{name} --{id}` does not say what happens without it: {help}"
                );
            }
        }
    }
}

#[test]
fn completions_and_man_pages_come_from_the_same_definitions() {
    let cli = parse(&["completions", "bash"]).unwrap();
    assert!(matches!(cli.command, Some(Commands::Completions { .. })));
    let mut out = Vec::new();
    clap_complete::generate(
        clap_complete::Shell::Bash,
        &mut Cli::command(),
        "llite-tui",
        &mut out,
    );
    let script = String::from_utf8(out).unwrap();
    assert!(script.contains("--log-every") && script.contains("ckpt"));
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .unwrap();
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(".TH") && page.contains("completions"),
        "{page}"
    );
}

#[test]
fn the_commands_from_main_parse_into_their_args() {
    use crate::cli::CtlAction;
    use llite_tui::interop::hf_write::ExportDtype;
    let cli = parse(&["watch", "runs/a", "--read-only"]).unwrap();
    let Some(Commands::Watch(w)) = cli.command else {
        panic!("not watch")
    };
    assert!(w.read_only);
    let Some(Commands::Watch(w)) = parse(&["watch", "runs/a"]).unwrap().command else {
        panic!("not watch")
    };
    assert!(!w.read_only, "steering is the default");

    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--checkpoint", "c", "--out", "o"];
        args.extend(extra);
        match parse(&args).unwrap().command {
            Some(Commands::Export(e)) => e.dtype,
            other => panic!("not export: {other:?}"),
        }
    };
    assert_eq!(export(&[]), ExportDtype::F32);
    assert_eq!(export(&["--dtype", "f16"]), ExportDtype::F16);
    assert!(parse(&["export", "--checkpoint", "c", "--out", "o", "--dtype", "f8"]).is_err());

    let cli = parse(&["ctl", "runs/a", "set", "train.lr=1e-4", "--timeout", "5"]).unwrap();
    let Some(Commands::Ctl(c)) = cli.command else {
        panic!("not ctl")
    };
    assert_eq!(c.timeout, 5);
    assert!(matches!(c.action, CtlAction::Set { ref setting } if setting == "train.lr=1e-4"));
    assert!(
        parse(&["ctl", "runs/a", "status", "--max-steps", "5"]).is_err(),
        "no training flags on ctl"
    );

    let cli = parse(&[
        "template",
        "--model",
        "m",
        "--messages",
        "chat.json",
        "--generation-prompt",
    ])
    .unwrap();
    let Some(Commands::Template(t)) = cli.command else {
        panic!("not template")
    };
    assert!(t.generation_prompt && t.template.is_none());
}
