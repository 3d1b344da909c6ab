//! What people see while a run goes.
//!
//! On a terminal that takes escape sequences: a live line per VM at work
//! (its current step and how long it has run) and an overall line (VMs
//! done, failed, elapsed), drawn with indicatif; notes and each VM's end are
//! printed above them. [`Progress::finish`] clears the display before the
//! summary. Elsewhere (a pipe, a file, `NO_COLOR`, `--color never`): one
//! plain line per event, `NAME: started`, `NAME: step 2/3 qm disk resize`,
//! `NAME: done`, without escape sequences. `-v` puts each command sent in
//! full; `-q` says nothing here.
//!
//! The runner's [`Event`]s carry no step index: the step of a VM is counted
//! from its commands, out of its planned steps.

use crate::ui::{self, paint, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pvefleet_exec::{Event, Reporter};
use pvefleet_plan::Plan;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One VM's progress.
#[derive(Default)]
struct Vm {
    /// Its planned steps.
    steps: usize,
    /// Commands sent so far.
    sent: usize,
    /// Its last step starts it and the run then waits for its guest agent.
    waits: bool,
    /// When it started.
    started: Option<Instant>,
    /// Its live line.
    bar: Option<ProgressBar>,
}

/// The live display.
struct Live {
    mp: MultiProgress,
    overall: ProgressBar,
    failed: usize,
    width: usize,
}

/// A [`Reporter`] for people; see the module documentation.
pub struct Progress {
    state: Mutex<(HashMap<String, Vm>, Option<Live>)>,
}

/// The short name of a command line: its words up to the first argument
/// (`qm create`, `qm disk resize`, `pvesh create`).
pub fn step_label(line: &str) -> String {
    let words: Vec<&str> = line
        .split_whitespace()
        .take_while(|w| {
            w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
        })
        .take(3)
        .collect();
    if words.is_empty() {
        line.split_whitespace().next().unwrap_or("").to_string()
    } else {
        words.join(" ")
    }
}

impl Progress {
    /// A reporter for the VMs of `plan` that have work; `wait`: the run
    /// waits for guest agents.
    pub fn new(plan: &Plan, wait: bool) -> Self {
        let mut vms = HashMap::new();
        for v in plan
            .vms
            .iter()
            .filter(|v| !v.is_blocked() && !v.steps.is_empty())
        {
            vms.insert(
                v.name.clone(),
                Vm {
                    steps: v.steps.len(),
                    waits: wait && v.starts,
                    ..Vm::default()
                },
            );
        }
        let live = ui::ui().live.then(|| {
            let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let overall = mp.add(ProgressBar::new(vms.len() as u64));
            overall.set_style(
                ProgressStyle::with_template(
                    "[{elapsed_precise}] {bar:24} {pos}/{len} VMs done{msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            if !vms.is_empty() {
                overall.enable_steady_tick(Duration::from_millis(250));
            }
            ui::set_live(Some(mp.clone()));
            Live {
                mp,
                overall,
                failed: 0,
                width: vms.keys().map(|n| n.chars().count()).max().unwrap_or(0),
            }
        });
        Self {
            state: Mutex::new((vms, live)),
        }
    }

    /// Clears the live display (before the summary).
    pub fn finish(&self) {
        let Ok(mut g) = self.state.lock() else { return };
        let (vms, live) = &mut *g;
        for vm in vms.values_mut() {
            if let Some(b) = vm.bar.take() {
                b.finish_and_clear();
            }
        }
        if let Some(l) = live.take() {
            l.overall.finish_and_clear();
            let _ = l.mp.clear();
            ui::set_live(None);
        }
    }

    /// Which step a VM is at after `sent` commands of `steps`: `step 2/3`.
    fn step_at(vm: &Vm) -> String {
        if vm.steps > 0 {
            format!("step {}/{}", vm.sent.min(vm.steps), vm.steps)
        } else {
            format!("step {}", vm.sent)
        }
    }

    /// What a VM is doing: `step 3/3 qm start, then waits for the guest agent`.
    fn step_text(vm: &Vm, label: &str) -> String {
        let then = if vm.waits && vm.steps > 0 && vm.sent >= vm.steps {
            ", then waits for the guest agent"
        } else {
            ""
        };
        format!("{} {label}{then}", Self::step_at(vm))
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Reporter for Progress {
    fn report(&self, event: Event) {
        let Ok(mut g) = self.state.lock() else { return };
        let (vms, live) = &mut *g;
        match event {
            Event::Started { name } => {
                let vm = vms.entry(name.clone()).or_default();
                vm.started = Some(Instant::now());
                match live {
                    Some(l) => {
                        let bar = l.mp.insert_before(&l.overall, ProgressBar::new_spinner());
                        bar.set_style(
                            ProgressStyle::with_template(&format!(
                                "{{spinner}} {{prefix:{}}}  {{msg}}  {{elapsed}}",
                                l.width
                            ))
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        bar.set_prefix(name);
                        bar.set_message("starting");
                        bar.enable_steady_tick(Duration::from_millis(120));
                        vm.bar = Some(bar);
                    }
                    None => tracing::info!("{name}: started"),
                }
            }
            Event::Command { name, line } => {
                let vm = vms.entry(name.clone()).or_default();
                vm.sent += 1;
                let text = Self::step_text(vm, &step_label(&line));
                match &vm.bar {
                    Some(bar) => {
                        bar.set_message(text);
                        tracing::debug!("{name}: $ {line}");
                    }
                    None if tracing::enabled!(tracing::Level::DEBUG) => {
                        tracing::debug!("{name}: {} $ {line}", Self::step_at(vm));
                    }
                    None => tracing::info!("{name}: {text}"),
                }
            }
            Event::Note { name, message } => tracing::info!("{name}: {message}"),
            Event::Finished { name, ok } => {
                let vm = vms.entry(name.clone()).or_default();
                let secs = vm.started.map(|t| t.elapsed().as_secs_f64());
                if let Some(b) = vm.bar.take() {
                    b.finish_and_clear();
                }
                let color = ui::ui().color_err;
                let word = if ok {
                    paint("done", Style::Good, color && live.is_some())
                } else {
                    paint("failed", Style::Error, color && live.is_some())
                };
                match (live.as_mut(), secs) {
                    (Some(l), _) => {
                        l.overall.inc(1);
                        if !ok {
                            l.failed += 1;
                            l.overall.set_message(format!(", {} failed", l.failed));
                        }
                        let took = secs.map(|s| format!(" in {s:.1} s")).unwrap_or_default();
                        tracing::info!("{name}: {word}{took}");
                    }
                    (None, _) => tracing::info!("{name}: {word}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::step_label;

    #[test]
    fn labels_are_the_command_words() {
        assert_eq!(step_label("qm create 201 --name web-01"), "qm create");
        assert_eq!(step_label("qm disk resize 201 scsi0 20G"), "qm disk resize");
        assert_eq!(step_label("qm start 201"), "qm start");
        assert_eq!(
            step_label("pvesh create /nodes/pve/qemu --vmid 1"),
            "pvesh create"
        );
        assert_eq!(step_label("'odd'"), "'odd'");
    }
}
