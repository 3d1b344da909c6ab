//! Where things stand in the YAML text: the [`Span`] of one value, and the
//! [`SpanMap`] that records, beside a [`Desired`](crate::spec::Desired), where each
//! VM and each of its values came from.

use std::collections::BTreeMap;

/// Where a value stands in the YAML text (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
    /// Byte offset of the first character.
    pub offset: usize,
    /// Length in bytes (at least 1 when rendered).
    pub len: usize,
}

/// Where each VM of a [`Desired`](crate::spec::Desired) and each of its effective
/// values stand in the file. VMs are indexed as in `Desired::vms`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanMap {
    vms: Vec<VmSpans>,
}

/// The spans of one VM.
#[derive(Clone, Debug, PartialEq, Eq)]
struct VmSpans {
    /// The VM's entry in `vms:`.
    entry: Span,
    /// Each key that has a value, by its name as written, with the place of
    /// that value.
    keys: BTreeMap<String, Span>,
}

impl SpanMap {
    /// Records the next VM: where its entry stands and where the value of
    /// each key it has stands.
    pub fn push(&mut self, entry: Span, keys: impl IntoIterator<Item = (String, Span)>) {
        self.vms.push(VmSpans {
            entry,
            keys: keys.into_iter().collect(),
        });
    }

    /// Where the VM at `index` (of `Desired::vms`) is written: its entry in
    /// `vms:`.
    pub fn vm(&self, index: usize) -> Option<Span> {
        self.vms.get(index).map(|v| v.entry)
    }

    /// Where the effective value of `key` for the VM at `vm_index` stands:
    /// on the VM's own entry, or in `defaults:` when it was inherited from
    /// there. `None` when the key is not set (a built-in default applies, or
    /// the VM set it to null). Keys are named as written in the file
    /// (`template` stays `template`).
    pub fn key(&self, vm_index: usize, key: &str) -> Option<Span> {
        self.vms.get(vm_index)?.keys.get(key).copied()
    }

    /// The number of VMs recorded.
    pub fn len(&self) -> usize {
        self.vms.len()
    }

    /// True when no VM is recorded.
    pub fn is_empty(&self) -> bool {
        self.vms.is_empty()
    }
}
