//! PLACEHOLDER: the hll family is being written.

use crate::command::Command;

pub static COMMANDS: &[Command] = &[];
